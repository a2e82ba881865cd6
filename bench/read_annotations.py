"""Reading speed of AVA ground-truth CSVs at the size of the real AVA v2.2 val file.

Makes a seeded file of ~250k rows (default) in a temporary folder, reads it with
``ava_detect.data.ava_files.read_ground_truth`` (full validation, duplicate merging, label-map
filtering) and, as the reference in the same run, with a plain ``csv.reader`` loop that builds
per-key box and label lists the way the official AVA tools do. Prints rows/s for both and the ratio.

    python bench/read_annotations.py [--rows 250000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from ava_detect.data.ava_files import read_ground_truth, read_labelmap
from ava_detect.data.constants import labelmap_80_path


def make_file(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    videos = [f"vid{i:08d}x" for i in range(max(1, rows // 4000))]
    n_boxes = rows // 2  # ~2 labels per box on average, as in AVA
    vid = rng.integers(0, len(videos), n_boxes)
    sec = rng.integers(902, 1799, n_boxes)
    xy1 = rng.uniform(0, 0.6, (n_boxes, 2))
    xy2 = xy1 + rng.uniform(0.05, 0.4, (n_boxes, 2))
    pid = rng.integers(0, 10, n_boxes)
    with open(path, "w") as f:
        written = 0
        for i in range(n_boxes):
            for action in rng.choice(np.arange(1, 81), size=2, replace=False):
                if written == rows:
                    break
                f.write(f"{videos[vid[i]]},{sec[i]:04d},{xy1[i,0]:.3f},{xy1[i,1]:.3f},{xy2[i,0]:.3f},"
                        f"{xy2[i,1]:.3f},{action},{pid[i]}\n")
                written += 1


def reference_read(path: Path):
    """The official tools' way: csv.reader, float()/int() per field, dicts keyed by image."""
    boxes, labels = defaultdict(list), defaultdict(list)
    with open(path) as f:
        for row in csv.reader(f):
            key = f"{row[0]},{int(row[1]):04d}"
            x1, y1, x2, y2 = (float(v) for v in row[2:6])
            boxes[key].append([y1, x1, y2, x2])
            labels[key].append(int(row[6]))
    return boxes, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    labelmap = read_labelmap(labelmap_80_path())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gt.csv"
        make_file(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        ours, ref = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            df = read_ground_truth(path, labelmap)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            reference_read(path)
            ref.append(time.perf_counter() - t)
    t_ours, t_ref = min(ours), min(ref)
    print(f"file: {args.rows} rows, {size_mb:.1f} MB; read {len(df)} rows")
    print(f"ava_detect read_ground_truth : {t_ours:.3f} s  {args.rows / t_ours:,.0f} rows/s")
    print(f"reference csv.reader loop    : {t_ref:.3f} s  {args.rows / t_ref:,.0f} rows/s")
    print(f"speed ratio (reference / ours): {t_ref / t_ours:.2f}x")


if __name__ == "__main__":
    main()
