"""Model weights: safe reading, our own checkpoint format, and converters from PyTorchVideo and PySlowFast layouts.

:func:`load_weights` is the one entry point. It accepts a file (or a published name, see
:mod:`ava_detect.model.published`), detects the layout from the file's keys, maps the names onto
ours, checks every shape, loads, and returns a :class:`LoadReport` of what was loaded, skipped
and missing. Layouts understood:

* ours: ``{"model": state_dict, "optimizer", ..., "config", "class_names"}`` (:func:`save_checkpoint`) or a
  bare state dict with our names (``backbone.*``, ``head.*``); ``class_names`` (action id -> name, in the
  order of the head's rows) is what fine-tuning matches actions by;
* PyTorchVideo detection ``.pyth``: ``{"model_state": {"model.blocks.*", "detection_head.proj.*"}}``
  (``slowfast_r50_detection``, ``slow_r50_detection``);
* PyTorchVideo Kinetics classification ``.pyth``: ``{"model_state": {"blocks.*"}}``; its classification
  head ``blocks.N.proj`` is dropped and our detection head is freshly initialised;
* PySlowFast ``.pyth``: ``{"model_state": {"s1.pathway0_stem.*", "s1_fuse.conv_f2s.*", ..., "head.projection.*"}}``,
  detection or Kinetics classification (a head with another number of classes is dropped), with
  non-local blocks (``s4.pathway0_nonlocal6.*``) where the model has them;
* PySlowFast Caffe2 ``.pkl``: ``{"blobs": {"conv1_w", "res2_0_branch2a_w", "t_res_conv1_bn_s", ...}}``
  (numpy arrays), renamed as PySlowFast's ``c2_model_loading`` does (non-local blobs
  ``nonlocal_conv4_6_theta_w``, ...: see :mod:`ava_detect.model.nonlocal_names`).

Fine-tuning to another label map (``target_names``): a detection head whose actions differ from the
model's is re-initialised, and the rows of actions found in both by name start from the file's rows
(:mod:`ava_detect.model.head_transfer`).

Files are read with ``torch.load(weights_only=True)`` (:func:`ava_detect.serialization.load_torch_file`); plain pickles (Caffe2 ``.pkl``) go through a
restricted unpickler that admits only numpy arrays and containers. A file that needs anything else
(i.e. would run code when unpickled) is refused with an :class:`~ava_detect.errors.AvaDetectError`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ava_detect.errors import AvaDetectError, unreadable_file_error
from ava_detect.serialization import UnreadableTorchFile, load_torch_file, save_torch_file
from ava_detect.model.backbone_fit import check_backbone_fits
from ava_detect.model.head_transfer import CopiedRow, SourceNames, ava_names, copy_rows, match_rows, same_names, stored_names
from ava_detect.model.nonlocal_names import (PYSLOWFAST_NONLOCAL, caffe2_nonlocal_to_pyslowfast,
                                             pyslowfast_nonlocal_to_ours)
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: The parts of our own checkpoint (all optional except ``model``).
CHECKPOINT_PARTS = ("model", "optimizer", "scheduler", "scaler", "epoch", "iteration", "rng", "config",
                    "class_names")

LAYOUTS = {
    "ava_detect": "ava_detect checkpoint (backbone.*, head.*)",
    "pytorchvideo_detection": "PyTorchVideo detection model (model.blocks.*, detection_head.*)",
    "pytorchvideo_classification": "PyTorchVideo Kinetics classification model (blocks.*)",
    "pyslowfast": "PySlowFast model (s1.pathway0_stem.*, s1_fuse.*, head.projection.*)",
    "pyslowfast_caffe2": "PySlowFast Caffe2 model (blobs: conv1_w, res2_0_branch2a_w, ...)",
}


# --------------------------------------------------------------------------------------------
# Safe reading
# --------------------------------------------------------------------------------------------

def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore
    return _reconstruct, scalar


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler for plain pickles of numpy arrays and containers (Caffe2 ``.pkl`` blobs).

    Every global a pickle may reference is looked up here; anything but numpy's array
    reconstruction, dtypes, ``OrderedDict`` and the ``bytes`` codec is refused, so no code
    from the file can run.
    """

    def find_class(self, module: str, name: str) -> Any:
        import codecs
        import collections

        reconstruct, scalar = _numpy_reconstruct()
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy.core.multiarray", "scalar"): scalar,
            ("numpy._core.multiarray", "scalar"): scalar,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("_codecs", "encode"): codecs.encode,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")


def _to_tensors(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fiub":
            return torch.from_numpy(np.ascontiguousarray(obj))
        return obj
    if isinstance(obj, Mapping):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): _to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_tensors(v) for v in obj)
    return obj


