"""Benchmark: SlowFast vs Slow-only trained from scratch on the synthetic AVA-format set, same budget.

  python bench/synthetic_training.py [--data DIR] [--threads 2]

Makes the quickstart's synthetic set (seed 0, 24 videos x 30 s, 320x240: ``ava-detect prep synthetic
--videos 24``) in a temporary folder, or reuses ``--data DIR``, then trains ``configs/synthetic/slowfast_tiny.yaml``
and ``configs/synthetic/slow_tiny.yaml`` (the same number of iterations, the same schedule and
inputs; only the backbone differs) and validates each once at the end on the validation split with
the predicted person boxes (score >= ``data.test_box_threshold``), the official frame-mAP@0.5.

Prints, per model: wall time of training + validation, CPU time (this process and its finished
data-loader workers), the load average over the run (the CPU machine may be shared, so wall time
is noisy; CPU time much less so), val frame-mAP, and AP per class. Then the per-class difference,
SlowFast minus Slow-only: what the fast pathway adds on the classes that only motion tells apart
(walk vs run/jog: speed and stride rate; hand wave: an oscillating arm; jump/leap: a vertical
bounce) next to the poses (stand, sit, lie/sleep: visible in one frame).

Measurements only: nothing here asserts a time or an accuracy.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"SlowFast": ROOT / "configs" / "synthetic" / "slowfast_tiny.yaml",
           "Slow-only": ROOT / "configs" / "synthetic" / "slow_tiny.yaml"}
#: Classes told apart only by motion (highlighted), then the poses.
MOTION = (14, 10, 69, 7)
POSES = (12, 11, 8)


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its waited-for children (data-loader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_one(name: str, config: Path, data: Path, work: Path, overrides: List[str]) -> Dict[str, Any]:
    from ava_detect.config import load_config
    from ava_detect.engine.inference import evaluate_split
    from ava_detect.engine.trainer import train

    cfg = load_config(config, [f"data.root={data}", f"train.output_dir={work / name}", *overrides])
    final: Dict[str, Any] = {}

    def evaluate(model, epoch):
        result = evaluate_split(cfg, model, "val", progress=False)
        final.update(result)
        return result

    load_before = os.getloadavg()
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    result = train(cfg, progress=False, evaluate_fn=evaluate)
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    frame_map = final["result"]
    return {
        "name": name, "config": config, "wall": wall, "cpu": cpu, "load": (load_before, os.getloadavg()),
        "iterations": result.iterations, "epochs": result.epochs, "mAP": float(frame_map.mAP),
        "ap": {int(k): float(v) for k, v in frame_map.per_class_ap.items()},
        "eval_seconds": float(final.get("seconds", float("nan"))),
    }


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="an existing default synthetic set (else one is made in a temp folder)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append", help="run only this model (repeatable)")
    parser.add_argument("overrides", nargs="*", help="section.key=value applied to both recipes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    from ava_detect.commands.quickstart import SECONDS, SIZE, VIDEOS
    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.synthetic import make_synthetic_dataset

    with tempfile.TemporaryDirectory(prefix="synthetic_training_") as tmp:
        tmp_path = Path(tmp)
        data = args.data
        if data is None:
            data = tmp_path / "data"
            t = time.perf_counter()
            make_synthetic_dataset(data, seed=0, num_videos=VIDEOS, seconds=SECONDS, size=SIZE)
            print(f"made the quickstart's synthetic set (seed 0, {VIDEOS} videos x {SECONDS} s, "
                  f"{SIZE[0]}x{SIZE[1]}) in {time.perf_counter() - t:.0f} s")
        names = read_labelmap(data / "annotations" / "labelmap.pbtxt").names
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs visible, "
              f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
        runs = []
        for name, config in CONFIGS.items():
            if args.only and name not in args.only:
                continue
            print(f"\ntraining {name} ({config.relative_to(ROOT)}) ...", flush=True)
            r = run_one(name, config, data, tmp_path / "runs", args.overrides)
            runs.append(r)
            (l1, _, _), (l2, _, _) = r["load"]
            print(f"{name}: {r['iterations']} iterations ({r['epochs']} epochs), train + validation "
                  f"wall {r['wall'] / 60:.2f} min, CPU {r['cpu'] / 60:.2f} min (validation {r['eval_seconds']:.0f} s); "
                  f"load average (1 min) {l1:.1f} before, {l2:.1f} after; val frame-mAP {r['mAP']:.4f}", flush=True)

    if not runs:
        return 0
    order = [c for c in (*MOTION, *POSES) if any(c in r["ap"] for r in runs)]
    order += sorted({c for r in runs for c in r["ap"]} - set(order))
    header = f"{'class':<22}" + "".join(f"{r['name']:>12}" for r in runs)
    if len(runs) == 2:
        header += f"{'difference':>12}"
    print("\nval AP per class (* = told apart only by motion)")
    print(header)
    for c in order:
        mark = "*" if c in MOTION else " "
        row = f"{mark} {names.get(c, str(c)):<14} ({c:>2}) "
        vals = [r["ap"].get(c, math.nan) for r in runs]
        row += "".join(f"{v:>12.3f}" for v in vals)
        if len(runs) == 2:
            row += f"{vals[0] - vals[1]:>+12.3f}"
        print(row)
    row = f"{'  frame-mAP':<22}" + "".join(f"{r['mAP']:>12.3f}" for r in runs)
    if len(runs) == 2:
        row += f"{runs[0]['mAP'] - runs[1]['mAP']:>+12.3f}"
    print(row)
    for group, ids in (("motion classes", MOTION), ("poses", POSES)):
        means = [sum(r["ap"][c] for c in ids if c in r["ap"]) / max(1, sum(c in r["ap"] for c in ids)) for r in runs]
        row = f"{'  mean, ' + group:<22}" + "".join(f"{m:>12.3f}" for m in means)
        if len(runs) == 2:
            row += f"{means[0] - means[1]:>+12.3f}"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
