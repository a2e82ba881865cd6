"""Fine-tuning to another label map: which rows of a file's head start the rows of a new head.

When the weights come from a model trained on other actions (AVA's 80, say) and the model to
train has its own label map, the backbone loads as usual and the head is re-initialised; the rows
of its final linear layer (``head.proj``: weight row ``[D]`` and bias) of each action whose name is
also an action of the file's label map then start from the file's row for that action.

Names match exactly after normalising case and whitespace (:func:`normalise_name`:
``"Talk to (e.g., self,  a person, a group)"`` matches ``"talk to (e.g., self, a person, a group)"``;
``"stand up"`` does not match ``"stand"``). The file's label map is:

* our checkpoints: the class names stored in them (``class_names``: id -> name in head-row order,
  written by ``ava-detect train``); an older checkpoint without them: AVA v2.2's 80 classes when its
  head has 80 rows, else none (nothing copied, with a note);
* PyTorchVideo and PySlowFast AVA detection files (the published AVA weights): the packaged AVA
  v2.2 label map, 80 classes (a 60-row head: the 60-class list of the official evaluation);
* Kinetics classification files: none (their head is dropped; the new head starts fresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn


def normalise_name(name: str) -> str:
    """The form two action names are compared in: case folded, runs of whitespace as one space, trimmed."""
    return " ".join(str(name).split()).casefold()


@dataclass(frozen=True)
class CopiedRow:
    """One action whose head row started from the file's row."""

    #: the action's name in the model's label map
    name: str
    #: the action's id in the file's label map, and the row of the file's head it came from
    source_id: int
    source_row: int
    #: the model's head column (row of ``head.proj``) it went to
    column: int


@dataclass(frozen=True)
class SourceNames:
    """The label map of a file's head: id -> name in head-row order, and where it came from."""

    names: Dict[int, str]
    origin: str


def ava_names(rows: int) -> Optional[SourceNames]:
    """The packaged AVA v2.2 label map that fits a head of ``rows`` rows (80: all classes; 60: the
    classes of the official evaluation), or None."""
    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.data.constants import labelmap_60_path, labelmap_80_path

    if rows == 80:
        lm = read_labelmap(labelmap_80_path())
        return SourceNames({i: lm.names[i] for i in lm.ids}, "AVA v2.2 label map, 80 classes")
    if rows == 60:
        lm = read_labelmap(labelmap_60_path())
        return SourceNames({i: lm.names[i] for i in lm.ids}, "AVA v2.2 label map of the evaluation, 60 classes")
    return None


def stored_names(value: Any, rows: int) -> Tuple[Optional[Dict[int, str]], Optional[str]]:
    """The ``class_names`` entry of one of our checkpoints, checked: ``(id -> name, None)``, or
    ``(None, why it is not used)`` when it is absent or does not describe a head of ``rows`` rows."""
    if value is None:
        return None, None
    if (not isinstance(value, Mapping) or not all(isinstance(k, int) and isinstance(v, str) for k, v in value.items())):
        return None, "its class_names entry is not a mapping of action id -> name; ignored"
    if len(value) != rows:
        return None, f"its class_names entry names {len(value)} classes but its head has {rows} rows; ignored"
    return dict(value), None


def match_rows(source: Mapping[int, str], target: Mapping[int, str]) -> Tuple[List[CopiedRow], List[Tuple[int, str]]]:
    """Pair the model's actions with the file's by normalised name.

    Args:
        source: the file's label map, id -> name in head-row order.
        target: the model's label map, id -> name in head-column order.

    Returns:
        ``(copied, fresh)``: one :class:`CopiedRow` per model action found in ``source`` (the first
        file action of that name), and ``(column, name)`` of the others.
    """
    by_name: Dict[str, Tuple[int, int]] = {}
    for row, (sid, name) in enumerate(source.items()):
        by_name.setdefault(normalise_name(name), (int(sid), row))
    copied: List[CopiedRow] = []
    fresh: List[Tuple[int, str]] = []
    for column, name in enumerate(target.values()):
        hit = by_name.get(normalise_name(name))
        if hit is None:
            fresh.append((column, name))
        else:
            copied.append(CopiedRow(name=name, source_id=hit[0], source_row=hit[1], column=column))
    return copied, fresh


def same_names(source: Mapping[int, str], target: Mapping[int, str]) -> bool:
    """Whether both label maps name the same actions in the same order (normalised names)."""
    return [normalise_name(n) for n in source.values()] == [normalise_name(n) for n in target.values()]


def copy_rows(proj: nn.Linear, weight: Tensor, bias: Optional[Tensor], rows: List[CopiedRow]) -> None:
    """Set ``proj``'s row ``r.column`` (weight row and bias) to the file's row ``r.source_row``.

    Args:
        proj: the model's final linear layer, weight ``[C, D]``.
        weight: the file's weight ``[C_file, D]``; bias: ``[C_file]`` or None (bias left as it is).
    """
    if not rows:
        return
    cols = torch.tensor([r.column for r in rows])
    src = torch.tensor([r.source_row for r in rows])
    with torch.no_grad():
        proj.weight[cols] = weight[src].to(proj.weight)
        if bias is not None:
            proj.bias[cols] = bias[src].to(proj.bias)


__all__ = ["CopiedRow", "SourceNames", "ava_names", "copy_rows", "match_rows", "normalise_name", "same_names",
           "stored_names"]