def read_checkpoint(path: PathLike) -> Any:
    """Read a checkpoint file without running any code from it.

    ``torch.load(map_location="cpu", weights_only=True)`` for PyTorch files; a plain pickle (PySlowFast's
    Caffe2 ``.pkl``) is read with an unpickler that only admits numpy arrays and containers, and its
    arrays become tensors.

    Raises:
        AvaDetectError: missing or unreadable file, or one that would need to run code to be loaded.
    """
    path = Path(path)
    try:
        return load_torch_file(path, what="checkpoint file")
    except UnreadableTorchFile as e:
        torch_error = e
    refused = ("refused: loading it would run code from the file (only tensors, numbers, strings and "
               "containers are accepted; re-save the weights as a plain state dict with torch.save)")
    if torch_error.is_torch_zip:
        if torch_error.refused:
            raise AvaDetectError(f"{refused}; {torch_error.reason}", path)
        raise AvaDetectError(f"cannot read PyTorch checkpoint: {torch_error.reason}", path)
    try:
        with open(path, "rb") as f:
            data = _ArraysOnlyUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        if "is not allowed" in str(e):
            raise AvaDetectError(f"{refused}; it needs {e}", path) from None
        raise AvaDetectError(f"not a PyTorch checkpoint nor a pickle of arrays: {e}", path) from None
    except OSError as e:  # the file could not be read: say so, not that its contents are wrong
        raise unreadable_file_error(e, path, "checkpoint file") from None
    except Exception as e:  # truncated or foreign binary data
        raise AvaDetectError(f"not a PyTorch checkpoint nor a pickle of arrays ({type(e).__name__}: {e})", path) from None
    return _to_tensors(data)


# --------------------------------------------------------------------------------------------
# Our own format
# --------------------------------------------------------------------------------------------

def _check_plain(obj: Any, where: str) -> None:
    if obj is None or isinstance(obj, (Tensor, str, bytes, int, float, bool, torch.dtype, torch.device)):
        return
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_plain(v, f"{where}.{k}")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"checkpoint part {where} is a {type(obj).__name__}; only tensors, numbers, strings and "
                    "lists/dicts of them can be read back safely (convert numpy arrays with torch.from_numpy)")


def save_checkpoint(path: PathLike, **parts: Any) -> None:
    """Write our checkpoint ``{model, optimizer, scheduler, scaler, epoch, iteration, rng, config}`` atomically.

    Args:
        path: output file (written to a temporary name, then renamed).
        parts: any of :data:`CHECKPOINT_PARTS`; ``model`` is required and may be an ``nn.Module``
            (its ``state_dict()``; a ``DistributedDataParallel`` wrapper is unwrapped), other modules /
            optimizers are stored as their ``state_dict()``. Values must be tensors, numbers, strings
            or containers of them, so that :func:`read_checkpoint` can read them with ``weights_only=True``.
    """
    unknown = sorted(set(parts) - set(CHECKPOINT_PARTS))
    if unknown:
        raise TypeError(f"unknown checkpoint part(s) {unknown}; expected some of {list(CHECKPOINT_PARTS)}")
    if "model" not in parts:
        raise TypeError("save_checkpoint needs model=")
    data: Dict[str, Any] = {}
    for key in CHECKPOINT_PARTS:
        if key not in parts:
            continue
        value = parts[key]
        if key == "model" and isinstance(value, nn.Module):
            value = getattr(value, "module", value).state_dict()
        elif hasattr(value, "state_dict") and callable(value.state_dict):
            value = value.state_dict()
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        _check_plain(value, key)
        data[key] = value
    save_torch_file(path, data)


# --------------------------------------------------------------------------------------------
# Layout detection and name mapping
# --------------------------------------------------------------------------------------------

Rule = Tuple["re.Pattern[str]", Callable[["re.Match[str]"], str]]


def _rules(*pairs: Tuple[str, Callable[["re.Match[str]"], str]]) -> List[Rule]:
    return [(re.compile(p), f) for p, f in pairs]


def _i(m: "re.Match[str]", g: int, offset: int = 0) -> int:
    return int(m.group(g)) + offset


