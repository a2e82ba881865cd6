"""Train an action detector (head, or head and backbone) on AVA-format data.

One process:            ava-detect train --config configs/synthetic/slowfast_tiny.yaml
Several (one per GPU):  torchrun --nproc_per_node 8 -m ava_detect train --config CFG
Resume after a crash:   ava-detect train --config CFG --resume

The learning rate is train.base_lr for train.reference_batch_size clips and scales linearly with
the global batch (train.batch_size x number of processes). Outputs go to train.output_dir:
config.yaml, metrics.jsonl, checkpoints/{last,best,epoch_NNNN}.pth.

Fine-tuning: with --weights from a model of other actions (AVA's, say), the head is re-initialised
and the rows of actions whose names are also in the weights' label map start from its rows; what
was loaded and copied is printed.
"""

from __future__ import annotations

import argparse

from ava_detect.commands.common import add_config_arguments, config_from_args, progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue from <train.output_dir>/checkpoints/last.pth")
    parser.add_argument("--weights", metavar="FILE_OR_NAME",
                        help="initial weights: a checkpoint file or a published name (same as train.weights=...)")
    parser.add_argument("--output-dir", metavar="DIR", help="same as train.output_dir=DIR")


def run(args: argparse.Namespace) -> int:
    from ava_detect.engine import distributed as du
    from ava_detect.engine.trainer import declared_paths, train

    cfg = config_from_args(args, [("train.weights", args.weights), ("train.output_dir", args.output_dir)])
    # a resumed run rewrites its own config.yaml, which may be the --config it is resumed with
    declared_paths(cfg, resume=args.resume).input("--config", None if args.resume else args.config).check()
    try:
        result = train(cfg, resume=args.resume, progress=progress_bar)
        main = du.is_main_process()
    finally:
        du.cleanup()
    if main:
        if result.weights_summary:
            print(result.weights_summary)
        print(f"trained {result.epochs} epochs ({result.iterations} iterations) in {result.seconds / 60:.1f} min; "
              f"val mAP last {result.last_map:.4f}, best {result.best_map:.4f}")
        print(f"checkpoints: {result.output_dir / 'checkpoints'}")
    return 0
