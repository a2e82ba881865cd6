"""Time of the evaluation report page (``eval --html``) against the evaluation itself, same run.

Uses the seeded AVA-val-sized set of ``bench/eval_speed.py`` (made once and cached in
``--data-dir``: ~50,000 keyframes, ~165,000 ground-truth rows, 9.6M detection rows; no videos,
so no thumbnails) and times, in one process:

1. the evaluation as ``ava-detect eval`` does it without ``--html``: reading the CSVs and
   :func:`~ava_detect.evaluation.frame_map.frame_map`;
2. the same evaluation keeping the per-detection matching
   (:func:`~ava_detect.evaluation.frame_map.frame_map_matching`), whose extra time counts as the page's;
3. :func:`~ava_detect.evaluation.html_report.write_html_report` on that matching (the error
   analysis, the page and its writing).

It prints the page's time (2's extra + 3) as a ratio of 1's, and the page's size. The reference
is our own evaluator: there is no other report page of AVA results to compare with.

Usage::

    python bench/html_report.py [--data-dir DIR] [--protocol activitynet|pyslowfast] [--classes 60|80]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path


def _eval_speed():
    spec = importlib.util.spec_from_file_location("eval_speed", Path(__file__).resolve().parent / "eval_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "ava_detect_eval_bench"),
                        help="where the seeded set is written (reused when present; shared with eval_speed.py)")
    parser.add_argument("--protocol", default="activitynet", choices=["activitynet", "pyslowfast"])
    parser.add_argument("--classes", type=int, default=60, choices=[60, 80],
                        help="label map: the official 60 classes (default) or all 80")
    parser.add_argument("--out", help="where to write the page (default: a temporary folder)")
    args = parser.parse_args(argv)

    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.data.constants import labelmap_60_path, labelmap_80_path
    from ava_detect.evaluation.frame_map import frame_map, frame_map_matching, read_inputs
    from ava_detect.evaluation.html_report import write_html_report

    t0 = time.perf_counter()
    paths = _eval_speed().make_dataset(Path(args.data_dir))
    print(f"data: {paths['pred'].parent} (ready in {time.perf_counter() - t0:.1f} s)")
    labelmap = read_labelmap(labelmap_60_path() if args.classes == 60 else labelmap_80_path())

    t0 = time.perf_counter()
    gt, det, excluded = read_inputs(gt_path=paths["gt"], pred_path=paths["pred"], exclusions_path=paths["excluded"])
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = frame_map(gt=gt, detections=det, labelmap=labelmap, protocol=args.protocol, excluded_keys=excluded)
    t_map = time.perf_counter() - t0
    t_eval = t_read + t_map

    t0 = time.perf_counter()
    matching = frame_map_matching(gt=gt, detections=det, labelmap=labelmap, protocol=args.protocol,
                                  excluded_keys=excluded)
    t_matching = time.perf_counter() - t0
    assert matching.result.mAP == result.mAP
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "report.html"
        t0 = time.perf_counter()
        page = write_html_report(out, matching, files={k: str(v) for k, v in paths.items()})
        t_write = time.perf_counter() - t0
    t_page = max(0.0, t_matching - t_map) + t_write
    print(f"evaluation ({args.protocol}, {args.classes} classes, {len(det):,} detection rows): "
          f"{t_eval:.2f} s (reading {t_read:.2f} s + frame_map {t_map:.2f} s), mAP {result.mAP:.6f}")
    print(f"page: {t_page:.2f} s (keeping the matching +{max(0.0, t_matching - t_map):.2f} s, analysis and page "
          f"{t_write:.2f} s), {page.bytes / 1e6:.2f} MB")
    print(f"page time / evaluation time = {t_page / t_eval:.2f} (reference: our own evaluation, this run)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