_PYSLOWFAST_RULES = _rules(
    (r"^s1\.pathway(\d+)_stem\.conv\.(\w+)$", lambda m: f"backbone.stem.{m[1]}.conv.{m[2]}"),
    (r"^s1\.pathway(\d+)_stem\.bn\.(\w+)$", lambda m: f"backbone.stem.{m[1]}.bn.{m[2]}"),
    (r"^s(\d)_fuse\.conv_f2s\.(\w+)$", lambda m: f"backbone.fusions.{_i(m, 1, -1)}.conv.{m[2]}"),
    (r"^s(\d)_fuse\.bn\.(\w+)$", lambda m: f"backbone.fusions.{_i(m, 1, -1)}.bn.{m[2]}"),
    (r"^s(\d)\.pathway(\d+)_res(\d+)\.branch1\.(\w+)$",
     lambda m: f"backbone.stages.{_i(m, 1, -2)}.{m[2]}.{m[3]}.shortcut_conv.{m[4]}"),
    (r"^s(\d)\.pathway(\d+)_res(\d+)\.branch1_bn\.(\w+)$",
     lambda m: f"backbone.stages.{_i(m, 1, -2)}.{m[2]}.{m[3]}.shortcut_bn.{m[4]}"),
    (r"^s(\d)\.pathway(\d+)_res(\d+)\.branch2\.([abc])\.(\w+)$",
     lambda m: f"backbone.stages.{_i(m, 1, -2)}.{m[2]}.{m[3]}.conv_{m[4]}.{m[5]}"),
    (r"^s(\d)\.pathway(\d+)_res(\d+)\.branch2\.([abc])_bn\.(\w+)$",
     lambda m: f"backbone.stages.{_i(m, 1, -2)}.{m[2]}.{m[3]}.bn_{m[4]}.{m[5]}"),
    (r"^head\.projection\.(\w+)$", lambda m: f"head.proj.{m[1]}"),
) + [(PYSLOWFAST_NONLOCAL, pyslowfast_nonlocal_to_ours)]

_PYTORCHVIDEO_RULES = _rules(
    # SlowFast (multipathway) layout
    (r"^blocks\.0\.multipathway_blocks\.(\d+)\.conv\.(\w+)$", lambda m: f"backbone.stem.{m[1]}.conv.{m[2]}"),
    (r"^blocks\.0\.multipathway_blocks\.(\d+)\.norm\.(\w+)$", lambda m: f"backbone.stem.{m[1]}.bn.{m[2]}"),
    (r"^blocks\.(\d)\.multipathway_fusion\.conv_fast_to_slow\.(\w+)$", lambda m: f"backbone.fusions.{m[1]}.conv.{m[2]}"),
    (r"^blocks\.(\d)\.multipathway_fusion\.norm\.(\w+)$", lambda m: f"backbone.fusions.{m[1]}.bn.{m[2]}"),
    (r"^blocks\.(\d)\.multipathway_blocks\.(\d+)\.res_blocks\.(\d+)\.(.+)$",
     lambda m: f"backbone.stages.{_i(m, 1, -1)}.{m[2]}.{m[3]}.{_pv_block(m[4])}"),
    # Slow-only (single pathway) layout
    (r"^blocks\.0\.conv\.(\w+)$", lambda m: f"backbone.stem.0.conv.{m[1]}"),
    (r"^blocks\.0\.norm\.(\w+)$", lambda m: f"backbone.stem.0.bn.{m[1]}"),
    (r"^blocks\.(\d)\.res_blocks\.(\d+)\.(.+)$", lambda m: f"backbone.stages.{_i(m, 1, -1)}.0.{m[2]}.{_pv_block(m[3])}"),
    (r"^detection_head\.proj\.(\w+)$", lambda m: f"head.proj.{m[1]}"),
)


def _pv_block(rest: str) -> str:
    for src, dst in (("branch1_conv.", "shortcut_conv."), ("branch1_norm.", "shortcut_bn."),
                     ("branch2.conv_", "conv_"), ("branch2.norm_", "bn_")):
        if rest.startswith(src):
            return dst + rest[len(src):]
    return "?" + rest  # never a name of ours: reported as not in the model


# PySlowFast's slowfast/utils/c2_model_loading.py, applied in order.
_CAFFE2_TO_PYSLOWFAST = [(re.compile(p), r) for p, r in (
    (r"^nonlocal_conv([0-9]+)_([0-9]+)_(.*)", r"s\1.pathway0_nonlocal\2_\3"),
    (r"^(.*)_nonlocal([0-9]+)_(theta)(.*)", r"\1_nonlocal\2.conv_\3\4"),
    (r"^(.*)_nonlocal([0-9]+)_(g)(.*)", r"\1_nonlocal\2.conv_\3\4"),
    (r"^(.*)_nonlocal([0-9]+)_(phi)(.*)", r"\1_nonlocal\2.conv_\3\4"),
    (r"^(.*)_nonlocal([0-9]+)_(out)(.*)", r"\1_nonlocal\2.conv_\3\4"),
    (r"^(.*)_nonlocal([0-9]+)_(bn)_(.*)", r"\1_nonlocal\2.\3.\4"),
    (r"^t_pool1_subsample_bn_(.*)", r"s1_fuse.bn.\1"),
    (r"^t_pool1_subsample_(.*)", r"s1_fuse.conv_f2s.\1"),
    (r"^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_bn_(.*)", r"s\1_fuse.bn.\3"),
    (r"^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_(.*)", r"s\1_fuse.conv_f2s.\3"),
    (r"^res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)", r"s\1.pathway0_res\2.branch\3.\4_\5"),
    (r"^res_conv1_bn_(.*)", r"s1.pathway0_stem.bn.\1"),
    (r"^conv1_(.*)", r"s1.pathway0_stem.conv.\1"),
    (r"^res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)", r"s\1.pathway0_res\2.branch\3_\4"),
    (r"^res_conv1_(.*)", r"s1.pathway0_stem.conv.\1"),
    (r"^t_res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)", r"s\1.pathway1_res\2.branch\3.\4_\5"),
    (r"^t_res_conv1_bn_(.*)", r"s1.pathway1_stem.bn.\1"),
    (r"^t_conv1_(.*)", r"s1.pathway1_stem.conv.\1"),
    (r"^t_res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)", r"s\1.pathway1_res\2.branch\3_\4"),
    (r"^t_res_conv1_(.*)", r"s1.pathway1_stem.conv.\1"),
    (r"pred_(.*)", r"head.projection.\1"),
    (r"(.*)bn.b\Z", r"\1bn.bias"),
    (r"(.*)bn.s\Z", r"\1bn.weight"),
    (r"(.*)bn.rm\Z", r"\1bn.running_mean"),
    (r"(.*)bn.riv\Z", r"\1bn.running_var"),
    (r"(.*)[\._]b\Z", r"\1.bias"),
    (r"(.*)[\._]w\Z", r"\1.weight"),
)]


