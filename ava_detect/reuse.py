"""Reusing a finished output only when it was made with the settings asked for now.

Steps that skip finished outputs when run again (``prep videos``, ``prep frames``) record beside
each output the settings it was made with (and what its input was): a hidden JSON file
``.<name>.settings.json`` in the same folder. The record is removed before an output is
rewritten and written (atomically) once the output is complete, so an output and its record never
disagree, whatever is interrupted. When the step runs again, an output is reused only when its
record equals this run's settings; otherwise it is made again and the reason says which settings
differ. An output without a record (a run killed between the two writes, or made by an earlier
version) is made again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from ava_detect.io import PathLike, atomic_open

logger = logging.getLogger(__name__)


def record_path(output: PathLike) -> Path:
    """The record of ``output``: ``<folder>/.<name>.settings.json``."""
    output = Path(output)
    return output.parent / f".{output.name}.settings.json"


def forget(output: PathLike) -> None:
    """Remove the record of ``output`` (call before rewriting the output)."""
    record_path(output).unlink(missing_ok=True)


def record(output: PathLike, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` (JSON values) as those ``output`` was made with (call once it is complete)."""
    with atomic_open(record_path(output), "w", encoding="utf-8") as f:
        f.write(json.dumps(dict(settings), sort_keys=True, indent=1) + "\n")


def recorded(output: PathLike) -> Optional[Dict[str, Any]]:
    """The settings recorded for ``output``; None when there is no readable record."""
    try:
        data = json.loads(record_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def why_not_reusable(output: PathLike, settings: Mapping[str, Any]) -> Optional[str]:
    """None when ``output`` exists and was made with ``settings``; else why it must be made (again):
    ``"missing"``, ``"no record of the settings it was made with"`` or the settings that differ,
    e.g. ``"end 1801 -> 1000, short_side 0 -> 320"`` (recorded -> now)."""
    if not Path(output).exists():
        return "missing"
    old = recorded(output)
    if old is None:
        return "no record of the settings it was made with"
    old_flat, new_flat = dict(flatten(old)), dict(flatten(json.loads(json.dumps(dict(settings)))))
    changed = [f"{k} {_show(old_flat.get(k))} -> {_show(new_flat.get(k))}"
               for k in sorted(set(old_flat) | set(new_flat)) if old_flat.get(k) != new_flat.get(k)]
    return ", ".join(changed) if changed else None


def flatten(d: Mapping[str, Any], prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """``{"a": {"b": 1}, "c": 2}`` -> ``("a.b", 1), ("c", 2)``: nested settings as dotted keys."""
    for k, v in d.items():
        if isinstance(v, Mapping):
            yield from flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value) if isinstance(value, str) else str(value)
