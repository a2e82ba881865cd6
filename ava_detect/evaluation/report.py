"""Reports of a frame-mAP evaluation: a text table, sub-means by AVA label type, JSON, plots."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ava_detect.data.ava_files import LabelMap
from ava_detect.evaluation.frame_map import FrameMAPResult
from ava_detect.io import atomic_open, atomic_path
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: AVA label types, in report order, with their display names.
LABEL_TYPES = {
    "PERSON_MOVEMENT": "person movement",
    "OBJECT_MANIPULATION": "object manipulation",
    "PERSON_INTERACTION": "person interaction",
}


def is_full_ava_labelmap(labelmap: LabelMap) -> bool:
    """True when ``labelmap`` has all 80 AVA classes (ids 1..80)."""
    return sorted(labelmap.ids) == list(range(1, 81))


def class_types(labelmap: LabelMap) -> Dict[int, str]:
    """Class id -> AVA label type. Label maps without types (the 60-class ``item`` dialect) take
    them from the packaged 80-class map, for ids whose name agrees with it."""
    if labelmap.types:
        return dict(labelmap.types)
    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.data.constants import labelmap_80_path

    full = read_labelmap(labelmap_80_path())
    return {i: full.types[i] for i in labelmap.ids if i in full.types and full.names.get(i) == labelmap.names[i]}


def type_means(result: FrameMAPResult) -> Dict[str, float]:
    """Mean AP over the classes with ground truth of each label type (NaN when a type has none).

    Returns:
        ``{"PERSON_MOVEMENT": mAP, "OBJECT_MANIPULATION": mAP, "PERSON_INTERACTION": mAP}``;
        empty when the label map's classes have no known type.
    """
    types = class_types(result.labelmap)
    if not types:
        return {}
    out = {}
    for t in LABEL_TYPES:
        aps = [result.per_class_ap[i] for i in result.labelmap.ids if types.get(i) == t]
        aps = [a for a in aps if not math.isnan(a)]
        out[t] = float(np.mean(aps)) if aps else math.nan
    return out


def _fmt(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits - 2}f}"


def format_report(result: FrameMAPResult, *, official_60: Optional[FrameMAPResult] = None) -> str:
    """A text report: mAP, the official 60-class mAP (when given), sub-means by label type, and a
    per-class table (id, name, AP, ground-truth boxes). APs are shown in percent."""
    lines = [f"protocol: {result.protocol}    label map: {result.labelmap.path or '(in memory)'} "
             f"({len(result.labelmap)} classes)"]
    evaluated = sum(1 for a in result.per_class_ap.values() if not math.isnan(a))
    lines.append(f"frame-mAP@0.5: {_fmt(result.mAP)}  (mean over {evaluated} classes with ground truth)")
    if official_60 is not None:
        n60 = sum(1 for a in official_60.per_class_ap.values() if not math.isnan(a))
        lines.append(f"official 60-class frame-mAP@0.5: {_fmt(official_60.mAP)}  ({n60} classes with ground truth)")
    means = type_means(result)
    if means:
        lines.append("by label type: " + ", ".join(f"{LABEL_TYPES[t]} {_fmt(m)}" for t, m in means.items()))
    width = max([len(result.labelmap.names[i]) for i in result.labelmap.ids] + [4])
    lines.append("")
    lines.append(f"{'id':>4}  {'name':<{width}}  {'AP':>6}  {'GT':>7}")
    for i in result.labelmap.ids:
        lines.append(f"{i:>4}  {result.labelmap.names[i]:<{width}}  {_fmt(result.per_class_ap[i]):>6}  "
                     f"{result.num_gt[i]:>7}")
    return "\n".join(lines)


def _num(x: float) -> Optional[float]:
    return None if math.isnan(x) else float(x)


def result_to_dict(result: FrameMAPResult, *, official_60: Optional[FrameMAPResult] = None) -> dict:
    """JSON-ready summary: ``protocol``, ``labelmap``, ``mAP``, ``per_class_ap`` (``"id": AP``
    or null for classes without ground truth), ``num_gt``, ``type_mAP`` and, when given,
    ``official_60_mAP``. APs are fractions in [0, 1]."""
    out = {
        "protocol": result.protocol,
        "labelmap": result.labelmap.path,
        "mAP": _num(result.mAP),
        "per_class_ap": {str(i): _num(result.per_class_ap[i]) for i in result.labelmap.ids},
        "num_gt": {str(i): int(result.num_gt[i]) for i in result.labelmap.ids},
        "class_names": {str(i): result.labelmap.names[i] for i in result.labelmap.ids},
        "type_mAP": {t: _num(m) for t, m in type_means(result).items()},
    }
    if official_60 is not None:
        out["official_60_mAP"] = _num(official_60.mAP)
        out["official_60_per_class_ap"] = {str(i): _num(official_60.per_class_ap[i]) for i in official_60.labelmap.ids}
    return out


def write_json(path: PathLike, result: FrameMAPResult, *, official_60: Optional[FrameMAPResult] = None) -> None:
    """Write :func:`result_to_dict` as JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(result_to_dict(result, official_60=official_60), f, indent=2)
        f.write("\n")


#: The files :func:`write_plots` writes into its folder.
PLOT_FILES = ("per_class_ap.png", "precision_recall.png")


def write_plots(directory: PathLike, result: FrameMAPResult) -> List[Path]:
    """Write ``per_class_ap.png`` (bar chart of per-class AP, classes with ground truth) and
    ``precision_recall.png`` (one precision-recall curve per class) into ``directory``.

    Returns:
        The paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ids = [i for i in result.labelmap.ids if not math.isnan(result.per_class_ap[i])]
    names = [result.labelmap.names[i] for i in ids]
    written = []

    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(ids) + 2), 5), dpi=100)
    ax.bar(range(len(ids)), [100 * result.per_class_ap[i] for i in ids], color="tab:blue")
    ax.axhline(100 * result.mAP if not math.isnan(result.mAP) else 0, color="tab:red", lw=1,
               label=f"mAP {_fmt(result.mAP)}")
    ax.set_xticks(range(len(ids)))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel("AP@0.5 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Per-class frame AP ({result.protocol})")
    ax.legend(loc="upper right")
    fig.tight_layout()
    out = directory / PLOT_FILES[0]
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    written.append(out)

    cols = 8
    rows = max(1, math.ceil(len(ids) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.0 * rows), dpi=80, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(ids):
            ax.axis("off")
            continue
        i = ids[k]
        r = result.recall.get(i, np.zeros(0))
        p = result.precision.get(i, np.zeros(0))
        ax.step(np.r_[0.0, r], np.r_[p[:1] if len(p) else [0.0], p], where="pre", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{i} {names[k][:18]} {_fmt(result.per_class_ap[i])}", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"Precision-recall at IoU 0.5 ({result.protocol}); x: recall, y: precision", fontsize=9)
    fig.tight_layout()
    out = directory / PLOT_FILES[1]
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    written.append(out)
    return written