def caffe2_to_pyslowfast_name(name: str) -> str:
    """PySlowFast's Caffe2 blob renaming, e.g. ``res2_0_branch2a_bn_s`` -> ``s2.pathway0_res0.branch2.a_bn.weight``."""
    for pattern, repl in _CAFFE2_TO_PYSLOWFAST:
        name = pattern.sub(repl, name)
    return name


def _apply_rules(rules: List[Rule], key: str) -> Optional[str]:
    for pattern, fn in rules:
        m = pattern.match(key)
        if m:
            return fn(m)
    return None


@dataclass
class _Source:
    """A checkpoint reduced to its weights: ``entries`` maps file key -> (our key or None, tensor)."""

    layout: str
    entries: Dict[str, Tuple[Optional[str], Tensor]]
    #: file keys that are known and deliberately not loaded, with the reason
    ignored: Dict[str, str] = field(default_factory=dict)
    #: file keys of a classification head (dropped; our detection head is initialised)
    classification_head: List[str] = field(default_factory=list)
    #: True/False when the file says whether its head is a detection head; None when unknown
    is_detection: Optional[bool] = None
    #: the RoIAlign ``aligned`` setting the weights were trained with, when the file tells
    aligned: Optional[bool] = None
    #: our checkpoints: the ``class_names`` entry as stored (checked against the head when used)
    class_names: Any = None


def _tensor_items(state: Mapping, path: Path) -> Dict[str, Tensor]:
    if not isinstance(state, Mapping) or not state:
        raise AvaDetectError(f"expected a state dict (name -> tensor), found {type(state).__name__}", path)
    out = {}
    for k, v in state.items():
        if isinstance(v, Tensor):
            out[str(k)] = v
    if not out:
        raise AvaDetectError("expected a state dict (name -> tensor), found no tensors", path)
    return out


def _describe_keys(keys) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:5])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")


def _yaml_flag(cfg_text: str, section: str, key: str) -> Optional[bool]:
    """``True``/``False`` of ``section: ... key: value`` in a PySlowFast ``cfg.dump()`` string, or None."""
    m = re.search(rf"(?m)^{section}:\s*\n((?:[ \t]+.*\n?)*)", cfg_text)
    if not m:
        return None
    v = re.search(rf"(?m)^[ \t]+{key}:\s*(\w+)", m.group(1))
    if not v:
        return None
    return {"true": True, "false": False}.get(v.group(1).lower())


def _from_ours(state: Dict[str, Tensor], obj: Mapping) -> _Source:
    """Our checkpoint or bare state dict: names kept; the RoIAlign setting from its stored config."""
    src = _Source("ava_detect", {k: (k, v) for k, v in state.items()}, is_detection=True,
                  class_names=obj.get("class_names"))
    cfg = obj.get("config")
    if isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping):
        aligned = cfg["model"].get("roi_aligned")
        src.aligned = aligned if isinstance(aligned, bool) else None
    return src


def _from_pytorchvideo(state: Dict[str, Tensor]) -> _Source:
    """PyTorchVideo: detection (``model.blocks.*``, ``detection_head.*``) or Kinetics classification
    (``blocks.*``, whose ``blocks.N.proj`` head is dropped)."""
    if any(k.startswith(("model.blocks.", "detection_head.")) for k in state):
        # PyTorchVideo never passes `aligned` to RoIAlign: torchvision's default False applies.
        src = _Source("pytorchvideo_detection", {}, is_detection=True, aligned=False)
        for k, v in state.items():
            bare = k[len("model."):] if k.startswith("model.") else k
            src.entries[k] = (_apply_rules(_PYTORCHVIDEO_RULES, bare), v)
        return src
    src = _Source("pytorchvideo_classification", {}, is_detection=False)
    for k, v in state.items():
        if re.match(r"^blocks\.\d+\.proj\.", k):
            src.classification_head.append(k)
        else:
            src.entries[k] = (_apply_rules(_PYTORCHVIDEO_RULES, k), v)
    return src


