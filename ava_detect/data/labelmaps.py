"""Which label map a run uses: the one given, else the dataset's, else AVA v2.2's packaged list."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ava_detect.errors import AvaDetectError

#: The packaged fallbacks: ``all`` = AVA v2.2's 80 classes (what models are trained on),
#: ``evaluated`` = the 60 classes of the official evaluation.
KINDS = ("all", "evaluated")


def resolve_labelmap(path: Optional[str] = None, *, kind: str, data=None):
    """The label map of a run.

    Args:
        path: a label-map file given for this step (a command-line flag or a config setting such
            as ``test.eval_labelmap``), used as given; empty or None: not given.
        kind: what to fall back to when no file is given: ``"all"`` (the packaged AVA v2.2 list,
            80 classes) or ``"evaluated"`` (the packaged 60-class list of the official evaluation).
        data: the ``data`` config section, if any: its ``labelmap`` (relative to ``data.root``)
            comes before the packaged fallback.

    Returns:
        a :class:`~ava_detect.data.ava_files.LabelMap`.

    Raises:
        AvaDetectError: an unknown ``kind``; a missing or malformed label-map file.
    """
    from ava_detect.data.ava_files import read_labelmap
    from ava_detect.data.constants import labelmap_60_path, labelmap_80_path
    from ava_detect.data.layout import resolve_data_path

    if kind not in KINDS:
        raise AvaDetectError(f"label map kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if path:
        return read_labelmap(Path(path))
    if data is not None and data.labelmap:
        return read_labelmap(resolve_data_path(data, data.labelmap))
    return read_labelmap(labelmap_80_path() if kind == "all" else labelmap_60_path())


def check_num_classes(num_classes: int, labelmap) -> None:
    """The model's head must have one column per class of the label map it is trained and tested with.

    Raises:
        AvaDetectError: they differ; the message names the label map and the override that fixes it.
    """
    if num_classes != len(labelmap):
        raise AvaDetectError(f"model.num_classes={num_classes} but the label map has {len(labelmap)} classes: set "
                             f"model.num_classes={len(labelmap)} (in the config, or as the override "
                             f"model.num_classes={len(labelmap)})", labelmap.path)
