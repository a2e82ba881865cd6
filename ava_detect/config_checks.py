"""Value checks declared on the config dataclass fields, run once after a config is loaded.

A field declares what values make sense next to its default::

    batch_size: int = ranged(8, lo=1)                  # an integer >= 1
    threshold: float = ranged(0.3, lo=0.0, hi=1.0)     # a finite number in [0, 1]
    every: float = ranged(1.0, lo=0.0, lo_open=True)   # a finite number > 0
    lr_policy: str = choice("steps", ("steps", "cosine"))
    std: List[float] = ranged_list([0.225] * 3, lo=0.0, lo_open=True, length=3)

:func:`check_section` runs the checks of one section object and returns the first problem as
``(key, message)``. Every float must be finite (NaN and infinity are never meaningful settings),
every integer fits a signed 32-bit integer unless a field says otherwise, and no text value may
hold a control character (a NUL byte in a path would otherwise fail deep inside ``open``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Tuple

#: Integers (sizes, counts, periods) are at most this unless the field says otherwise.
MAX_INT = 2**31 - 1


@dataclass(frozen=True)
class Range:
    """Closed or open bounds on a number (None: unbounded on that side; integers get ``MAX_INT``)."""

    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    hi_open: bool = False

    def describe(self, integer: bool) -> str:
        kind = "an integer" if integer else "a finite number"
        hi = self.hi
        if self.lo is not None and hi is not None:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            return f"{kind} in {left}{_num(self.lo)}, {_num(hi)}{right}"
        if self.lo is not None:
            upper = f" and <= {MAX_INT}" if integer else ""
            return f"{kind} {'>' if self.lo_open else '>='} {_num(self.lo)}{upper}"
        if hi is not None:
            return f"{kind} {'<' if self.hi_open else '<='} {_num(hi)}"
        return kind + (f" <= {MAX_INT}" if integer else "")

    def contains(self, value: float, integer: bool) -> bool:
        if not math.isfinite(value):
            return False
        hi = self.hi if self.hi is not None or not integer else MAX_INT
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        if hi is not None and (value > hi or (self.hi_open and value == hi)):
            return False
        return True


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def ranged(default: Any, lo: Optional[float] = None, hi: Optional[float] = None, *,
           lo_open: bool = False, hi_open: bool = False) -> Any:
    """A number field with bounds (see :class:`Range`)."""
    return field(default=default, metadata={"range": Range(lo, hi, lo_open, hi_open)})


def ranged_list(default: Sequence[float], lo: Optional[float] = None, hi: Optional[float] = None, *,
                lo_open: bool = False, hi_open: bool = False, length: Optional[int] = None) -> Any:
    """A list-of-numbers field: every element within the bounds; ``length`` elements if given."""
    values = list(default)
    return field(default_factory=lambda: list(values),
                 metadata={"range": Range(lo, hi, lo_open, hi_open), "length": length})


def choice(default: str, options: Sequence[str]) -> Any:
    """A text field that takes one of ``options``."""
    return field(default=default, metadata={"choices": tuple(options)})


def _is_int_type(tp: Any) -> bool:
    return tp in (int, "int")


def _is_list_of_int(tp: Any) -> bool:
    return str(tp) in ("List[int]", "typing.List[int]")


def _found(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _check_value(f: dataclasses.Field, value: Any) -> Optional[str]:
    """What is wrong with ``value`` for field ``f``, or None."""
    meta = f.metadata
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            return f"expected one of {', '.join(choices)}, found {value!r}"
        bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
        if bad is not None:
            return f"text must not contain control characters, found {value!r}"
        return None
    rng: Range = meta.get("range", Range())
    if isinstance(value, (int, float)):
        integer = _is_int_type(f.type) or isinstance(value, int)
        if not rng.contains(float(value), integer):
            return f"expected {rng.describe(integer)}, found {_found(value)}"
        return None
    if isinstance(value, (list, tuple)):
        length = meta.get("length")
        if length is not None and len(value) != length:
            return f"expected {length} values, found {len(value)}: {list(value)}"
        integer = _is_list_of_int(f.type)
        for item in value:
            if isinstance(item, (int, float)) and not isinstance(item, bool) and not rng.contains(float(item), integer):
                return f"expected every value to be {rng.describe(integer)}, found {_found(item)} in {list(value)}"
    return None


#: A check relating two fields: returns ``(key, other_key, message)`` or None.
CrossCheck = Callable[[Any], Optional[Tuple[str, str, str]]]


def check_section(section: Any, name: str, cross: Sequence[CrossCheck] = ()) -> Optional[Tuple[str, str, str]]:
    """First problem of one config section as ``("section.key", "section.other_key", message)``
    (``other_key`` is ``key`` when the problem is in one field), or None.

    Args:
        section: a config dataclass instance.
        name: its section name (``"train"``).
        cross: checks that relate two fields.
    """
    for f in dataclasses.fields(section):
        problem = _check_value(f, getattr(section, f.name))
        if problem is not None:
            return f"{name}.{f.name}", f"{name}.{f.name}", problem
    for check in cross:
        found = check(section)
        if found is not None:
            return f"{name}.{found[0]}", f"{name}.{found[1]}", found[2]
    return None


def at_least(key: str, other: str) -> CrossCheck:
    """Cross check: field ``key`` >= field ``other``."""
    def check(section: Any) -> Optional[Tuple[str, str, str]]:
        a, b = getattr(section, key), getattr(section, other)
        if a < b:
            return key, other, f"must be >= {other} ({_found(b)}), found {_found(a)}"
        return None
    return check


def at_most(key: str, other: str) -> CrossCheck:
    """Cross check: field ``key`` <= field ``other``."""
    def check(section: Any) -> Optional[Tuple[str, str, str]]:
        a, b = getattr(section, key), getattr(section, other)
        if a > b:
            return key, other, f"must be <= {other} ({_found(b)}), found {_found(a)}"
        return None
    return check