def _from_pyslowfast(state: Mapping[str, Tensor], cfg_text: Optional[str], layout: str = "pyslowfast") -> _Source:
    """PySlowFast ``.pyth`` names (``s1.pathway0_stem.*``, ...); its ``cfg`` dump, when present, says
    whether the head is a detection head and which RoIAlign setting it was trained with."""
    src = _Source(layout, {})
    for k, v in state.items():
        src.entries[k] = (_apply_rules(_PYSLOWFAST_RULES, k), v)
    if cfg_text:
        src.is_detection = _yaml_flag(cfg_text, "DETECTION", "ENABLE")
        if src.is_detection:
            src.aligned = _yaml_flag(cfg_text, "DETECTION", "ALIGNED")
    return src


def _from_caffe2(blobs: Mapping, path: Path) -> _Source:
    """PySlowFast Caffe2 ``.pkl`` blobs: training state dropped, names renamed to PySlowFast's, then as ``.pyth``."""
    ignored: Dict[str, str] = {}
    renamed: Dict[str, Tensor] = {}
    for k, v in blobs.items():
        k = str(k)
        if k.endswith("_momentum") or k in ("lr", "model_iter") or not isinstance(v, Tensor):
            ignored[k] = "training state, not a weight"
            continue
        renamed[caffe2_nonlocal_to_pyslowfast(k) or caffe2_to_pyslowfast_name(k)] = v
    if not renamed:
        raise AvaDetectError("Caffe2 checkpoint has no weight blobs", path)
    src = _from_pyslowfast(renamed, None, layout="pyslowfast_caffe2")
    src.ignored = ignored
    if not any(name for name, _ in src.entries.values()):
        raise AvaDetectError(f"unknown Caffe2 blob names: found {_describe_keys(blobs.keys())}", path)
    return src


def _state_dict_of(obj: Mapping, path: Path) -> Dict[str, Tensor]:
    """The name -> tensor part of a PyTorch checkpoint, wherever its writer put it."""
    for key in ("model_state", "model", "state_dict"):
        if key in obj and (key == "model_state" or isinstance(obj[key], Mapping)):
            return _tensor_items(obj[key], path)
    if any(isinstance(v, Tensor) for v in obj.values()):
        return _tensor_items(obj, path)
    raise AvaDetectError(
        "unknown checkpoint layout: expected a dict with 'model' (ava_detect), 'model_state' (PySlowFast / "
        f"PyTorchVideo) or 'blobs' (Caffe2), found top-level keys {_describe_keys(obj.keys())}", path)


def _parse_source(obj: Any, path: Path) -> _Source:
    """Detect the layout of a loaded checkpoint from its keys and convert it (one converter per layout)."""
    if not isinstance(obj, Mapping):
        raise AvaDetectError(f"unknown checkpoint layout: expected a dict, found {type(obj).__name__}", path)
    if "blobs" in obj and isinstance(obj["blobs"], Mapping):
        return _from_caffe2(obj["blobs"], path)
    state = _state_dict_of(obj, path)
    if any(k.startswith(("backbone.", "head.proj.")) for k in state):
        return _from_ours(state, obj)
    if any(k.startswith(("model.blocks.", "detection_head.", "blocks.")) for k in state):
        return _from_pytorchvideo(state)
    if any(k.startswith(("s1.pathway0_stem.", "s1_fuse.", "head.projection.")) for k in state):
        return _from_pyslowfast(state, obj.get("cfg") if isinstance(obj.get("cfg"), str) else None)
    raise AvaDetectError(
        "unknown checkpoint layout: expected names of ava_detect (backbone.*, head.*), PyTorchVideo "
        "(model.blocks.*, detection_head.*, blocks.*) or PySlowFast (s1.pathway0_stem.*, head.projection.*), "
        f"found {_describe_keys(list(state))}", path)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

