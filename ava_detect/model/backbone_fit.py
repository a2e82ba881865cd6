"""Does a checkpoint's backbone have the model's layout? One clear error when it does not.

The layout of a backbone, read from its state-dict names (ours, after a converter has mapped the
file's names): pathways, residual blocks per stage and pathway, and where its non-local blocks are.
When a file's layout differs from the model's (an R50 file given to an R101 preset, a file with
non-local blocks given to a model without them, or the reverse), :func:`check_backbone_fits` raises
one :class:`~ava_detect.errors.AvaDetectError` that names the first tensor that does not fit and
describes both layouts, instead of listing every tensor.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from torch import Tensor

from ava_detect.errors import AvaDetectError

_STAGE_KEY = re.compile(r"^backbone\.stages\.(\d+)\.(\d+)\.(nonlocal)?(\d+)\.")

#: (stage, pathway) -> (residual blocks, block indices followed by a non-local block)
Layout = Dict[Tuple[int, int], Tuple[int, Tuple[int, ...]]]


def backbone_layout(names: Iterable[str]) -> Layout:
    """Blocks per (stage, pathway) and the positions of non-local blocks, from our state-dict names."""
    blocks: Dict[Tuple[int, int], set] = {}
    non_local: Dict[Tuple[int, int], set] = {}
    for name in names:
        m = _STAGE_KEY.match(name)
        if m:
            key = (int(m[1]), int(m[2]))
            (non_local if m[3] else blocks).setdefault(key, set()).add(int(m[4]))
            blocks.setdefault(key, set())
    return {key: (len(b), tuple(sorted(non_local.get(key, ())))) for key, b in sorted(blocks.items())}


def describe_layout(layout: Layout) -> str:
    """E.g. ``2 pathways, blocks res2..res5 3/4/23/3 and 3/4/23/3, non-local after res4 blocks 6, 13, 20 of pathway 0``."""
    pathways = sorted({p for _, p in layout})
    counts = ["/".join(str(layout.get((s, p), (0, ()))[0]) for s in range(4)) for p in pathways]
    nl = [f"res{s + 2} block(s) {', '.join(map(str, after))} of pathway {p}"
          for (s, p), (_, after) in layout.items() if after]
    return (f"{len(pathways)} pathway(s), residual blocks res2..res5 {' and '.join(counts)}, "
            + ("non-local blocks after " + "; ".join(nl) if nl else "no non-local blocks"))


def _first_misfit(entries: Mapping[str, Tuple[Optional[str], Tensor]], target: Mapping[str, Tensor]) -> Tuple[str, List[int]]:
    """The first tensor that does not fit (file entries with no place first, then missing, then
    mismatched, each in its own order) and the counts of the three kinds."""
    provided = {ours: (k, v) for k, (ours, v) in entries.items() if ours is not None}
    unexpected = [k for k, (ours, _) in entries.items()
                  if not k.endswith("num_batches_tracked") and (ours is None or ours not in target)
                  and not (ours or "").startswith("head.")]
    wanted = [k for k in target if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    missing = [k for k in wanted if k not in provided]
    mismatched = [k for k in wanted if k in provided and provided[k][1].shape != target[k].shape]
    counts = [len(unexpected), len(missing), len(mismatched)]
    if unexpected:
        return f"first tensor of the file with no place in the model: {unexpected[0]!r}", counts
    if missing:
        return f"first tensor of the model missing from the file: {missing[0]!r}", counts
    if mismatched:
        k = mismatched[0]
        name, v = provided[k]
        shown = k if name == k else f"{name} ({k})"
        return (f"first tensor that differs in shape: {shown!r}, file {tuple(v.shape)}, "
                f"model {tuple(target[k].shape)}"), counts
    return "", counts


def check_backbone_fits(entries: Mapping[str, Tuple[Optional[str], Tensor]], target: Mapping[str, Tensor],
                        path: Path) -> None:
    """Raise when the file's backbone layout differs from the model's.

    Args:
        entries: the file's tensors, file name -> (our name or None when it has none, tensor).
        target: the model's state dict (our names).
        path: the file, for the error message.

    Raises:
        AvaDetectError: one line: how many tensors do not fit, the first of them, and both layouts.
    """
    file_layout = backbone_layout(ours for ours, _ in entries.values() if ours is not None)
    if not file_layout:
        return
    model_layout = backbone_layout(target)
    if file_layout == model_layout:
        return
    first, (unexpected, missing, mismatched) = _first_misfit(entries, target)
    raise AvaDetectError(
        f"the file's backbone does not fit the model ({unexpected} tensor(s) of the file with no place in the model, "
        f"{missing} of the model's missing, {mismatched} of another shape); {first}. File: {describe_layout(file_layout)}; "
        f"model: {describe_layout(model_layout)} (choose the preset made for these weights, e.g. "
        "slowfast_r101_8x8_nonlocal for PySlowFast's R101 AVA models, slowfast_r50_* for R50 files)", path)
