"""The evaluation report page: one self-contained HTML file (inline CSS, JavaScript and JPEG
thumbnails; no network, no external fonts) that shows where a detector is wrong.

Its content: the headline numbers (the official 60-class mAP, the mAP over the label map's
classes, the sub-means by label type), the protocol and files; a sortable per-class table (AP,
ground truth, detections, the score threshold with the best F1, the kinds of false positive,
the 60-class subset marked with a star); precision-recall curves (all classes on one chart with
the selected class highlighted, and the selected class alone); per class, the highest-scoring
false positives and missed ground-truth boxes drawn on thumbnails of their keyframes (when
videos are given); label confusions; per-video mAP. The numbers come from
:mod:`ava_detect.evaluation.analysis`, the page's behaviour from ``resources/report.js``.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ava_detect.data.constants import SEGMENT_START_SECOND, resource_path
from ava_detect.evaluation.analysis import FP_KINDS, Analysis, Example, analyse
from ava_detect.evaluation.frame_map import FrameMAPResult, Matching
from ava_detect.evaluation.report import LABEL_TYPES, class_types, type_means
from ava_detect.io import PathLike, atomic_open
from ava_detect.structures import image_key

logger = logging.getLogger(__name__)

#: Classes shown in each direction of the confusion table (those with the most confusions).
CONFUSION_CLASSES = 12
#: Confusion pairs listed.
CONFUSION_PAIRS = 20
#: Default budget for all thumbnails together, in bytes of JPEG.
THUMBNAIL_BYTES = 8_000_000


@dataclass
class HtmlReport:
    """What :func:`write_html_report` wrote: the ``path``, its size in ``bytes``, the number of
    ``thumbnails`` on it, the ``missing_videos`` (asked for, not found) and the ``seconds`` it took."""

    path: Path
    bytes: int
    thumbnails: int
    seconds: float
    missing_videos: List[str] = field(default_factory=list)


def _num(x: float, digits: int = 4) -> Optional[float]:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _official_ids(result: FrameMAPResult) -> set:
    """Ids of the label map's classes that are in the official 60-class list (same id and name)."""
    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.data.constants import labelmap_60_path

    official = read_labelmap(labelmap_60_path())
    names = result.labelmap.names
    return {i for i in result.labelmap.ids if i in official.names and official.names[i] == names[i]}


def _example(ex: Example) -> dict:
    box = lambda b: None if b is None else [round(v, 4) for v in b]  # noqa: E731
    return {"kind": ex.kind, "key": image_key(ex.video_id, ex.second), "det": box(ex.det_box), "gt": box(ex.gt_box),
            "score": _num(ex.score), "iou": _num(ex.iou, 3), "why": ex.why, "acts": list(ex.gt_actions)}


def _confusion(analysis: Analysis) -> dict:
    cm = analysis.confusion
    ids = analysis.class_ids
    rows = [int(i) for i in np.argsort(-cm.sum(axis=1), kind="stable")[:CONFUSION_CLASSES] if cm[i].sum() > 0]
    cols = [int(j) for j in np.argsort(-cm.sum(axis=0), kind="stable")[:CONFUSION_CLASSES] if cm[:, j].sum() > 0]
    return {"top": [list(t) for t in analysis.top_confusions(CONFUSION_PAIRS)],
            "matrix": {"pred": [int(ids[i]) for i in rows], "true": [int(ids[j]) for j in cols],
                       "counts": [[int(cm[i, j]) for j in cols] for i in rows]}}