@dataclass
class LoadReport:
    """What :func:`load_weights` did. ``summary()`` is the readable version that commands print."""

    source: str
    layout: str
    #: our state-dict names that received a value from the file
    loaded: List[str] = field(default_factory=list)
    #: file names not loaded, with the reason (classification head, optimizer state, ...)
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    #: our names that the file did not provide (left at their initial values)
    missing: List[str] = field(default_factory=list)
    #: True when the detection head was (re)initialised instead of loaded
    head_initialised: bool = False
    notes: List[str] = field(default_factory=list)
    #: fine-tuning (``target_names``): the actions whose head rows started from the file's rows
    head_copied: List[CopiedRow] = field(default_factory=list)
    #: fine-tuning: ``(column, name)`` of the actions whose head rows were freshly initialised
    head_fresh: List[Tuple[int, str]] = field(default_factory=list)
    #: fine-tuning: the label map the file's head rows were matched against ("" when none)
    head_names_from: str = ""

    def summary(self, max_names: int = 8) -> str:
        def names(items: List[str]) -> str:
            shown = ", ".join(items[:max_names])
            return shown + (f", ... (+{len(items) - max_names})" if len(items) > max_names else "")

        lines = [f"weights: {self.source}", f"  layout: {LAYOUTS.get(self.layout, self.layout)}",
                 f"  loaded: {len(self.loaded)} tensors"]
        if self.skipped:
            by_reason: Dict[str, List[str]] = {}
            for name, reason in self.skipped:
                by_reason.setdefault(reason, []).append(name)
            lines.append(f"  skipped: {len(self.skipped)} entries of the file")
            for reason, items in by_reason.items():
                lines.append(f"    {reason}: {names(items)}")
        else:
            lines.append("  skipped: none")
        if self.missing:
            lines.append(f"  missing (left at initial values): {len(self.missing)}: {names(self.missing)}")
        else:
            lines.append("  missing: none")
        lines.extend(self._head_lines())
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _head_lines(self) -> List[str]:
        if not self.head_initialised:
            return []
        if not self.head_names_from:
            return ["  detection head: freshly initialised (train it before use)"]
        total = len(self.head_copied) + len(self.head_fresh)
        lines = [f"  detection head: re-initialised for {total} actions; {len(self.head_copied)} start from the "
                 f"file's rows of the same action name ({self.head_names_from}):"]
        lines.extend(f"    {r.name}: file id {r.source_id} -> column {r.column}" for r in self.head_copied)
        if self.head_fresh:
            lines.append(f"  freshly initialised: {len(self.head_fresh)} actions: "
                         + ", ".join(f"{name} (column {c})" for c, name in self.head_fresh))
        return lines


def _is_batch_count(name: str) -> bool:
    return name.endswith("num_batches_tracked")


def reset_head(head: nn.Module) -> None:
    """Initialise the detection head's linear layer as the reference does (normal std 0.01, bias 0)."""
    proj = head.proj
    with torch.no_grad():
        nn.init.normal_(proj.weight, std=0.01)
        nn.init.zeros_(proj.bias)


def _layout_name(src: _Source) -> str:
    return LAYOUTS.get(src.layout, src.layout)


def _report_unused(src: _Source, report: LoadReport, strict: bool, target: Mapping[str, Tensor], path: Path) -> None:
    """Report the file's entries that are known and not loaded; when ``strict``, a file whose backbone
    layout differs from the model's (non-local blocks, depth, pathways) is an error naming the first
    tensor that does not fit."""
    for k in src.classification_head:
        report.skipped.append((k, "classification head (not used for detection)"))
    for k, reason in src.ignored.items():
        report.skipped.append((k, reason))
    if strict:
        check_backbone_fits(src.entries, target, path)


def _match_backbone(src: _Source, target: Mapping[str, Tensor], report: LoadReport, strict: bool,
                    path: Path) -> Dict[str, Tensor]:
    """Our name -> tensor for every non-head entry of the file that fits the model; a shape mismatch is
    always an error, an entry without a place in the model only when ``strict``."""
    new_state: Dict[str, Tensor] = {}
    unexpected: List[str] = []
    mismatched: List[str] = []
    for k, (ours, v) in src.entries.items():
        if ours is not None and ours.startswith("head."):
            continue
        if ours is None or ours not in target:
            unexpected.append(k)
            continue
        if target[ours].shape != v.shape:
            name = k if k == ours else f"{k} ({ours})"
            mismatched.append(f"{name}: file {tuple(v.shape)}, model {tuple(target[ours].shape)}")
            continue
        new_state[ours] = v
    real_unexpected = [k for k in unexpected if not _is_batch_count(k)]
    if real_unexpected and strict:
        raise AvaDetectError(
            f"{len(real_unexpected)} entries of the file have no place in the model: {_describe_keys(real_unexpected)} "
            "(is it the right architecture? pass strict=False to load the rest)", path)
    if mismatched:
        raise AvaDetectError(
            f"{len(mismatched)} shape mismatch(es) between the file and the model: " + "; ".join(mismatched[:4])
            + ("; ..." if len(mismatched) > 4 else "")
            + " (does the model config match the checkpoint? depth, width_per_group, beta_inv, fusion_kernel_size, "
            "temporal kernels)", path)
    for k in unexpected:
        report.skipped.append((k, "not in this model"))
    return new_state


@dataclass
class _HeadTransfer:
    """Fine-tuning: the file's head rows and which of them start which rows of the model's new head."""

    weight: Tensor
    bias: Optional[Tensor]
    copied: List[CopiedRow]
    fresh: List[Tuple[int, str]]
    names_from: str


