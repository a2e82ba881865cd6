"""Run a trained detector on the validation/test split and evaluate it.

  ava-detect test --config CFG --weights W [section.key=value ...]
  torchrun --nproc_per_node 8 -m ava_detect test --config CFG --weights W

Uses the predicted person boxes with score >= data.test_box_threshold (keyframes without boxes
are skipped), the short side data.test_short_side on the full frame, and the protocol
test.protocol. Writes into test.output_dir: detections.csv (video,SSSS,x1,y1,x2,y2,action,score),
report.txt, report.json, report.html (the report page: per-class table and curves, false positives
and misses on thumbnails of their keyframes, confusions, per-video mAP), plots/per_class_ap.png,
plots/precision_recall.png and config.yaml.
"""

from __future__ import annotations

import argparse

from ava_detect.commands.common import add_config_arguments, config_from_args, progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--weights", required=True, metavar="FILE_OR_NAME",
                        help="a checkpoint of ours, a PyTorchVideo/PySlowFast .pyth, or a published name")
    parser.add_argument("--output-dir", metavar="DIR", help="same as test.output_dir=DIR")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (same as test.bf16=true)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ava_detect.engine import distributed as du
    from ava_detect.engine.testing import declared_paths, run_test

    cfg = config_from_args(args, [("test.output_dir", args.output_dir), ("test.bf16", True if args.bf16 else None)])
    declared_paths(cfg, args.weights, cfg.test.output_dir).input("--config", args.config).check()
    try:
        tested = run_test(cfg, args.weights, progress=None if args.no_progress else progress_bar)
    finally:
        du.cleanup()
    if tested.main:
        print_test_result(tested)
    return 0


def print_test_result(tested) -> None:
    """What ``ava-detect test`` prints of a :class:`~ava_detect.engine.testing.TestResult`."""
    print(tested.weights_summary)
    print(tested.report)
    print(f"{tested.keyframes} keyframes, {tested.boxes} boxes in {tested.seconds:.1f} s (this process)")
    print("wrote " + ", ".join(str(p) for p in tested.paths))