def report_data(matching: Matching, analysis: Analysis, *, official_60: Optional[FrameMAPResult] = None,
                files: Optional[Dict[str, Optional[str]]] = None, thumbnails=None,
                warnings: Optional[List[str]] = None) -> dict:
    """Everything the page shows, as JSON-ready values (APs as fractions, NaN as null)."""
    result = matching.result
    lm = result.labelmap
    types = class_types(lm)
    official = _official_ids(result)
    if official_60 is None and set(lm.ids) == official and len(official) == 60:
        official_60 = result
    classes = []
    for cid in lm.ids:
        c = analysis.classes[cid]
        classes.append({
            "id": cid, "name": lm.names[cid], "type": LABEL_TYPES.get(types.get(cid, ""), ""), "official": cid in official,
            "ap": _num(c.ap), "gt": c.num_gt, "det": c.num_det, "tp": c.num_tp, "f1": _num(c.best_f1),
            "thr": _num(c.threshold, 6), "p": _num(c.precision_at), "r": _num(c.recall_at),
            "top_p": _num(c.top_n_precision), "fp_kinds": c.fp_kinds,
            "curve": [[round(float(v), 4) for v in c.curve[0]], [round(float(v), 4) for v in c.curve[1]]],
        })
    with_gt = [c for c in classes if c["ap"] is not None]
    worst = min(with_gt, key=lambda c: (c["ap"], -c["gt"]), default=classes[0] if classes else None)
    examples = {str(cid): {"fp": [_example(e) for e in analysis.false_positives[cid]],
                           "miss": [_example(e) for e in analysis.misses[cid]]} for cid in lm.ids}
    thumbs = {}
    if thumbnails is not None:
        for (video, second), data in thumbnails.jpeg.items():
            w, h = thumbnails.size[(video, second)]
            thumbs[image_key(video, second)] = {"src": "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"),
                                                "w": w, "h": h}
    aspects = sorted(t["h"] / t["w"] for t in thumbs.values())
    return {
        "headline": {
            "map": _num(result.mAP), "official_60": _num(official_60.mAP) if official_60 is not None else None,
            "num_classes": len(lm), "num_evaluated": len(with_gt),
            "type_map": {LABEL_TYPES[t]: _num(m) for t, m in type_means(result).items()},
            "num_keyframes": analysis.num_keyframes, "num_persons": analysis.num_persons,
            "num_detections": int(len(matching.order)),
        },
        "protocol": result.protocol,
        "files": {"label map": lm.path or "(in memory)", **(files or {})},
        "fp_kinds": list(FP_KINDS),
        "classes": classes,
        "default_class": worst["id"] if worst else None,
        "examples": examples,
        "thumbs": thumbs,
        "has_videos": thumbnails is not None,
        "default_aspect": aspects[len(aspects) // 2] if aspects else 9 / 16,
        "confusion": _confusion(analysis),
        "videos": [{"id": v.video_id, "map": _num(v.mAP), "gt": v.num_gt, "det": v.num_det, "tp": v.num_tp,
                    "classes": v.num_classes} for v in analysis.videos],
        "warnings": list(warnings or []),
    }


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<div class="muted">protocol <b>{protocol}</b> &middot; frame-mAP at IoU 0.5</div>
<div id="files" class="small muted"></div>
<div id="warnings"></div>
<noscript><div class="warn">This page draws its tables and charts with JavaScript; please enable it.</div></noscript>
<div id="cards" class="cards"></div>

<h2>Classes</h2>
<div class="controls"><label><input type="checkbox" id="only60"> only the 60 classes of the official evaluation (&#9733;)</label>
<span class="muted small"> &middot; click a column to sort, a row to look at the class</span></div>
<div class="scroll tablewrap"><table id="classes"><thead></thead><tbody></tbody></table></div>
<div class="small muted legend">false positives among the class's N highest-scoring detections (N = its ground-truth boxes):
<span class="k0"></span>duplicate (the person has the action; another detection took it)
<span class="k1"></span>wrong action (IoU &ge; 0.5 with a person who does not do it)
<span class="k2"></span>poor box (IoU 0.1&ndash;0.5 with a person)
<span class="k3"></span>background (no annotated person)</div>

<h2>Precision-recall</h2>
<div class="charts">
<div class="chart"><svg id="allcurves" role="img" aria-label="precision-recall curves of all classes"></svg></div>
<div class="chart"><svg id="classcurve" role="img" aria-label="precision-recall curve of the selected class"></svg></div>
</div>

<h2 id="selected">Class <span id="selname"></span></h2>
<div id="selstats" class="small"></div>
<div class="small muted legend"><span style="background:var(--gt)"></span>ground truth
<span style="background:var(--det)"></span>detection (dashed), with its score</div>
<h3 id="fps-title"></h3>
<div id="fps" class="examples"></div>
<h3 id="misses-title"></h3>
<div id="misses" class="examples"></div>

<h2>Label confusions</h2>
<div class="small muted">False positives among each class's N highest-scoring detections that overlap a
ground-truth person (IoU &ge; 0.5) who does not do the predicted action, counted against each action that person does.</div>
<ol id="pairs" class="pairs"></ol>
<div class="scroll"><table id="cm" class="cm"></table></div>

<h2>Videos</h2>
<div class="small muted">mAP over the classes with ground truth in each video (sorted worst first).</div>
<div class="scroll tablewrap"><table id="videos"><thead></thead><tbody></tbody></table></div>
<p class="small muted">Made by ava_detect.</p>
</main>
<script type="application/json" id="report-data">{data}</script>
<script>
{js}
</script>
</body>
</html>
"""


def render_page(data: dict, *, title: str = "Frame-mAP report") -> str:
    """The page's HTML for :func:`report_data`'s ``data``."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    css = resource_path("report.css").read_text(encoding="utf-8")
    js = resource_path("report.js").read_text(encoding="utf-8")
    return _PAGE.format(title=html.escape(title), protocol=html.escape(data["protocol"]), css=css, js=js, data=payload)


def _thumbnail_keys(analysis: Analysis) -> List[tuple]:
    """The keyframes of the examples, first examples of every class first."""
    lists = [analysis.false_positives[c] for c in analysis.classes] + [analysis.misses[c] for c in analysis.classes]
    out = []
    for rank in range(max((len(x) for x in lists), default=0)):
        out.extend((x[rank].video_id, x[rank].second) for x in lists if rank < len(x))
    return out


def write_html_report(
    path: PathLike,
    matching: Matching,
    *,
    official_60: Optional[FrameMAPResult] = None,
    files: Optional[Dict[str, Optional[str]]] = None,
    videos: Optional[PathLike] = None,
    video_suffixes: Optional[List[str]] = None,
    second_offset: int = SEGMENT_START_SECOND,
    max_examples: int = 12,
    max_thumbnail_bytes: int = THUMBNAIL_BYTES,
) -> HtmlReport:
    """Write the report page of one evaluation to ``path`` (atomically; missing folders are made).

    Args:
        matching: from :func:`~ava_detect.evaluation.frame_map.frame_map_matching` (or
            :meth:`~ava_detect.evaluation.evaluator.AVAEvaluator.evaluate`'s ``matching``).
        official_60: the official 60-class result, shown beside the label map's own mAP.
        files: name -> path of the inputs, listed on the page.
        videos: a folder of the videos (``<video_id>.mp4`` or another suffix), for thumbnails of
            the examples' keyframes; None: examples without pictures.
        video_suffixes: file name suffixes to try first (e.g. the dataset's ``.mp4``).
        second_offset: the movie second at file time 0 (900 for prepared AVA videos, 0 for your own clips).
        max_examples: false positives and misses shown per class.
        max_thumbnail_bytes: budget for all thumbnails together (JPEG bytes).
    """
    from ava_detect.evaluation.thumbnails import SUFFIXES, make_thumbnails

    start = time.perf_counter()
    analysis = analyse(matching, max_examples=max_examples)
    thumbnails, warnings = None, []
    if videos is not None:
        suffixes = tuple(dict.fromkeys([*(video_suffixes or []), *SUFFIXES]))
        thumbnails = make_thumbnails(videos, _thumbnail_keys(analysis), second_offset=second_offset,
                                     max_bytes=max_thumbnail_bytes, suffixes=suffixes)
        if thumbnails.missing_videos:
            warnings.append(f"{len(thumbnails.missing_videos)} videos are not in {videos}, their examples have no "
                            f"picture: " + ", ".join(thumbnails.missing_videos))
        if thumbnails.skipped:
            warnings.append(f"thumbnail budget ({max_thumbnail_bytes:,} bytes) spent: {thumbnails.skipped} "
                            f"keyframes are shown without a picture")
    data = report_data(matching, analysis, official_60=official_60, files=files, thumbnails=thumbnails,
                       warnings=warnings)
    page = render_page(data).encode("utf-8")
    path = Path(path)
    with atomic_open(path, "wb") as f:
        f.write(page)
    report = HtmlReport(path=path, bytes=len(page), thumbnails=len(thumbnails.jpeg) if thumbnails else 0,
                        seconds=time.perf_counter() - start,
                        missing_videos=list(thumbnails.missing_videos) if thumbnails else [])
    logger.debug("wrote %s (%.1f MB, %d thumbnails) in %.1f s", path, report.bytes / 1e6, report.thumbnails, report.seconds)
    return report