def _source_names(src: _Source, rows: int, report: LoadReport) -> Optional[SourceNames]:
    """The label map of the file's ``rows``-row detection head (see :mod:`ava_detect.model.head_transfer`),
    or None when it cannot be known (a note says why, except for classification heads)."""
    if src.layout == "ava_detect":
        names, problem = stored_names(src.class_names, rows)
        if names is not None:
            return SourceNames(names, "class names stored in the checkpoint")
        why = problem or "the checkpoint stores no class names (written before checkpoints kept them)"
        fallback = ava_names(rows) if rows == 80 else None
        report.notes.append(f"{why}; " + ("its 80-row head is taken to be AVA v2.2's 80 classes" if fallback
                                          else f"its {rows}-row head cannot be matched by action name: no rows copied"))
        return fallback
    if src.layout == "pytorchvideo_detection" or (src.layout.startswith("pyslowfast") and src.is_detection is not False):
        names = ava_names(rows)
        if names is None and (src.layout == "pytorchvideo_detection" or src.is_detection):
            report.notes.append(f"the file's detection head has {rows} rows, neither AVA's 80 nor 60 classes: "
                                "no rows copied")
        return names
    return None


def _fine_tune_plan(src: _Source, file_head: Mapping[str, Tuple[Optional[str], Tensor]], target: Mapping[str, Tensor],
                    target_names: Mapping[int, str], report: LoadReport) -> Optional[_HeadTransfer]:
    """With the model's label map given: how to start its head from the file's, or None to treat the
    head as without one (it fits and names the same actions, or it is a classification head, or its
    input width differs: the usual rules then load, drop or refuse it)."""
    by_ours = {ours: v for ours, v in file_head.values()}
    weight, bias = by_ours.get("head.proj.weight"), by_ours.get("head.proj.bias")
    if weight is None or weight.dim() != 2 or weight.shape[1] != target["head.proj.weight"].shape[1]:
        return None
    rows = int(weight.shape[0])
    fits = all(ours in target and target[ours].shape == v.shape for ours, v in by_ours.items())
    notes = len(report.notes)
    names = _source_names(src, rows, report)
    if fits and (names is None or same_names(names.names, target_names)):
        del report.notes[notes:]  # the head loads as it is
        return None
    if names is None and src.is_detection is not True and src.layout.startswith("pyslowfast"):
        return None  # a Kinetics classification head: dropped by the usual rule
    copied, fresh = match_rows(names.names, target_names) if names is not None else ([], list(enumerate(target_names.values())))
    return _HeadTransfer(weight, bias, copied, fresh, names.origin if names is not None else "no label map known for it")


def _match_head(src: _Source, target: Mapping[str, Tensor], num_classes: int, head: str, report: LoadReport,
                path: Path, target_names: Optional[Mapping[int, str]] = None
                ) -> Tuple[Dict[str, Tensor], Optional[_HeadTransfer]]:
    """``(our name -> tensor of the file's head when it is to be loaded (else empty: the head is dropped,
    skipped or absent), the fine-tuning plan or None)``, as ``head`` and ``target_names`` ask; see
    :func:`load_weights`."""
    file_head = {k: (ours, v) for k, (ours, v) in src.entries.items() if ours is not None and ours.startswith("head.")}
    if file_head and head == "auto" and target_names is not None:
        plan = _fine_tune_plan(src, file_head, target, target_names, report)
        if plan is not None:
            for k in file_head:
                report.skipped.append((k, "head of another label map (re-initialised; rows copied by action name)"))
            return {}, plan
    load_head = bool(file_head) and head != "skip"
    if file_head and head != "skip":
        head_mismatch = [f"{k}: file {tuple(v.shape)}, model {tuple(target[ours].shape)}"
                         for k, (ours, v) in file_head.items() if ours in target and target[ours].shape != v.shape]
        if head_mismatch:
            if head == "auto" and src.is_detection is not True and src.layout.startswith("pyslowfast"):
                load_head = False
                classes = next(iter(file_head.values()))[1].shape[0]
                for k in file_head:
                    report.skipped.append((k, f"classification head ({classes} classes, model has {num_classes})"))
            else:
                raise AvaDetectError(
                    "head shape mismatch: " + "; ".join(head_mismatch) + " (the file's head predicts another number of "
                    "classes or uses other features; check model.num_classes, or load with head='skip' to train a new head)",
                    path)
    elif file_head and head == "skip":
        for k in file_head:
            report.skipped.append((k, "head not loaded (head='skip')"))
    if head == "load" and not load_head:
        head_keys = [k for k in target if k.startswith("head.")]
        raise AvaDetectError(f"expected a detection head ({', '.join(head_keys)}) in the file, found none "
                             f"({_layout_name(src)})", path)
    return ({ours: v for ours, v in file_head.values()} if load_head else {}), None


