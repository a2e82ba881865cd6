"""Frame-mAP evaluation speed on a seeded set the size of AVA v2.2 val.

Makes (once, cached in ``--data-dir``) about 50,000 keyframes in 64 videos, ~100,000
ground-truth person boxes (1-3 actions each) and 120,000 predicted person boxes with a score
for each of the 80 classes (~9.6M detection rows), then:

1. times our evaluator end to end (CSV parsing included) on the full set, for each protocol;
2. times a direct per-image, per-class loop implementation of the same rules (written
   here: ``csv`` module, a heap per key, a Python loop over images, classes and
   detections) and our evaluator on the same 10% subset of the videos, checks that both give
   the same per-class APs, and prints the speed ratio.

3. with ``--reference-dir DIR``: times the official evaluator found in ``DIR`` on the same full
   set in the same run, and compares its mAP with ours. Without it, the only reference is the
   loop of step 2, which is this project's own code, not the official evaluator; the output says so.

``--reference-dir`` layouts (the code is not downloaded; give a checkout):

* ActivityNet (``activitynet/ActivityNet``): ``DIR/Evaluation/get_ava_performance.py`` with its
  ``DIR/Evaluation/ava/`` object-detection utilities (``DIR`` may also be the ``Evaluation``
  folder itself). Run as ``python -O get_ava_performance.py -l LABELMAP -g GT -d PRED`` in a
  subprocess (``-e EXCLUSIONS`` when the script has that flag; otherwise the excluded keys are
  removed from copies of both CSVs first, outside the timing); the mAP is read from the
  ``PascalBoxes_Precision/mAP@0.5IOU`` entry it prints. Compared with our ``activitynet`` protocol.
* PySlowFast (``facebookresearch/SlowFast``): ``DIR/slowfast/utils/ava_eval_helper.py``, importable
  with ``DIR`` on ``sys.path`` (its own dependencies installed). A subprocess runs its
  ``read_labelmap``, ``read_exclusions``, ``read_csv`` and ``run_evaluation`` on the same files, as
  its ``evaluate_ava_from_files`` does; the time is that of those calls (its imports excluded).
  Compared with our ``pyslowfast`` protocol.

It prints ratios measured in this run; it asserts no times. Peak memory of the full run is
best read with ``/usr/bin/time -v python bench/eval_speed.py``; the script also prints the
process's peak resident size (``ru_maxrss``).

Usage::

    python bench/eval_speed.py [--data-dir DIR] [--protocol activitynet|pyslowfast|both]
                               [--reference-dir CHECKOUT]
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

NUM_VIDEOS = 64
NUM_KEYS = 50_000
NUM_GT_BOXES = 100_000
NUM_PRED_BOXES = 120_000
NUM_CLASSES = 80
SEED = 2022


# --------------------------------------------------------------------------------------
# Seeded data
# --------------------------------------------------------------------------------------


def _video_ids(rng: np.random.Generator) -> list:
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"))
    return ["".join(rng.choice(alphabet, 11)) for _ in range(NUM_VIDEOS)]


def _jitter(rng: np.random.Generator, boxes: np.ndarray, scale: float) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    noise = rng.normal(0.0, scale, size=boxes.shape) * np.stack([w, h, w, h], axis=1)
    out = np.clip(boxes + noise, 0.0, 1.0)
    out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 0.01)
    out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 0.01)
    return np.clip(np.round(out, 3), 0.0, 1.0)


def make_dataset(directory: Path) -> dict:
    """Write ``gt.csv``, ``pred.csv`` (80 rows per predicted box) and ``excluded.csv`` into
    ``directory`` (skipped when they are already there) and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.csv" for name in ("gt", "pred", "excluded")}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(SEED)
    videos = _video_ids(rng)

    # Keyframes: NUM_KEYS distinct (video, second) pairs, seconds 902..1798.
    per_video = np.full(NUM_VIDEOS, NUM_KEYS // NUM_VIDEOS)
    per_video[: NUM_KEYS - per_video.sum()] += 1
    key_video, key_second = [], []
    for v, n in enumerate(per_video):
        seconds = np.sort(rng.choice(np.arange(902, 1799), size=n, replace=False))
        key_video.append(np.full(n, v))
        key_second.append(seconds)
    key_video = np.concatenate(key_video)
    key_second = np.concatenate(key_second)

    # Ground-truth person boxes: ~2 per key, 1..3 actions each.
    gt_key = np.sort(rng.integers(0, NUM_KEYS, NUM_GT_BOXES))
    x1 = rng.uniform(0.0, 0.6, NUM_GT_BOXES)
    y1 = rng.uniform(0.0, 0.4, NUM_GT_BOXES)
    gt_boxes = np.round(np.stack([x1, y1, x1 + rng.uniform(0.15, 0.4, NUM_GT_BOXES),
                                  y1 + rng.uniform(0.3, 0.6, NUM_GT_BOXES)], axis=1), 3)
    gt_boxes = np.clip(gt_boxes, 0.0, 1.0)
    class_freq = 1.0 / np.arange(1, NUM_CLASSES + 1) ** 0.8
    class_freq /= class_freq.sum()
    n_labels = rng.choice([1, 2, 3], size=NUM_GT_BOXES, p=[0.5, 0.35, 0.15])
    gt_lines = []
    gt_labels = []
    for i in range(NUM_GT_BOXES):
        labels = rng.choice(NUM_CLASSES, size=n_labels[i], replace=False, p=class_freq) + 1
        gt_labels.append(labels)
        k = gt_key[i]
        b = gt_boxes[i]
        for a in labels:
            gt_lines.append(f"{videos[key_video[k]]},{key_second[k]:04d},{b[0]:.3f},{b[1]:.3f},"
                            f"{b[2]:.3f},{b[3]:.3f},{a},{i % 7}\n")

    # Predicted person boxes: every GT box jittered, plus false boxes up to NUM_PRED_BOXES.
    extra = NUM_PRED_BOXES - NUM_GT_BOXES
    pred_key = np.concatenate([gt_key, rng.integers(0, NUM_KEYS, extra)])
    pred_boxes = np.concatenate([_jitter(rng, gt_boxes, 0.08), _jitter(rng, gt_boxes[rng.integers(0, NUM_GT_BOXES, extra)], 0.5)])
    order = np.argsort(pred_key, kind="stable")
    true_labels = gt_labels + [np.zeros(0, dtype=np.int64)] * extra
    pred_lines = []
    for j in order:
        k = pred_key[j]
        b = pred_boxes[j]
        scores = rng.beta(0.6, 6.0, NUM_CLASSES)
        if len(true_labels[j]):
            scores[true_labels[j] - 1] = rng.beta(3.0, 2.0, len(true_labels[j]))
        prefix = f"{videos[key_video[k]]},{key_second[k]:04d},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},"
        pred_lines.append("".join(f"{prefix}{c + 1},{s:.6f}\n" for c, s in enumerate(scores)))

    excluded = rng.choice(NUM_KEYS, size=NUM_KEYS // 500, replace=False)
    ex_lines = [f"{videos[key_video[k]]},{key_second[k]:04d}\n" for k in np.sort(excluded)]
    for name, lines in (("gt", gt_lines), ("pred", pred_lines), ("excluded", ex_lines)):
        tmp = paths[name].with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            f.writelines(lines)
        os.replace(tmp, paths[name])
    return paths


def subset_files(paths: dict, directory: Path, fraction: float) -> dict:
    """The rows of the first ``fraction`` of the videos (by first appearance) of each file."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {name: directory / f"{name}.csv" for name in paths}
    with open(paths["gt"]) as f:
        videos = list(dict.fromkeys(line.split(",", 1)[0] for line in f))
    keep = set(videos[: max(1, int(round(len(videos) * fraction)))])
    for name, path in paths.items():
        with open(path) as src, open(out[name], "w", newline="") as dst:
            dst.writelines(line for line in src if line.split(",", 1)[0] in keep)
    return out


# --------------------------------------------------------------------------------------
# The direct loop implementation (the frame-mAP rules of docs/architecture.md and README, one image and class at a time)
# --------------------------------------------------------------------------------------


def _loop_read(path, whitelist, capacity):
    entries = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.reader(f):
            key = f"{row[0]},{int(row[1]):04d}"
            x1, y1, x2, y2 = (float(v) for v in row[2:6])
            action = int(row[6])
            if action not in whitelist:
                continue
            score = float(row[7]) if len(row) > 7 and capacity >= 0 and row[7] != "" else 1.0
            item = (score, action, y1, x1, y2, x2)
            if capacity > 0:
                heap = entries[key]
                if len(heap) < capacity:
                    heapq.heappush(heap, item)
                elif score > heap[0][0]:
                    heapq.heapreplace(heap, item)
            else:
                entries[key].append(item)
    return entries


def _loop_iou(d, g):
    ih = max(0.0, min(d[2], g[2]) - max(d[0], g[0]))
    iw = max(0.0, min(d[3], g[3]) - max(d[1], g[1]))
    inter = ih * iw
    union = (d[2] - d[0]) * (d[3] - d[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
    return inter / union


def loop_evaluate(gt_path, pred_path, excluded_path, class_ids, protocol):
    """Per-class AP with a plain loop over images, classes and detections -> {class_id: AP}."""
    whitelist = set(class_ids)
    with open(excluded_path, newline="") as f:
        excluded = {f"{r[0]},{int(r[1]):04d}" for r in csv.reader(f) if r}
    gt = _loop_read(gt_path, whitelist, 0)
    dets = _loop_read(pred_path, whitelist, 50 if protocol == "activitynet" else 0)
    gt = {k: v for k, v in gt.items() if k not in excluded}
    with open(gt_path, newline="") as f:  # keys of the ground-truth file, whatever their actions
        gt_file_keys = {f"{r[0]},{int(r[1]):04d}" for r in csv.reader(f) if r}
    num_gt = defaultdict(int)
    for items in gt.values():
        for item in items:
            num_gt[item[1]] += 1
    scores = defaultdict(list)
    tps = defaultdict(list)
    for key, items in dets.items():
        if key in excluded or (protocol == "activitynet" and key not in gt_file_keys):
            continue
        if protocol == "activitynet":
            items = sorted(items, key=lambda t: -t[0])
        gt_items = gt.get(key, [])
        for c in class_ids:
            boxes = [t for t in items if t[1] == c and t[2] < t[4] and t[3] < t[5]]
            if not boxes:
                continue
            gboxes = [t[2:] for t in gt_items if t[1] == c]
            taken = [False] * len(gboxes)
            for t in boxes:
                tp = False
                if gboxes:
                    ious = [_loop_iou(t[2:], g) for g in gboxes]
                    best = max(range(len(ious)), key=lambda i: (ious[i], -i))
                    if ious[best] >= 0.5 and not taken[best]:
                        taken[best] = tp = True
                scores[c].append(t[0])
                tps[c].append(tp)
    aps = {}
    for c in class_ids:
        if num_gt[c] == 0:
            aps[c] = math.nan
            continue
        s = np.asarray(scores[c], dtype=float)
        t = np.asarray(tps[c], dtype=bool)
        if s.size == 0:
            aps[c] = 0.0
            continue
        order = np.argsort(s)[::-1]
        tp = np.cumsum(t[order].astype(int))
        fp = np.cumsum(1 - t[order].astype(int))
        precision = tp / (tp + fp)
        recall = tp / num_gt[c]
        recall = np.concatenate([[0], recall, [1]])
        precision = np.concatenate([[0], precision, [0]])
        for i in range(len(precision) - 2, -1, -1):
            precision[i] = max(precision[i], precision[i + 1])
        idx = np.where(recall[1:] != recall[:-1])[0] + 1
        aps[c] = float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))
    return aps


# --------------------------------------------------------------------------------------
# The official evaluators, from a checkout given with --reference-dir
# --------------------------------------------------------------------------------------

_PYSLOWFAST_DRIVER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from slowfast.utils import ava_eval_helper as helper
labelmap, gt, pred, excluded = sys.argv[2:6]
start = time.perf_counter()
categories, whitelist = helper.read_labelmap(labelmap)
excluded_keys = helper.read_exclusions(excluded)
groundtruth = helper.read_csv(gt, whitelist, load_score=False)
detections = helper.read_csv(pred, whitelist, load_score=True)
metrics = helper.run_evaluation(categories, groundtruth, detections, excluded_keys, verbose=False)
seconds = time.perf_counter() - start
print("BENCH_RESULT " + json.dumps({"seconds": seconds, "mAP": float(metrics["PascalBoxes_Precision/mAP@0.5IOU"])}))
"""

_MAP_LINE = re.compile(r"PascalBoxes_Precision/mAP@0\.5IOU'?\s*:\s*([-+0-9.eE]+|nan)")


def find_reference(directory: Path):
    """``(kind, path)``: ``("activitynet", get_ava_performance.py)`` or ``("pyslowfast", checkout root)``
    for a checkout laid out as the module docstring says; raises SystemExit otherwise."""
    for script in (directory / "Evaluation" / "get_ava_performance.py", directory / "get_ava_performance.py"):
        if script.is_file():
            return "activitynet", script
    if (directory / "slowfast" / "utils" / "ava_eval_helper.py").is_file():
        return "pyslowfast", directory
    raise SystemExit(f"--reference-dir {directory}: found neither Evaluation/get_ava_performance.py (ActivityNet) "
                     f"nor slowfast/utils/ava_eval_helper.py (PySlowFast)")


def _without_excluded(paths: dict, directory: Path) -> dict:
    """Copies of the ground-truth and prediction CSVs without the excluded keys."""
    with open(paths["excluded"], newline="") as f:
        excluded = {f"{r[0]},{int(r[1]):04d}" for r in csv.reader(f) if r}
    directory.mkdir(parents=True, exist_ok=True)
    out = dict(paths)
    for name in ("gt", "pred"):
        out[name] = directory / f"{name}.csv"
        with open(paths[name], newline="") as src, open(out[name], "w", newline="") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            writer.writerows(r for r in csv.reader(src) if r and f"{r[0]},{int(r[1]):04d}" not in excluded)
    return out


def run_reference(kind: str, location: Path, paths: dict, labelmap_path: Path, work: Path) -> dict:
    """Run the official evaluator on ``paths`` -> ``{"seconds", "mAP", "what"}``."""
    env = dict(os.environ)
    if kind == "activitynet":
        source = location.read_text(errors="replace")
        has_exclusions = "--exclusions" in source or "'-e'" in source or '"-e"' in source
        files = paths if has_exclusions else _without_excluded(paths, work / "reference_inputs")
        cmd = [sys.executable, "-O", location.name, "-l", str(labelmap_path), "-g", str(files["gt"]),
               "-d", str(files["pred"])] + (["-e", str(paths["excluded"])] if has_exclusions else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=location.parent, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t0
        found = _MAP_LINE.search(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not found:
            raise SystemExit(f"the official script failed (status {proc.returncode}):\n{proc.stderr[-2000:]}")
        what = f"official ActivityNet get_ava_performance.py ({location}), subprocess wall time"
        return {"seconds": seconds, "mAP": float(found.group(1)), "what": what}
    cmd = [sys.executable, "-c", _PYSLOWFAST_DRIVER, str(location), str(labelmap_path), str(paths["gt"]),
           str(paths["pred"]), str(paths["excluded"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"PySlowFast's ava_eval_helper failed (status {proc.returncode}):\n{proc.stderr[-2000:]}")
    result = json.loads(line[len("BENCH_RESULT "):])
    result["what"] = f"PySlowFast ava_eval_helper ({location}), its reading and evaluation calls"
    return result


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _ours(paths, labelmap, protocol):
    from ava_detect.evaluation.frame_map import evaluate_files

    return evaluate_files(gt_path=paths["gt"], pred_path=paths["pred"], labelmap=labelmap,
                          exclusions_path=paths["excluded"], protocol=protocol)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "ava_detect_eval_bench"),
                        help="where the seeded set is written (reused when present)")
    parser.add_argument("--protocol", default="activitynet", choices=["activitynet", "pyslowfast", "both"])
    parser.add_argument("--subset", type=float, default=0.1, help="fraction of videos for the loop comparison")
    parser.add_argument("--skip-loop", action="store_true", help="skip the comparison with the loop on the subset")
    parser.add_argument("--reference-dir", type=Path, metavar="CHECKOUT",
                        help="a checkout of the official evaluator (ActivityNet or PySlowFast; see the layouts "
                             "above) to time on the same full set; default: no official reference")
    args = parser.parse_args(argv)
    reference = find_reference(args.reference_dir) if args.reference_dir else None

    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.data.constants import labelmap_60_path

    labelmap = read_labelmap(labelmap_60_path())
    data_dir = Path(args.data_dir)
    t0 = time.perf_counter()
    paths = make_dataset(data_dir)
    n_pred = sum(1 for _ in open(paths["pred"], "rb"))
    n_gt = sum(1 for _ in open(paths["gt"], "rb"))
    print(f"data: {paths['pred'].parent} ({n_gt:,} ground-truth rows, {n_pred:,} detection rows; "
          f"ready in {time.perf_counter() - t0:.1f} s)")
    protocols = ["activitynet", "pyslowfast"] if args.protocol == "both" else [args.protocol]

    full_times = {}
    for protocol in protocols:
        t0 = time.perf_counter()
        result = _ours(paths, labelmap, protocol)
        full_times[protocol] = time.perf_counter() - t0
        print(f"ours, full set, {protocol}: {full_times[protocol]:.2f} s end to end, mAP {result.mAP:.6f}, "
              f"peak RSS so far {_peak_rss_mb():,.0f} MB")
        if reference is not None and reference[0] == protocol:
            ref = run_reference(reference[0], reference[1], paths, labelmap_60_path(), data_dir)
            print(f"reference: {ref['what']}: {ref['seconds']:.2f} s, mAP {ref['mAP']:.6f} "
                  f"(difference from ours {abs(ref['mAP'] - result.mAP):.3g}); "
                  f"speed ratio reference/ours = {ref['seconds'] / full_times[protocol]:.1f}x")
    if reference is None:
        print("reference: no --reference-dir given, so no official evaluator is timed; the ratios below are "
              "against this script's own loop implementation of the rules, not the official code")
    elif reference[0] not in protocols:
        print(f"reference: the checkout is {reference[0]}'s evaluator; run with --protocol {reference[0]} "
              f"(or both) to time it")

    if args.skip_loop:
        return 0
    sub = subset_files(paths, data_dir / f"subset_{args.subset:g}", args.subset)
    print("loop: this script's own per-image, per-class loop over the same rules (not the official code)")
    for protocol in protocols:
        t0 = time.perf_counter()
        ours = _ours(sub, labelmap, protocol)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        loop = loop_evaluate(sub["gt"], sub["pred"], sub["excluded"], labelmap.ids, protocol)
        t_loop = time.perf_counter() - t0
        diffs = [abs(ours.per_class_ap[c] - loop[c]) for c in labelmap.ids if not math.isnan(loop[c])]
        nan_ok = all(math.isnan(ours.per_class_ap[c]) == math.isnan(loop[c]) for c in labelmap.ids)
        print(f"{protocol}, {args.subset:.0%} subset: loop {t_loop:.2f} s, ours {t_ours:.2f} s, "
              f"speed ratio loop/ours = {t_loop / t_ours:.1f}x; largest per-class AP difference "
              f"{max(diffs, default=0.0):.3g}, NaN classes {'agree' if nan_ok else 'DIFFER'}")
        print(f"  loop extrapolated to the full set: ~{t_loop / args.subset:.0f} s vs ours "
              f"{full_times[protocol]:.2f} s (ratio ~{t_loop / args.subset / full_times[protocol]:.0f}x)")
    print(f"peak RSS: {_peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
