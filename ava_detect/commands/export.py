"""Export the action detector whole (backbone, RoIAlign head, sigmoid) to ONNX or TorchScript.

The exported graph is the batch-norm-folded inference model with inputs `slow [B,3,T/alpha,H,W]`,
`fast [B,3,T,H,W]` (one `clip` input for Slow-only models) and `rois [K,5]` (batch_index, x1, y1,
x2, y2 in input pixels), and output `probs [K,C]`; B >= 1 clips, K >= 0 boxes and the frame size
are free. Its contract (input names and shapes, clip, normalisation, RoIAlign's aligned flag, class
ids and names) is stored in the file's metadata. The file is loaded back and compared with PyTorch
before the command ends. Run it with `ava-detect annotate --runtime onnxruntime --weights FILE`.

ONNX needs the extra `pip install "ava_detect[onnx]"` (onnx, onnxscript, onnxruntime). An existing
--out is replaced whole; a failed export leaves it as it was.

  ava-detect export --config configs/ava/slowfast_r50_32x2.yaml --weights model.pth --format onnx \\
      --out model.onnx
"""

from __future__ import annotations

import argparse

from ava_detect.commands.common import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="FILE|NAME",
                        help="the detector's weights (with its detection head): a checkpoint or a published name")
    parser.add_argument("--format", required=True, choices=["onnx", "torchscript"], help="what to write")
    parser.add_argument("--out", required=True, metavar="FILE", help="the exported file (.onnx, .pt)")
    parser.add_argument("--labelmap", metavar="MAP.pbtxt",
                        help="the action ids and names of the model's outputs (default: the config's label map)")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ava_detect.deploy import export_from_config
    from ava_detect.deploy.export import require_packages
    from ava_detect.io_paths import IOPaths

    cfg = config_from_args(args)
    IOPaths().input("--config", args.config).input("--weights", args.weights).input("--labelmap", args.labelmap) \
        .output("--out", args.out).check()
    if args.format == "onnx":
        require_packages(("onnx", "onnxscript"), "ONNX export")
    result = export_from_config(cfg, weights=args.weights, fmt=args.format, out=args.out, labelmap=args.labelmap)
    print(f"wrote {result.path} ({result.format}, {result.size / 1e6:.1f} MB)")
    for line in result.contract.summary():
        print(f"  {line}")
    if result.max_abs_diff is not None:
        print(f"checked: max |probability difference| from PyTorch {result.max_abs_diff:.1e}")
    return 0
