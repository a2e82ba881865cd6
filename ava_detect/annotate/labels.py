"""Which of a person's actions ``annotate`` writes and draws: the one place that decides it.

An action is *kept* (written to the CSV / JSON, and a candidate for drawing) when its probability
is at least ``threshold``; kept actions are ordered best first (ties in column order), and the
first ``top_k`` of them are *drawn* on the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ava_detect.errors import AvaDetectError


@dataclass(frozen=True)
class LabelPolicy:
    """Threshold and top-k of the actions shown for one person.

    Attributes:
        threshold: actions with at least this probability are kept (written, and may be drawn).
        top_k: at most this many kept actions are drawn per person (0: only boxes and ids).
    """

    threshold: float = 0.3
    top_k: int = 3

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise AvaDetectError(f"top-k must be >= 0, got {self.top_k}")

    def kept(self, probs: np.ndarray) -> np.ndarray:
        """Columns of ``probs`` (``float [C]``, one person) with ``probs >= threshold``, best first."""
        order = np.argsort(-probs, kind="stable")
        return order[probs[order] >= self.threshold]

    def drawn(self, probs: np.ndarray) -> np.ndarray:
        """The columns of :meth:`kept` that are drawn: its first ``top_k``."""
        return self.kept(probs)[: self.top_k]
