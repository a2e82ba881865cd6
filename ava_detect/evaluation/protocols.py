"""Evaluation protocols: the rules in which the official AVA evaluators differ, one value each.

A :class:`Protocol` is a small frozen set of rules that :func:`~ava_detect.evaluation.frame_map.frame_map`
applies; everything else (label-map filtering, exclusions, degenerate boxes, IoU >= 0.5 matching,
PASCAL VOC all-point AP, the mean over classes with ground truth) is shared by all protocols.
:data:`PROTOCOLS` is the table of protocols by name: the ``eval`` command's ``--protocol``
choices and the accepted values of ``test.protocol`` come from it, so a new protocol is one new
value here.

``activitynet`` (the default): the official challenge script ``get_ava_performance.py``. Its
    reader keeps, per image key, the 50 highest-scoring detections (a min-heap of ``(score,
    action_id, y1, x1, y2, x2)`` tuples, replaced only by a strictly higher score) and hands them
    over sorted by score; it reads the ground truth through the same heap (no cap; the score of a
    ground-truth row is its person id), so ground-truth boxes come in descending person-id order;
    detections on keys absent from the ground-truth file are ignored.
``pyslowfast``: PySlowFast's ``ava_eval_helper``: every detection, detections and ground truth
    in file order, detections on keys without ground truth are false positives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from ava_detect.errors import AvaDetectError

#: ``Protocol.order`` values.
ORDERS = ("score", "input")
#: ``Protocol.keys_without_gt`` values.
KEYS_WITHOUT_GT = ("ignore", "false_positive")


@dataclass(frozen=True)
class Protocol:
    """The rules of one evaluation protocol.

    Attributes:
        name: the name users pass (``--protocol``, ``test.protocol``).
        max_per_key: detections kept per image key, the highest-scoring ones as the official
            reader's heap keeps them (ties at the cut in its order); None keeps every detection.
        order: the order in which the rows of one key are matched. ``"score"``: as the official
            reader hands them over (detections by descending score; ground-truth boxes by
            descending last column, i.e. person id); ``"input"``: file order.
        keys_without_gt: detections on image keys absent from the ground-truth file are
            ``"ignore"``-d or count as ``"false_positive"``.
        description: one line for help texts.
    """

    name: str
    max_per_key: Optional[int]
    order: str
    keys_without_gt: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"Protocol.order must be one of {ORDERS}, got {self.order!r}")
        if self.keys_without_gt not in KEYS_WITHOUT_GT:
            raise ValueError(f"Protocol.keys_without_gt must be one of {KEYS_WITHOUT_GT}, got {self.keys_without_gt!r}")
        if self.max_per_key is not None and self.max_per_key < 1:
            raise ValueError(f"Protocol.max_per_key must be None or >= 1, got {self.max_per_key!r}")


ACTIVITYNET = Protocol(
    name="activitynet", max_per_key=50, order="score", keys_without_gt="ignore",
    description="the official challenge script: top 50 detections per keyframe by score, "
                "keyframes absent from the ground truth ignored",
)
PYSLOWFAST = Protocol(
    name="pyslowfast", max_per_key=None, order="input", keys_without_gt="false_positive",
    description="PySlowFast's evaluation: every detection in file order, detections on keyframes "
                "without ground truth are false positives",
)

#: The protocols by name; the first is the default.
PROTOCOLS: Dict[str, Protocol] = {p.name: p for p in (ACTIVITYNET, PYSLOWFAST)}
#: The name of the default protocol.
DEFAULT_PROTOCOL = ACTIVITYNET.name


def get_protocol(protocol) -> Protocol:
    """A :class:`Protocol`, or the protocol of that name in :data:`PROTOCOLS`.

    Raises:
        AvaDetectError: an unknown name.
    """
    if isinstance(protocol, Protocol):
        return protocol
    found = PROTOCOLS.get(protocol)
    if found is None:
        raise AvaDetectError(f"unknown evaluation protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    return found
