"""The input/output contract of an exported action detector, stored in the exported file's metadata.

An exported file (ONNX or TorchScript, see :mod:`ava_detect.deploy.export`) runs one function::

    <pathway inputs>, rois  ->  probs

* pathway inputs, one per pathway of the backbone, in its order: SlowFast ``slow float32 [B,3,T/alpha,H,W]``
  and ``fast float32 [B,3,T,H,W]``; a one-pathway (Slow-only) model: ``clip float32 [B,3,T,H,W]``.
  ``B >= 1`` clips; ``H, W >= min_side`` pixels (any size above it, one size for all clips).
  The frames are RGB, scaled to [0, 1] (``uint8 / 255``), then ``(x - mean) / std`` per channel.
  A pathway with temporal ratio ``r`` sees ``T // r`` of the clip's ``T = num_frames`` frames, at
  ``linspace(0, T - 1, T // r).long()`` (:func:`ava_detect.model.base.slow_indices`).
* ``rois float32 [K,5]``: ``(batch_index, x1, y1, x2, y2)`` in pixels of the inputs (after the resize);
  ``K >= 0``.
* ``probs float32 [K,C]``: the sigmoid probability of each of the ``C`` classes (column ``j`` is the
  action id ``class_ids[j]``).

The clip is ``num_frames`` frames ``sampling_rate`` apart on the 30 fps axis, centred on the keyframe;
the test transform resizes the full frame to a short side of ``short_side`` px (bilinear, no crop).
:meth:`ExportContract.test_transform` rebuilds that transform from the contract alone.

The contract is stored as JSON: in an ONNX file's ``metadata_props`` under :data:`METADATA_KEY`, in a
TorchScript file as the extra file of that name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

if TYPE_CHECKING:
    from ava_detect.config import Config
    from ava_detect.data.ava_files import LabelMap
    from ava_detect.data.transforms import TestTransform
    from ava_detect.model.base import InputSpec
    from ava_detect.model.detector import ActionDetector

#: Metadata key (ONNX ``metadata_props``; TorchScript extra file) that holds the contract's JSON.
METADATA_KEY = "ava_detect.contract"
#: Version of the contract's layout; a file with another version is refused.
FORMAT_VERSION = 1
#: Name of the boxes input and of the output.
ROIS, PROBS = "rois", "probs"
#: A dimension of a shape: a size, or a symbol that may take any size (``"B"``, ``"K"``, ``"H"``, ``"W"``).
Dim = Union[int, str]


def pathway_names(num_pathways: int) -> Tuple[str, ...]:
    """Input names of the pathways: ``("clip",)`` for one, ``("slow", "fast")`` for SlowFast's two."""
    if num_pathways == 1:
        return ("clip",)
    if num_pathways == 2:
        return ("slow", "fast")
    return tuple(f"pathway{p}" for p in range(num_pathways))


def format_shape(shape: Sequence[Dim]) -> str:
    """``[B,3,16,H,W]``."""
    return "[" + ",".join(str(d) for d in shape) + "]"