def load_weights(model: nn.Module, source: PathLike, *, head: str = "auto", strict: bool = True,
                 progress: bool = True, target_names: Optional[Mapping[int, str]] = None) -> LoadReport:
    """Load weights into ``model`` (an :class:`~ava_detect.model.detector.ActionDetector` before
    :meth:`optimized_for_inference`) from a file or a published name; the layout is detected from the file.

    Args:
        model: the detector to fill, built with the config that matches the weights.
        source: a checkpoint file (ours, PyTorchVideo ``.pyth``, PySlowFast ``.pyth`` / Caffe2 ``.pkl``)
            or a published name (:data:`ava_detect.model.published.PUBLISHED`), downloaded into the
            torch hub cache on first use.
        head: ``"auto"``: load the file's detection head when it has one; a Kinetics classification
            head (PyTorchVideo ``blocks.N.proj``, or a PySlowFast head that is not a detection head /
            has another number of classes) is dropped and our head freshly initialised.
            ``"load"``: the file must provide a matching head. ``"skip"``: never load the head (e.g. to
            fine-tune to another label set); it is freshly initialised.
        strict: every backbone tensor of the model must come from the file and every weight of the
            file must find a place in the model. With ``strict=False`` such entries are reported instead.
        progress: show a download progress bar for published names.
        target_names: the model's label map, action id -> name in head-column order (``LabelMap.names``
            of the label map it is trained with), for fine-tuning. Given, with ``head="auto"``: a file's
            detection head for other actions (another number of rows, or other names) is not an error:
            the head is re-initialised and the rows (weight row and bias) of actions whose names are also
            in the file's label map start from the file's rows (names compared after normalising case
            and whitespace; see :mod:`ava_detect.model.head_transfer`). ``report.head_copied`` and
            ``report.head_fresh`` say which. A head that fits and names the same actions loads as usual.

    Returns:
        A :class:`LoadReport` (also logged at INFO level).

    Raises:
        AvaDetectError: missing/unsafe/unreadable file, unknown layout, a shape mismatch (always), or
            (``strict``) entries that do not fit the model; the message names the file and what was
            expected and found.
    """
    from ava_detect.model.published import resolve_weights

    if head not in ("auto", "load", "skip"):
        raise ValueError(f"head must be 'auto', 'load' or 'skip', got {head!r}")
    path = resolve_weights(source, progress=progress)
    src = _parse_source(read_checkpoint(path), path)
    target = model.state_dict()
    if getattr(model, "fused", False):
        raise AvaDetectError("load weights into the detector before optimized_for_inference()", path)
    report = LoadReport(source=os.fspath(source) if os.fspath(source) == os.fspath(path)
                        else f"{os.fspath(source)} ({os.fspath(path)})", layout=src.layout)
    _report_unused(src, report, strict, target, path)
    new_state = _match_backbone(src, target, report, strict, path)
    if target_names is not None and len(target_names) != model.head.proj.out_features:
        raise ValueError(f"target_names names {len(target_names)} actions but the model's head has "
                         f"{model.head.proj.out_features} columns")
    head_state, plan = _match_head(src, target, model.head.proj.out_features, head, report, path, target_names)
    new_state.update(head_state)
    missing = [k for k in target if k not in new_state and not _is_batch_count(k)
               and not (plan is not None and k.startswith("head.proj."))]
    missing_backbone = [k for k in missing if not k.startswith("head.")]
    if missing_backbone and strict:
        raise AvaDetectError(
            f"the file lacks {len(missing_backbone)} tensors the model needs: {_describe_keys(missing_backbone)} "
            f"({_layout_name(src)}; does the model config match? pass strict=False to keep them "
            "at their initial values)", path)
    report.missing = missing

    with torch.no_grad():
        result = model.load_state_dict(new_state, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    report.loaded = sorted(new_state)
    if not head_state:
        reset_head(model.head)
        report.head_initialised = True
        if plan is not None:
            copy_rows(model.head.proj, plan.weight, plan.bias, plan.copied)
            report.head_copied, report.head_fresh, report.head_names_from = plan.copied, plan.fresh, plan.names_from
        elif target_names is not None:
            report.head_fresh = list(enumerate(target_names.values()))
    elif src.aligned is not None and src.aligned != model.head.aligned:
        msg = (f"the weights were trained with RoIAlign aligned={src.aligned} but the model uses "
               f"aligned={model.head.aligned}: scores will differ from the reference (set model.roi_aligned={src.aligned})")
        report.notes.append(msg)
        logger.warning("%s", msg)
    logger.info("%s", report.summary())
    return report


__all__ = ["CHECKPOINT_PARTS", "LAYOUTS", "LoadReport", "caffe2_to_pyslowfast_name", "load_weights",
           "read_checkpoint", "reset_head", "save_checkpoint"]
