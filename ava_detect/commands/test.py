"""Run a trained detector on the validation/test split and evaluate it.

  ava-detect test --config CFG --weights W [section.key=value ...]
  torchrun --nproc_per_node 8 -m ava_detect test --config CFG --weights W

Uses the predicted person boxes with score >= data.test_box_threshold (keyframes without boxes
are skipped), the short side data.test_short_side on the full frame, and the protocol
test.protocol. Writes into test.output_dir: detections.csv (video,SSSS,x1,y1,x2,y2,action,score),
report.txt, report.json, plots/per_class_ap.png, plots/precision_recall.png and config.yaml.
"""

from __future__ import annotations

import argparse

from ava_detect.commands.common import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--weights", required=True, metavar="FILE_OR_NAME",
                        help="a checkpoint of ours, a PyTorchVideo/PySlowFast .pyth, or a published name")
    parser.add_argument("--output-dir", metavar="DIR", help="same as test.output_dir=DIR")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (same as test.autocast=true)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ava_detect.config import save_config
    from ava_detect.engine import distributed as du
    from ava_detect.engine.inference import evaluate_split
    from ava_detect.evaluation.report import format_report, write_json, write_plots
    from ava_detect.io import atomic_open
    from ava_detect.model import build_model, load_weights

    cfg = config_from_args(args)
    if args.output_dir:
        cfg.test.output_dir = args.output_dir
    if args.bf16:
        cfg.test.autocast = True
    out = Path(cfg.test.output_dir)
    try:
        device = du.init_from_env(cfg.test.device)
        main = du.is_main_process()
        model = build_model(cfg)
        report = load_weights(model, args.weights)
        if main:
            print(report.summary())
        model.to(device).eval()
        evaluation = evaluate_split(cfg, model, "val", device=device, progress=not args.no_progress)
        evaluator, result = evaluation["evaluator"], evaluation["result"]
        evaluator.write_detections(out / "detections.csv")  # gathers on every process; rank 0 writes
    finally:
        du.cleanup()
    if not main:
        return 0
    save_config(cfg, out / "config.yaml")
    text = format_report(result)
    with atomic_open(out / "report.txt", "w", encoding="utf-8") as f:
        f.write(text + "\n")
    write_json(out / "report.json", result)
    plots = write_plots(out / "plots", result)
    print(text)
    print(f"{evaluation['keyframes']} keyframes, {evaluation['boxes']} boxes in {evaluation['seconds']:.1f} s "
          f"(this process)")
    print(f"wrote {out / 'detections.csv'}, {out / 'report.txt'}, {out / 'report.json'}, "
          + ", ".join(str(p) for p in plots))
    return 0
