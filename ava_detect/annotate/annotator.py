"""An annotator built from the config: the person detector, the action model with its test transform,
the action names, the pass's options and the renderer, assembled once and used for any number of videos.

::

    cfg = load_annotate_config(None, ["annotate.weights=my_model.pth"])   # or load_config(path, overrides)
    annotator = Annotator.from_config(cfg, device="cuda")
    stats = annotator.annotate("clip.mp4", out_video="clip_annotated.mp4", out_csv="clip.csv")

Without a config file, the preset config of a published weights name (``annotate.weights``, by
default ``slowfast_r50_8x8_ava``) describes the model (:func:`load_annotate_config`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence, Union

import torch

from ava_detect.annotate.action import ActionPredictor
from ava_detect.annotate.options import AnnotateOptions
from ava_detect.annotate.pipeline import AnnotateStats, annotate_video
from ava_detect.annotate.render import FrameRenderer, Renderer
from ava_detect.config import Config, load_config, packaged_config
from ava_detect.data.dataset import build_test_transform
from ava_detect.data.labelmaps import resolve_labelmap
from ava_detect.detection import build_detector
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

if TYPE_CHECKING:
    from ava_detect.annotate.live import LiveOptions, LiveStats
    from ava_detect.data.ava_files import LabelMap
    from ava_detect.detection.base import PersonDetector

logger = logging.getLogger(__name__)


def preset_config(weights: str) -> Optional[Path]:
    """The preset config shipped for a published weights name (:data:`~ava_detect.model.published.PUBLISHED`),
    or None for a file or an unknown name."""
    from ava_detect.model.published import PUBLISHED

    entry = PUBLISHED.get(weights)
    if entry is None:
        return None
    return packaged_config(entry.config)


def load_annotate_config(config: Optional[PathLike], overrides: Sequence[str] = ()) -> Config:
    """The config of ``annotate``: ``config`` with ``overrides``; without a file, the preset config of the
    published weights named by ``annotate.weights`` (built-in defaults for a weights file).

    Raises:
        AvaDetectError: as :func:`~ava_detect.config.load_config`; a preset that is not installed.
    """
    if config is None:
        weights = load_config(None, overrides).annotate.weights
        preset = preset_config(weights)
        if preset is not None:
            if not preset.is_file():
                raise AvaDetectError(f"the preset config of {weights!r} is missing; pass --config for the model's "
                                     f"architecture", preset)
            config = preset
    return load_config(config, overrides)


def build_predictor(cfg: Config, *, weights: str, device: Union[str, torch.device] = "cpu",
                    head: str = "auto", labelmap: Optional["LabelMap"] = None) -> ActionPredictor:
    """The action model of ``cfg.model`` with ``weights`` (a file or a published name), in eval mode on
    ``device``, behind the test transform. bf16 autocast when ``test.bf16`` or when ``annotate.precision``
    says so (``auto``: on CPUs with bf16 matrix units, :func:`~ava_detect.precision.use_bf16`); in bf16 and
    when ``annotate.fuse_bn``, the inference graph of
    :meth:`~ava_detect.model.detector.ActionDetector.optimized_for_inference` (batch norm folded,
    channels-last, frame-wise convolutions in 2D). ``head``: as :func:`~ava_detect.model.load_weights`
    (``"load"``: the file must hold a head that fits).

    With ``annotate.runtime`` ``onnxruntime`` or ``torchscript``, ``weights`` is a file of ``ava-detect export``:
    its contract must fit ``cfg.model`` (and the action ids of ``labelmap``, when given), and gives the test
    transform; onnxruntime runs on the CPU in float32.

    Raises:
        AvaDetectError: weights that cannot be read or do not fit the model.
    """
    from ava_detect.model import build_model, load_weights
    from ava_detect.precision import use_bf16

    device = torch.device(device)
    if cfg.annotate.runtime != "torch":
        return _exported_predictor(cfg, weights=weights, device=device, labelmap=labelmap)
    bf16 = bool(cfg.test.bf16) or use_bf16(cfg.annotate.precision, device)
    model = build_model(cfg)
    load_weights(model, weights, head=head)  # logs what was loaded
    model.eval()
    if cfg.annotate.fuse_bn or bf16:
        model = model.optimized_for_inference(channels_last=True)
    return ActionPredictor(model=model.to(device), transform=build_test_transform(cfg), device=device, bf16=bf16)


def _exported_predictor(cfg: Config, *, weights: str, device: torch.device,
                        labelmap: Optional["LabelMap"]) -> ActionPredictor:
    """:func:`build_predictor` for a file of ``ava-detect export``."""
    from ava_detect.deploy import load_exported

    runtime = cfg.annotate.runtime
    if runtime == "onnxruntime":
        if device.type != "cpu":
            logger.info("onnxruntime runs the action model on the CPU")
        device = torch.device("cpu")
    model = load_exported(weights, runtime, device=device)
    model.contract.check_config(cfg, labelmap, weights)
    from ava_detect.precision import use_bf16

    wanted = bool(cfg.test.bf16) or use_bf16(cfg.annotate.precision, device)
    bf16 = wanted and runtime == "torchscript"
    if wanted and not bf16:
        logger.info("bf16 is not used by onnxruntime: the exported graph runs in float32")
    return ActionPredictor(model=model, transform=model.contract.test_transform(), device=device, bf16=bf16)


class Annotator:
    """Annotates videos with one detector, action model, label map, options and renderer.

    Args:
        detector: finds the people at the keyframes.
        predictor: scores their actions.
        class_ids: AVA action id of each model output column; names: id -> display name.
        options: the settings of a pass (:class:`~ava_detect.annotate.options.AnnotateOptions`).
        renderer: ``renderer(width=W, height=H)`` makes what draws on the frames (default:
            :class:`~ava_detect.annotate.render.Renderer`).
    """

    def __init__(self, *, detector: "PersonDetector", predictor: ActionPredictor, class_ids: Sequence[int],
                 names: Dict[int, str], options: AnnotateOptions,
                 renderer: Callable[..., FrameRenderer] = Renderer):
        if len(class_ids) != predictor.num_classes:
            raise AvaDetectError(f"the label map has {len(class_ids)} classes but the action model predicts "
                                 f"{predictor.num_classes}; pass the label map the model was trained with")
        self.detector, self.predictor = detector, predictor
        self.class_ids, self.names = list(class_ids), dict(names)
        self.options, self.renderer = options, renderer

    @classmethod
    def from_config(cls, cfg: Config, *, weights: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                    detector: Optional["PersonDetector"] = None,
                    renderer: Callable[..., FrameRenderer] = Renderer) -> "Annotator":
        """Everything ``cfg`` describes: options from ``annotate``, the label map (:func:`~ava_detect.data.labelmaps.resolve_labelmap`),
        the detector of ``detector`` (unless one is given), the action model with ``weights`` (default
        ``annotate.weights``) on ``device``.

        Raises:
            AvaDetectError: bad options, a label map that does not fit ``model.num_classes``, detector or
                weights that cannot be loaded.
        """
        options = AnnotateOptions.from_config(cfg)
        labelmap = resolve_labelmap(cfg.annotate.labelmap, kind="all", data=cfg.data)
        detector = detector if detector is not None else build_detector(cfg, device=device)
        if len(labelmap) != cfg.model.num_classes:
            raise AvaDetectError(f"model.num_classes={cfg.model.num_classes} but the label map has {len(labelmap)} "
                                 f"classes; pass the label map the model was trained with (--labelmap)", labelmap.path)
        predictor = build_predictor(cfg, weights=weights or cfg.annotate.weights, device=device, labelmap=labelmap)
        return cls(detector=detector, predictor=predictor, class_ids=list(labelmap.ids), names=dict(labelmap.names),
                   options=options, renderer=renderer)

    def annotate(self, video: PathLike, *, out_video: PathLike, out_csv: Optional[PathLike] = None,
                 out_json: Optional[PathLike] = None, video_id: Optional[str] = None,
                 progress: Optional[Callable[[int], None]] = None,
                 out_jsonl: Optional[PathLike] = None) -> AnnotateStats:
        """Annotate one video (:func:`~ava_detect.annotate.annotate_video`)."""
        return annotate_video(video, out_video=out_video, out_csv=out_csv, out_json=out_json, video_id=video_id,
                              detector=self.detector, predictor=self.predictor, class_ids=self.class_ids,
                              names=self.names, options=self.options, renderer=self.renderer, progress=progress,
                              out_jsonl=out_jsonl)

    def annotate_stream(self, source: str, *, out_video: PathLike, live: Optional["LiveOptions"] = None,
                        out_csv: Optional[PathLike] = None, out_jsonl: Optional[PathLike] = None,
                        video_id: str = "live", view=None, stop=None, progress=None, on_open=None) -> "LiveStats":
        """Annotate a live stream (:func:`~ava_detect.annotate.live.annotate_stream`; ``live`` defaults to
        :class:`~ava_detect.annotate.live.LiveOptions` ()) until it ends, stalls or ``stop`` is set."""
        from ava_detect.annotate.live import LiveOptions, annotate_stream

        return annotate_stream(source, out_video=out_video, detector=self.detector, predictor=self.predictor,
                               class_ids=self.class_ids, names=self.names, options=self.options,
                               live=live or LiveOptions(), out_csv=out_csv, out_jsonl=out_jsonl, video_id=video_id,
                               renderer=self.renderer, view=view, stop=stop, progress=progress, on_open=on_open)