@dataclass(frozen=True)
class ExportContract:
    """What an exported detector takes and gives (see the module docstring).

    Attributes:
        format_version: :data:`FORMAT_VERSION` of the writer.
        arch: ``model.arch`` of the exported model (``slowfast``, ``slow``).
        temporal_ratios: per pathway, the clip's frames it sees is ``num_frames // ratio``
            (:class:`~ava_detect.model.base.InputSpec`); SlowFast ``(alpha, 1)``.
        num_frames, sampling_rate: the clip (``model.num_frames``, ``model.sampling_rate``).
        short_side: short side (px) the test transform resizes frames to (``data.test_short_side``).
        min_side: the smallest ``H`` and ``W`` the exported graph accepts (px).
        mean, std: RGB normalisation applied after ``/ pixel_scale``.
        pixel_scale: the frames' value range (255: uint8 RGB).
        roi_aligned: RoIAlign's ``aligned`` flag the weights were trained with (kept in the graph).
        output_stride: input pixels per feature-map pixel (RoIAlign's spatial scale is its inverse).
        class_ids, class_names: action id and name of each output column.
        opset: ONNX opset of the file (0 for TorchScript).
    """

    arch: str
    temporal_ratios: Tuple[int, ...]
    num_frames: int
    sampling_rate: int
    short_side: int
    min_side: int
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    roi_aligned: bool
    output_stride: int
    class_ids: Tuple[int, ...]
    class_names: Tuple[str, ...]
    opset: int = 0
    pixel_scale: float = 255.0
    format_version: int = FORMAT_VERSION

    # ---- building and (de)serialising

    @classmethod
    def from_model(cls, cfg: "Config", model: "ActionDetector", labelmap: "LabelMap") -> "ExportContract":
        """The contract of ``model`` (built from ``cfg``), with the classes of ``labelmap``.

        Raises:
            AvaDetectError: a label map whose number of classes differs from the model's.
        """
        if len(labelmap) != model.num_classes:
            raise AvaDetectError(f"the label map has {len(labelmap)} classes but the model predicts "
                                 f"{model.num_classes}; pass the label map the model was trained with (--labelmap)",
                                 labelmap.path)
        stride = model.backbone.output_stride
        return cls(arch=cfg.model.arch, temporal_ratios=tuple(model.input_spec.temporal_ratios),
                   num_frames=cfg.model.num_frames, sampling_rate=cfg.model.sampling_rate,
                   short_side=cfg.data.test_short_side, min_side=2 * stride,
                   mean=tuple(float(v) for v in cfg.data.mean), std=tuple(float(v) for v in cfg.data.std),
                   roi_aligned=bool(model.head.aligned), output_stride=stride,
                   class_ids=tuple(int(i) for i in labelmap.ids),
                   class_names=tuple(labelmap.names[i] for i in labelmap.ids))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: PathLike) -> "ExportContract":
        """Parse the metadata of ``source``.

        Raises:
            AvaDetectError: not JSON, another format version, missing or mistyped fields (naming ``source``).
        """
        try:
            data = json.loads(text)
        except ValueError as e:
            raise AvaDetectError(f"the export contract in the file's metadata is not JSON ({e})", source) from None
        if not isinstance(data, dict):
            raise AvaDetectError("the export contract in the file's metadata is not a JSON object", source)
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise AvaDetectError(f"export contract version {version!r}; this version of ava_detect reads version "
                                 f"{FORMAT_VERSION} (export the model again)", source)
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(data))
        if missing:
            raise AvaDetectError(f"the export contract lacks {', '.join(missing)}", source)
        try:
            contract = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})
            contract.check_values()
        except (TypeError, ValueError) as e:
            raise AvaDetectError(f"the export contract is malformed: {e}", source) from None
        return contract

    def check_values(self) -> None:
        """Raise ``ValueError`` for values that cannot describe a model."""
        ints = (self.num_frames, self.sampling_rate, self.short_side, self.min_side, self.output_stride,
                *self.temporal_ratios)
        if not all(isinstance(v, int) and v >= 1 for v in ints) or not self.temporal_ratios:
            raise ValueError("frames, sampling rate, sizes and temporal ratios must be positive integers")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std must be 3 numbers each, std > 0")
        if len(self.class_ids) != len(self.class_names) or not self.class_ids:
            raise ValueError("class_ids and class_names must be non-empty and of one length")

    # ---- what the contract implies

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    @property
    def input_names(self) -> Tuple[str, ...]:
        """The pathway inputs, then ``rois``."""
        return (*pathway_names(len(self.temporal_ratios)), ROIS)

    def input_shapes(self) -> Dict[str, List[Dim]]:
        """Name -> shape, symbols for the free dimensions: ``{"slow": ["B", 3, 4, "H", "W"], ..., "rois": ["K", 5]}``."""
        shapes: Dict[str, List[Dim]] = {
            name: ["B", 3, self.num_frames // r, "H", "W"]
            for name, r in zip(pathway_names(len(self.temporal_ratios)), self.temporal_ratios)}
        shapes[ROIS] = ["K", 5]
        return shapes

    def output_shape(self) -> List[Dim]:
        return ["K", self.num_classes]

    def input_spec(self) -> "InputSpec":
        from ava_detect.model.base import InputSpec

        return InputSpec(self.temporal_ratios)

    def test_transform(self) -> "TestTransform":
        """The test-time transform the model expects (short side resize, normalisation, pathway packing)."""
        from ava_detect.data.transforms import TestTransform

        return TestTransform(self.input_spec(), short_side=self.short_side, mean=tuple(self.mean), std=tuple(self.std))

    def check_config(self, cfg: "Config", labelmap: Optional["LabelMap"], source: PathLike) -> None:
        """Refuse a config (and label map) whose model differs from the exported one: the clip the
        pipeline cuts (``model.num_frames``, ``sampling_rate``), the pathways (``model.arch`` and its
        ``alpha``), the number of classes and their ids.

        Raises:
            AvaDetectError: naming ``source``, each config key that differs and both values.
        """
        from ava_detect.model.architectures import input_spec_from_config

        m = cfg.model
        found = {"model.arch": (m.arch, self.arch), "model.num_frames": (m.num_frames, self.num_frames),
                 "model.sampling_rate": (m.sampling_rate, self.sampling_rate),
                 "model.num_classes": (m.num_classes, self.num_classes),
                 "pathway frame ratios": (list(input_spec_from_config(m).temporal_ratios), list(self.temporal_ratios))}
        differ = [f"{key}={mine} in the config but {theirs} in the file" for key, (mine, theirs) in found.items()
                  if mine != theirs]
        if differ:
            raise AvaDetectError(f"the exported model does not fit the config: {'; '.join(differ)}; pass the config it "
                                 f"was exported with (--config) or override those keys", source)
        if labelmap is not None and tuple(labelmap.ids) != self.class_ids:
            raise AvaDetectError(f"the label map's action ids ({_ids(labelmap.ids)}) differ from the exported model's "
                                 f"({_ids(self.class_ids)}); pass the label map it was exported with", source)

    def check_graph(self, inputs: Dict[str, Sequence[Optional[Dim]]], outputs: Dict[str, Sequence[Optional[Dim]]],
                    source: PathLike) -> None:
        """Refuse a graph whose inputs or outputs differ from the contract's (another model's file, or
        metadata copied onto another graph). ``inputs``/``outputs``: name -> shape as the runtime
        reports it (an int for a fixed size, a string or None for a free one).

        Raises:
            AvaDetectError: naming ``source`` and the first difference, e.g. ``input 'fast' has shape
                [B,3,16,H,W], expected [B,3,32,H,W]``.
        """
        expected_in, expected_out = self.input_shapes(), {PROBS: self.output_shape()}
        for kind, found, expected in (("input", inputs, expected_in), ("output", outputs, expected_out)):
            for name, shape in expected.items():
                if name not in found:
                    others = ", ".join(repr(n) for n in found) or "none"
                    raise AvaDetectError(f"the graph has no {kind} named {name!r} (its {kind}s: {others}); it is not "
                                         f"the model its export contract describes", source)
                actual = ["?" if d is None else d for d in found[name]]
                fits = len(actual) == len(shape) and all(
                    (isinstance(a, int) and a == e) if isinstance(e, int) else not isinstance(a, int)
                    for a, e in zip(actual, shape))
                if not fits:
                    raise AvaDetectError(f"{kind} {name!r} has shape {format_shape(actual)}, expected "
                                         f"{format_shape(shape)} (its export contract); it is another model", source)
            extra = [n for n in found if n not in expected]
            if extra:
                raise AvaDetectError(f"the graph has an unexpected {kind} {extra[0]!r}; it is not the model its export "
                                     f"contract describes", source)

    def summary(self) -> List[str]:
        """A few lines for people: inputs, output, clip, normalisation, classes."""
        shapes = self.input_shapes()
        inputs = ", ".join(f"{name} {format_shape(shape)}" for name, shape in shapes.items())
        return [
            f"inputs: {inputs} (rois: batch_index, x1, y1, x2, y2 in input pixels); output: {PROBS} "
            f"{format_shape(self.output_shape())} probabilities",
            f"clip: {self.arch}, {self.num_frames} frames {self.sampling_rate} apart at 30 fps, pathway frame ratios "
            f"{list(self.temporal_ratios)}; frames resized to short side {self.short_side} px (H, W >= {self.min_side})",
            f"normalisation: RGB / {self.pixel_scale:g}, mean {list(self.mean)}, std {list(self.std)}; RoIAlign "
            f"aligned={self.roi_aligned}, output stride {self.output_stride}",
            f"classes: {self.num_classes} ({_ids(self.class_ids)})" + (f"; ONNX opset {self.opset}" if self.opset else ""),
        ]


def _ids(ids: Sequence[int]) -> str:
    ids = list(ids)
    return ", ".join(map(str, ids)) if len(ids) <= 6 else f"{', '.join(map(str, ids[:3]))}, ..., {ids[-1]}"
