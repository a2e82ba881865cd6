"""Drawing boxes and action labels on frames (Pillow), sized to the frame so that text stays
legible from 176x144 to 1080p and beyond.

Text uses Pillow's built-in scalable font (``ImageFont.load_default(size=...)``, Pillow >= 10.1)
at ``max(11, height / 30)`` pixels; box outlines are ``max(1, height / 240)`` pixels wide. Each
person id keeps one colour. Above (or, at the top edge, inside) each box: the person id and the
top actions with their scores, one per line, on a filled background of the box's colour. Action
names are shortened to the part before a parenthesis (``"talk to (e.g., self, a person, a
group)"`` is drawn as ``"talk to"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import List, Protocol, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Distinct, saturated colours (RGB), one per person id modulo the length.
PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
)


def short_name(name: str) -> str:
    """An AVA action name without its parenthesised part: ``"carry/hold (an object)"`` -> ``"carry/hold"``."""
    head = name.split(" (")[0].strip()
    return head or name


def color_of(person_id: int) -> Tuple[int, int, int]:
    """The colour of a person id."""
    return PALETTE[int(person_id) % len(PALETTE)]


def _text_color(bg: Tuple[int, int, int]) -> Tuple[int, int, int]:
    luminance = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def font_size_for(height: int) -> int:
    """Text height in pixels for a frame ``height`` pixels tall."""
    return max(11, int(round(height / 30)))


@dataclass
class DrawnPerson:
    """What is drawn for one person in one frame.

    Attributes:
        box: pixel ``(x1, y1, x2, y2)`` in the frame.
        person_id: track id (>= 1).
        labels: ``(name, score)`` pairs to write, best first (already thresholded and cut to top-k).
    """

    box: Sequence[float]
    person_id: int
    labels: List[Tuple[str, float]] = field(default_factory=list)


class FrameRenderer(Protocol):
    """What ``annotate`` draws with: made per video as ``renderer(width=W, height=H)``
    (:class:`Renderer` is the default; pass another to :func:`~ava_detect.annotate.annotate_video`
    or :class:`~ava_detect.annotate.Annotator` to draw differently)."""

    def draw(self, frame: np.ndarray, people: Sequence[DrawnPerson]) -> np.ndarray:
        """``people`` drawn on ``frame`` (``uint8 [H,W,3]`` RGB) -> ``uint8 [H,W,3]``; ``frame`` is not modified."""


class Renderer:
    """Draws :class:`DrawnPerson` items on ``width x height`` RGB frames (the default :class:`FrameRenderer`)."""

    def __init__(self, *, width: int, height: int):
        self.width = int(width)
        self.height = int(height)
        self.font_size = font_size_for(self.height)
        self.font = _font(self.font_size)
        self.line_width = max(1, int(round(self.height / 240)))
        self.pad = max(1, self.font_size // 6)

    def draw(self, frame: np.ndarray, people: Sequence[DrawnPerson]) -> np.ndarray:
        """Draw ``people`` on a copy of ``frame`` (``uint8 [H,W,3]`` RGB) -> ``uint8 [H,W,3]``.

        The frame itself is returned unchanged (no copy) when there is nobody to draw.
        """
        if not people:
            return frame
        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        for person in people:
            color = color_of(person.person_id)
            x1, y1, x2, y2 = (float(v) for v in person.box)
            x1, x2 = max(0.0, min(x1, self.width - 1)), max(0.0, min(x2, self.width - 1))
            y1, y2 = max(0.0, min(y1, self.height - 1)), max(0.0, min(y2, self.height - 1))
            draw.rectangle((x1, y1, x2, y2), outline=color, width=self.line_width)
            lines = [f"#{person.person_id}"]
            if person.labels:
                lines[0] += f": {short_name(person.labels[0][0])} {person.labels[0][1]:.2f}"
                lines += [f"{short_name(n)} {s:.2f}" for n, s in person.labels[1:]]
            self._label(draw, lines, x1, y1, y2, color)
        return np.asarray(image)

    def _label(self, draw: ImageDraw.ImageDraw, lines: List[str], x1: float, y1: float, y2: float,
               color: Tuple[int, int, int]) -> None:
        pad, size = self.pad, self.font_size
        line_h = size + pad
        widths = [draw.textlength(t, font=self.font) for t in lines]
        block_w = int(max(widths)) + 2 * pad
        block_h = line_h * len(lines) + pad
        left = int(min(max(0.0, x1), max(0, self.width - block_w)))
        top = int(y1) - block_h  # above the box when there is room
        if top < 0:
            top = int(min(max(0.0, y1), max(0, self.height - block_h)))  # else inside, from its top
        draw.rectangle((left, top, left + block_w, top + block_h), fill=color)
        ink = _text_color(color)
        for i, text in enumerate(lines):
            draw.text((left + pad, top + pad + i * line_h), text, fill=ink, font=self.font)
