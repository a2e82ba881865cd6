"""Typed configuration: one dataclass per section, loaded from YAML plus ``section.key=value`` overrides.

The config is read once, at the top (the CLI or a user script): ``build_model(cfg)``,
``build_dataset(cfg, split)`` and friends turn it into explicit arguments; modules and datasets
never see the config object.

A YAML file may start from other files with ``_base_: other.yaml`` (or a list of them), paths
relative to the file; keys in the file override the base. Unknown keys and values of the wrong
type are errors that name the key and the file.

Each field of every section but ``model`` declares the values that make sense (a range, a set of
choices; see :mod:`ava_detect.config_checks`). They are checked once, after the overrides, for
every command: a bad value names its key and where it was set (a file or ``command line``). Files
are read with the text policy of :mod:`ava_detect.text`; nothing in a config file, however
malformed, gives a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ava_detect.data.layout import DatasetLayout
from ava_detect.detection.coco_models import COCO_DETECTORS, DEFAULT_COCO_DETECTOR
from ava_detect.precision import PRECISIONS
from ava_detect.config_checks import at_least, at_most, check_section, choice, ranged, ranged_list
from ava_detect.errors import AvaDetectError
from ava_detect.evaluation.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from ava_detect.io import atomic_open
from ava_detect.text import read_text
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: The relative names of the dataset layout's files (see :mod:`ava_detect.data.layout`).
_LAYOUT = DatasetLayout()

#: Old config keys -> the key that replaced them. Configs (and the configs stored in checkpoints)
#: that use an old key still load; a warning names the new key.
RENAMED_KEYS: Dict[str, str] = {"test.autocast": "test.bf16", "annotate.bf16": "test.bf16"}

#: x264's presets, fastest first.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


@dataclass
class NonLocalConfig:
    """``model.resnet.non_local``: non-local blocks in the ResNet trunk (PySlowFast's ``NONLOCAL``
    section); none by default."""

    #: Per stage res2..res5, per pathway (slow first): indices (0-based) of the residual blocks after
    #: which a non-local block is inserted; [] = none. PySlowFast's R101 AVA models:
    #: ``[[[], []], [[], []], [[6, 13, 20], []], [[], []]]``.
    locations: List[List[List[int]]] = field(default_factory=list)
    #: Per stage, per pathway: the frames are cut into this many runs that attend separately; [] = 1 everywhere.
    group: List[List[int]] = field(default_factory=list)
    #: Per stage, per pathway: max-pool kernel = stride ``[t, h, w]`` on the phi and g branches; [] = no pooling.
    pool_size: List[List[List[int]]] = field(default_factory=list)
    #: ``dot_product`` (affinity / number of positions) or ``softmax``.
    instantiation: str = "softmax"


@dataclass
class ResNetConfig:
    """``model.resnet``: the 3D ResNet trunk of the ``slow`` and ``slowfast`` architectures."""

    #: ResNet depth: 50 or 101 (the published models), or 18 (bottleneck blocks (2, 2, 2, 2), for small CPU runs).
    depth: int = 50
    #: ResNet width per group (64 for the published models; smaller for tests).
    width_per_group: int = 64
    #: Groups of the 3x3 convolutions (1 = ResNet, >1 = ResNeXt).
    num_groups: int = 1
    #: Temporal kernel of the stem conv and of conv_a in res2, res3, res4, res5, slow pathway
    #: (also the one pathway of Slow-only models).
    slow_temporal_kernels: List[int] = field(default_factory=lambda: [1, 1, 1, 3, 3])
    #: Per stage res2..res5: how many leading blocks use the stage's temporal kernel, the rest use 1
    #: (PySlowFast's ``NUM_BLOCK_TEMP_KERNEL``; its R101 AVA models use [3, 4, 6, 3]). Empty = every block.
    num_block_temp_kernel: List[int] = field(default_factory=list)
    #: Spatial stride of res5 (AVA: 1, output stride 16; 2 = the Kinetics classification layout, stride 32).
    res5_spatial_stride: int = 1
    #: Dilation of res5's 3x3 convolutions (AVA: 2).
    res5_dilation: int = 2
    #: Non-local blocks after chosen residual blocks (none by default).
    non_local: NonLocalConfig = field(default_factory=NonLocalConfig)


@dataclass
class SlowFastConfig:
    """``model.slowfast``: what SlowFast adds to the ResNet trunk (the fast pathway and its fusions)."""

    #: Frame-rate ratio between the fast and slow pathways.
    alpha: int = 4
    #: Channel ratio: fast pathway width = slow width / ``beta_inv``.
    beta_inv: int = 8
    #: Fast -> slow fusion: out channels = ``fusion_channel_ratio`` x fast channels.
    fusion_channel_ratio: int = 2
    #: Temporal kernel of the fast -> slow fusion convolution (stride = ``alpha``).
    fusion_kernel_size: int = 7
    #: Temporal kernel of the stem conv and of conv_a in res2, res3, res4, res5, fast pathway.
    fast_temporal_kernels: List[int] = field(default_factory=lambda: [5, 3, 3, 3, 3])


@dataclass
class ModelConfig:
    """The action detector: a backbone (``arch``, with its settings in its own sections) + RoI head.

    The settings every architecture shares are here; each architecture reads its own sections
    (``model.resnet`` and ``model.slowfast``; see :mod:`ava_detect.model.architectures`).
    """

    #: The backbone: ``slowfast`` (two pathways) or ``slow`` (Slow-only); the names of
    #: :data:`ava_detect.model.architectures.ARCHITECTURES`.
    arch: str = "slowfast"
    #: Number of action classes the head predicts (AVA: 80).
    num_classes: int = 80
    #: Frames of the clip the model sees (SlowFast: the fast pathway; the slow pathway gets
    #: ``num_frames // alpha``); for Slow-only models, the frames of the one pathway.
    num_frames: int = 32
    #: Frame stride of the clip in the 30 fps video (SlowFast's slow pathway: ``sampling_rate * alpha``).
    sampling_rate: int = 2
    #: ``aligned`` argument of torchvision's RoIAlign (half-pixel offset): True in PySlowFast's R50
    #: recipe, False in PyTorchVideo's ``slowfast_r50_detection`` and PySlowFast's Caffe2-era models.
    #: Must match the setting the weights were trained with.
    roi_aligned: bool = True
    #: RoIAlign output size (the box features are max-pooled over it).
    roi_resolution: int = 7
    #: RoIAlign samples per bin (0 = adaptive, the reference setting).
    roi_sampling_ratio: int = 0
    #: Dropout before the final linear layer.
    dropout: float = 0.5
    #: The ResNet trunk (``slow``, ``slowfast``).
    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    #: The fast pathway and fusions (``slowfast``).
    slowfast: SlowFastConfig = field(default_factory=SlowFastConfig)


@dataclass
class DataConfig:
    """Where the AVA-format data is and how clips are made from it (see ``ava_detect.data``)."""

    #: Dataset folder; relative file names below are resolved against it.
    root: str = ""
    #: ``video`` (decode prepared videos, ``video_dir``) or ``frames`` (PySlowFast JPEG frame folders, ``frame_dir``).
    source: str = choice("video", ("video", "frames"))
    #: Folder of prepared videos ``<video_id><video_suffix>`` (``ava-detect prep videos``).
    video_dir: str = _LAYOUT.videos_dir.as_posix()
    #: File name suffix of the prepared videos.
    video_suffix: str = ".mp4"
    #: Folder of PySlowFast frame folders ``<video_id>/<video_id>_%06d.jpg`` (``ava-detect prep frames``).
    frame_dir: str = _LAYOUT.frames_dir.as_posix()
    #: Decoder threads per clip read (1: DataLoader workers already run in parallel).
    decode_threads: int = ranged(1, lo=0)
    #: Ground truth of the training and validation splits.
    train_gt: str = _LAYOUT.ground_truth("train").as_posix()
    val_gt: str = _LAYOUT.ground_truth("val").as_posix()
    #: Predicted person boxes: added to the training boxes when ``train_use_predicted_boxes``.
    train_boxes: str = _LAYOUT.predicted_boxes("train").as_posix()
    #: Predicted person boxes used at test time (the test keyframes are the keys that have some).
    val_boxes: str = _LAYOUT.predicted_boxes("val").as_posix()
    #: Excluded timestamps of the training split (empty: none).
    train_exclusions: str = _LAYOUT.exclusions("train").as_posix()
    #: Excluded timestamps of the validation split (empty: none).
    exclusions: str = _LAYOUT.exclusions("val").as_posix()
    #: Label map of the classes to train and evaluate (empty: the packaged AVA v2.2 80-class map).
    labelmap: str = ""
    #: The time axis (:class:`~ava_detect.data.time_axis.TimeAxis`): the second of a video file's time 0 in
    #: the dataset's timestamps (AVA: 900, a prepared segment starts at movie second 900; own videos: 0).
    start_second: int = ranged(900, lo=0)
    #: Valid keyframe seconds ``[first, last]``, inclusive (AVA: ``[902, 1798]``); ``[]``: every annotated
    #: whole second inside its video (own videos).
    keyframe_range: List[int] = ranged_list([902, 1798], lo=0)
    #: Frame rate of the clip time axis: frame ``i`` is the frame shown at file time ``i / fps``, whatever the
    #: video's own rate (AVA: 30).
    fps: int = ranged(30, lo=1, hi=1000)
    #: Skip (with a warning counting them) the keyframes of videos that are missing, instead of an error.
    skip_missing_videos: bool = False
    #: Train: short-side jitter range and square crop size, in pixels.
    train_jitter_min: int = ranged(256, lo=1, hi=16384)
    train_jitter_max: int = ranged(320, lo=1, hi=16384)
    train_crop_size: int = ranged(224, lo=1, hi=16384)
    #: Random horizontal flip in training.
    train_flip: bool = True
    #: Colour jitter strength in training (brightness/contrast/saturation in 1 +- this; 0 = off).
    train_color_jitter: float = ranged(0.0, lo=0.0, hi=1.0)
    #: Test: short side of the full frame, in pixels.
    test_short_side: int = ranged(256, lo=1, hi=16384)
    #: RGB normalisation after /255.
    mean: List[float] = ranged_list([0.45, 0.45, 0.45], lo=0.0, hi=1.0, length=3)
    std: List[float] = ranged_list([0.225, 0.225, 0.225], lo=0.0, lo_open=True, length=3)
    #: Predicted boxes with at least this score are used at test time (SlowFast configs: 0.8).
    test_box_threshold: float = ranged(0.8, lo=0.0, hi=1.0)
    #: Also train on the predicted boxes of ``train_boxes`` (PySlowFast's recipes do).
    train_use_predicted_boxes: bool = False
    #: Training predicted boxes need at least this score (SlowFast configs: 0.8).
    train_box_threshold: float = ranged(0.8, lo=0.0, hi=1.0)
    #: A predicted box takes the labels of a ground-truth box it overlaps with IoU >= this (else: a negative).
    label_iou_threshold: float = ranged(0.9, lo=0.0, hi=1.0)
    #: DataLoader workers per process.
    num_workers: int = ranged(2, lo=0, hi=1024)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping of ``ava-detect train``."""

    output_dir: str = "runs/train"
    #: Clips per process per step.
    batch_size: int = ranged(8, lo=1)
    epochs: int = ranged(20, lo=1)
    #: Learning rate for ``reference_batch_size`` clips in total; scaled linearly with the global batch.
    base_lr: float = ranged(0.1, lo=0.0, lo_open=True)
    reference_batch_size: int = ranged(64, lo=1)
    #: ``steps`` (multiply by ``lr_decay`` at each of ``lr_steps`` epochs) or ``cosine``.
    lr_policy: str = choice("steps", ("steps", "cosine"))
    lr_steps: List[int] = ranged_list([10, 15], lo=0)
    lr_decay: float = ranged(0.1, lo=0.0, hi=1.0, lo_open=True)
    warmup_epochs: float = ranged(5.0, lo=0.0)
    warmup_start_lr: float = ranged(0.000125, lo=0.0)
    momentum: float = ranged(0.9, lo=0.0, hi=1.0, hi_open=True)
    nesterov: bool = True
    weight_decay: float = ranged(1e-7, lo=0.0)
    #: Train only the head.
    freeze_backbone: bool = False
    #: Keep batch-norm statistics and affine parameters fixed.
    freeze_bn: bool = False
    #: Mixed precision (GPU only).
    amp: bool = True
    #: Clip the gradient norm to this value (0 = off).
    clip_grad_norm: float = ranged(0.0, lo=0.0)
    #: Validate every N epochs (0 = only at the end).
    eval_period: int = ranged(1, lo=0)
    #: Save a checkpoint every N epochs (``checkpoints/last.pth`` and ``checkpoints/epoch_NNNN.pth``).
    checkpoint_period: int = ranged(1, lo=0)
    #: Also refresh ``checkpoints/last.pth`` every N iterations (0 = only at epoch ends).
    checkpoint_iters: int = ranged(0, lo=0)
    #: Random seed (0 .. 2**32 - 1).
    seed: int = ranged(0, lo=0, hi=2**32 - 1)
    #: Weights to start from: a file or a published name (empty = random initialisation).
    weights: str = ""
    #: Where to train: ``auto`` (``cuda`` when a GPU is available, else ``cpu``), ``cpu``, ``cuda`` or
    #: ``cuda:N`` (one process only). Under torchrun, ``auto`` and ``cuda`` give process ``LOCAL_RANK``
    #: the GPU ``cuda:LOCAL_RANK`` and the NCCL backend; ``cpu`` uses gloo even where CUDA exists.
    device: str = "auto"


@dataclass
class TestConfig:
    """``ava-detect test``: inference and evaluation."""

    output_dir: str = "runs/test"
    batch_size: int = ranged(8, lo=1)
    #: The evaluation protocol: a name of :data:`ava_detect.evaluation.protocols.PROTOCOLS`
    #: (``activitynet``, the official one, or ``pyslowfast``).
    protocol: str = choice(DEFAULT_PROTOCOL, tuple(PROTOCOLS))
    #: Label map used for the headline number (empty: the packaged official 60-class list).
    eval_labelmap: str = ""
    #: Run the action model under bfloat16 autocast at inference (``test`` and ``annotate``; ``--bf16``):
    #: faster on CPUs with bf16 units and on GPUs; probabilities differ from fp32 by about 1e-2.
    #: (Formerly ``test.autocast`` and ``annotate.bf16``; those keys still load, with a warning.)
    bf16: bool = False
    #: Where to run inference: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (as ``train.device``).
    device: str = "auto"


@dataclass
class DetectorConfig:
    """The person detector that proposes boxes (``ava-detect detect`` and ``annotate``; see ``ava_detect.detection``)."""

    #: ``torchvision`` (a COCO Faster R-CNN, ``model``), ``detectron2`` (if installed) or ``csv`` (precomputed boxes).
    backend: str = "torchvision"  # checked by ``build_detector`` against the backends it knows
    #: The ``torchvision`` backend's model (:data:`ava_detect.detection.coco_models.COCO_DETECTORS`):
    #: ``fasterrcnn_resnet50_fpn_v2`` (46.7 COCO box AP, the default), ``fasterrcnn_resnet50_fpn`` (37.0),
    #: ``fasterrcnn_mobilenet_v3_large_fpn`` (32.8, ~60x fewer FLOPs), ``fasterrcnn_mobilenet_v3_large_320_fpn``
    #: (22.8, trained at 320 px).
    model: str = choice(DEFAULT_COCO_DETECTOR, tuple(COCO_DETECTORS))
    #: Number format of a neural detector: ``auto`` (bf16 on CPUs with bf16 matrix units, else fp32), ``fp32``, ``bf16``.
    precision: str = choice("auto", PRECISIONS)
    #: Weights file of the torchvision / detectron2 model (empty: the backend's COCO weights, downloaded on first use).
    weights: str = ""
    #: detectron2 model-zoo config (backend ``detectron2``).
    detectron2_config: str = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"
    #: Precomputed AVA box CSV (backend ``csv``): predicted boxes ``...,,score`` or ground truth (score 1.0).
    boxes_csv: str = ""
    #: Format of ``boxes_csv``: ``auto`` (from its first row), ``boxes`` or ``ground_truth``.
    boxes_format: str = choice("auto", ("auto", "boxes", "ground_truth"))
    #: Person boxes with a lower score are dropped (AVA recipes give the action model boxes >= 0.8).
    score_threshold: float = ranged(0.8, lo=0.0, hi=1.0)
    #: Short side (pixels) the detector resizes frames to (torchvision / detectron2 default: 800).
    min_size: int = ranged(800, lo=1, hi=16384)
    #: Cap on the long side (pixels) after that resize.
    max_size: int = ranged(1333, lo=1, hi=16384)
    #: Region proposals per frame kept by the torchvision detector's RPN (1000 = torchvision's default;
    #: fewer is faster on CPU and finds slightly fewer people).
    proposals: int = ranged(1000, lo=1)
    #: Frames per detector forward pass.
    batch_size: int = ranged(4, lo=1)


@dataclass
class AnnotateConfig:
    """``ava-detect annotate``: labelling a user's clip (see ``ava_detect.annotate``)."""

    #: Action-model weights: a file or a published name (``slowfast_r50_8x8_ava``, downloaded on first use).
    weights: str = "slowfast_r50_8x8_ava"
    #: What runs the action model: ``torch`` (``weights`` is a checkpoint or a published name), or a file
    #: made by ``ava-detect export`` run by ``onnxruntime`` (on the CPU; ``pip install "ava_detect[onnx]"``)
    #: or by ``torchscript``; the file's contract must fit ``model`` (clip, classes).
    runtime: str = choice("torch", ("torch", "onnxruntime", "torchscript"))
    #: Seconds between keyframes; keyframes are at file times 0, every, 2 * every, ... inside the video.
    every: float = ranged(1.0, lo=0.0, lo_open=True)
    #: Added to a keyframe's whole second of file time to give the CSV's ``second`` (and the key looked
    #: up in a box CSV): 0 for user clips, 900 for prepared AVA videos (t=0 is movie second 900).
    second_offset: int = ranged(0, lo=0)
    #: Actions with at least this probability are written to the CSV / JSON and may be drawn.
    threshold: float = ranged(0.3, lo=0.0, hi=1.0)
    #: At most this many actions (the highest scores above ``threshold``) are drawn per person.
    top_k: int = ranged(3, lo=0)
    #: Action-model batch size (keyframe clips per forward pass).
    batch_size: int = ranged(4, lo=1)
    #: Label map of the action names (empty: ``data.labelmap`` when set, else the packaged 80-class map).
    labelmap: str = ""
    #: Number format of the action model: ``auto`` (bf16 autocast with batch norm folded and channels-last
    #: weights on CPUs with bf16 matrix units, fp32 elsewhere), ``fp32`` or ``bf16``. ``test.bf16=true``
    #: (``--bf16``) also means bf16.
    precision: str = choice("auto", PRECISIONS)
    #: Run the inference graph: batch norm folded into the convolutions, channels-last, frame-wise
    #: convolutions in 2D (scores change by ~1e-5, so they no longer equal ``ava-detect test``'s bit for
    #: bit; about 1.3x faster than the plain model on a 2-core AVX2 CPU; ``--fast`` sets it).
    fuse_bn: bool = False
    #: Boxes of consecutive keyframes with at least this IoU can be the same person (Hungarian assignment).
    track_iou: float = ranged(0.3, lo=0.0, hi=1.0)
    #: A person not seen for up to this many keyframes keeps their id when seen again.
    track_max_age: int = ranged(2, lo=0)
    #: h264 quality of the rendered video (x264 CRF: 0 lossless .. 51 worst; 18 looks lossless).
    crf: int = ranged(20, lo=0, hi=51)
    #: x264 preset (speed / size trade-off: ultrafast, veryfast, fast, medium, ...).
    preset: str = choice("veryfast", X264_PRESETS)
    #: Scale pictures down on reading to at most this many pixels high (0: as they are); the models, the
    #: drawing and the written video then work at that size (pixel coordinates in the JSON are of it). A
    #: 1080p camera on a CPU: 540 (the action model sees 256 pixels high, the --fast detector 320).
    max_height: int = ranged(0, lo=0, hi=16384)
    #: Live streams: seconds from a frame's arrival to its labelled output (video, live view); keyframes
    #: the models cannot score in time are skipped, never queued. At least half the clip plus 0.2 s.
    max_latency: float = ranged(5.0, lo=0.0, lo_open=True)
    #: Live streams: seconds without a frame after which the stream has stalled (it ends, or reconnects).
    stall_timeout: float = ranged(10.0, lo=0.0, lo_open=True)
    #: Live streams: reopen a stream that stalled, ended or failed (back-off 1, 2, 4, ... 30 s, each attempt
    #: logged) instead of ending; the run then ends on SIGINT / SIGTERM.
    reconnect: bool = False


@dataclass
class Config:
    """The whole configuration (one section per step of the pipeline)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)


#: Keys of the ``model`` section that moved into an architecture's own section (same names):
#: old flat configs (and the config stored in older checkpoints) still load, with a warning.
MOVED_MODEL_KEYS: Dict[str, str] = {
    **{k: "resnet" for k in ("depth", "width_per_group", "num_groups", "slow_temporal_kernels",
                             "num_block_temp_kernel", "res5_spatial_stride", "res5_dilation", "non_local")},
    **{k: "slowfast" for k in ("alpha", "beta_inv", "fusion_channel_ratio", "fusion_kernel_size",
                               "fast_temporal_kernels")},
}


def upgrade_legacy_keys(data: Dict[str, Any], source: str) -> Dict[str, Any]:
    """``data`` (nested dicts of one file, override or checkpoint) with old keys under their new names:
    the flat ``model`` keys moved to their sections and the keys of :data:`RENAMED_KEYS` renamed."""
    return _rename_old_keys(_move_flat_model_keys(data, source), source)


def _move_flat_model_keys(data: Dict[str, Any], source: str) -> Dict[str, Any]:
    """``data`` with the old flat ``model`` keys moved to
    their sections (``model.alpha`` -> ``model.slowfast.alpha``), logging a warning that names the new key.

    Raises:
        AvaDetectError: an old key given together with its new name in the same place.
    """
    model = data.get("model")
    if not isinstance(model, dict) or not set(model) & set(MOVED_MODEL_KEYS):
        return data
    model = dict(model)
    for key, section in MOVED_MODEL_KEYS.items():
        if key not in model:
            continue
        value = model.pop(key)
        target = model.get(section)
        target = dict(target) if isinstance(target, dict) else {}
        if key in target:
            raise AvaDetectError(f"config key 'model.{key}' is given together with its new name "
                                 f"'model.{section}.{key}': keep only 'model.{section}.{key}'", source)
        target[key] = value
        model[section] = target
        logger.warning("config key 'model.%s' is now 'model.%s.%s' (in %s); please rename it",
                       key, section, key, source)
    return {**data, "model": model}


def _yaml_error(e: yaml.YAMLError, text: str, path: Path) -> AvaDetectError:
    """One line for a YAML syntax error, with the line it is on."""
    mark = getattr(e, "problem_mark", None)
    if mark is not None:
        line = mark.line + 1
        problem = getattr(e, "problem", None) or str(e)
        context = getattr(e, "context", None)
        text_of = f"{problem} ({context})" if context else problem
    else:  # yaml.reader.ReaderError: a character YAML does not allow
        position = getattr(e, "position", None)
        line = text.count("\n", 0, position) + 1 if position is not None else None
        character = getattr(e, "character", None)
        reason = getattr(e, "reason", "unreadable text")
        text_of = f"{reason}: U+{character:04X}" if isinstance(character, int) else str(e)
    return AvaDetectError(f"invalid YAML: {' '.join(str(text_of).split())}", path, line)


def _check_acyclic(node: Any, where: str, source: str, stack: Sequence[int] = ()) -> None:
    """Refuse a YAML alias that refers to itself (the structure would be infinitely deep)."""
    if isinstance(node, (dict, list)):
        if id(node) in stack:
            raise AvaDetectError(f"'{where}' refers to itself through a YAML alias (an infinitely deep value)", source)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            _check_acyclic(value, f"{where}.{key}" if where else str(key), source, [*stack, id(node)])


def _check_sections(data: Dict[Any, Any], source: str) -> Dict[str, Dict[str, Any]]:
    """Top level: section name -> mapping of keys (an empty ``section:`` is an empty mapping)."""
    sections = {f.name for f in dataclasses.fields(Config)}
    out: Dict[str, Dict[str, Any]] = {}
    for name, value in data.items():
        if not isinstance(name, str) or name not in sections:
            raise AvaDetectError(f"unknown config key '{name}' (valid sections: {', '.join(sorted(sections))})", source)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise AvaDetectError(f"config section '{name}' must be a mapping of key: value, found "
                                 f"{_type_name(value)} {value!r}"[:300], source)
        out[name] = value
    return out


def _type_name(value: Any) -> str:
    return {list: "a list", str: "text", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


def _read_yaml(path: Path, seen: Sequence[Path] = ()) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Read one YAML file and its ``_base_`` chain, merged (later wins).

    Returns:
        ``(sections, origins)``: the merged sections, and for each ``section.key`` the file that set it.
    """
    resolved = path.resolve()
    if resolved in seen:
        raise AvaDetectError("config includes itself through '_base_'", path)
    text = read_text(path, "config file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _yaml_error(e, text, path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AvaDetectError(f"expected a mapping of sections at the top level, found {_type_name(data)}", path)
    _check_acyclic(data, "", os.fspath(path))
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise AvaDetectError(f"'_base_' must be a file name or a list of file names, found {bases!r}", path)
    merged: Dict[str, Any] = {}
    origins: Dict[str, str] = {}
    for base in bases:
        base_data, base_origins = _read_yaml(path.parent / base, [*seen, resolved])
        merged = _deep_merge(merged, base_data)
        origins.update(base_origins)
    data = upgrade_legacy_keys(_check_sections(data, os.fspath(path)), os.fspath(path))
    origins.update({f"{section}.{key}": os.fspath(path) for section, keys in data.items() for key in keys})
    return _deep_merge(merged, data), origins


def _deep_merge(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _rename_old_keys(data: Dict[str, Any], source: str) -> Dict[str, Any]:
    """``data`` (nested sections) with the keys of :data:`RENAMED_KEYS` moved to their new names.

    A new key given in ``data`` wins over old ones; two old keys of one new key that disagree
    give ``True`` when both are booleans (the old settings were both on/off switches).
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    moved: Dict[str, Any] = {}
    for old, new in RENAMED_KEYS.items():
        section, key = old.split(".")
        if not isinstance(out.get(section), dict) or key not in out[section]:
            continue
        value = out[section].pop(key)
        new_section, new_key = new.split(".")
        if isinstance(data.get(new_section), dict) and new_key in data[new_section]:
            logger.warning("%s: config key '%s' is now '%s', which is also set; '%s' is ignored", source, old, new, old)
            continue
        logger.warning("%s: config key '%s' is now '%s'; please rename it", source, old, new)
        if new in moved and isinstance(value, bool) and isinstance(moved[new], bool):
            value = value or moved[new]
        moved[new] = value
    for new, value in moved.items():
        section, key = new.split(".")
        out.setdefault(section, {})[key] = value
    return out


#: Values of ``train.device`` and ``test.device``.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
_DEVICE_KEYS = ("train", "test")


def _check_devices(data: Union[Dict[str, Any], DictConfig], source: str) -> None:
    """The device keys set in ``data`` (one file, override or checkpoint) name a device we can use."""
    for section in _DEVICE_KEYS:
        part = data.get(section) if hasattr(data, "get") else None
        value = part.get("device") if hasattr(part, "get") else None
        if value is not None and not (isinstance(value, str) and DEVICE_PATTERN.fullmatch(value)):
            raise AvaDetectError(f"bad value for config key '{section}.device': expected auto, cpu, cuda or "
                                 f"cuda:N (N = GPU index), found {value!r}", source)


def _merge_checked(schema: DictConfig, data: Union[Dict[str, Any], DictConfig], source: str) -> DictConfig:
    _check_devices(data, source)
    try:
        return OmegaConf.merge(schema, data)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = (getattr(e, "msg", None) or str(e) or type(e).__name__).splitlines()[0]
        if "not in" in msg or "Key" in msg and "not" in msg:
            section = key.rsplit(".", 1)[0]
            node: Any = Config()
            for part in section.split("."):
                node = getattr(node, part, None)
            valid = ""
            if dataclasses.is_dataclass(node):
                valid = f" (valid keys of '{section}': {', '.join(f.name for f in dataclasses.fields(node))})"
            elif "." not in key:
                valid = f" (valid sections: {', '.join(f.name for f in dataclasses.fields(Config))})"
            raise AvaDetectError(f"unknown config key '{key}'{valid}", source) from None
        raise AvaDetectError(f"bad value for config key '{key}': {msg}", source) from None


def _nesterov_needs_momentum(t: "TrainConfig") -> Optional[Tuple[str, str, str]]:
    if t.nesterov and t.momentum == 0:
        return "nesterov", "momentum", "Nesterov momentum needs train.momentum > 0 (set train.nesterov=false)"
    return None


def _keyframe_range(d: "DataConfig") -> Optional[Tuple[str, str, str]]:
    rng = list(d.keyframe_range)
    if rng and (len(rng) != 2 or rng[0] > rng[1]):
        return "keyframe_range", "keyframe_range", f"expected [] or [first, last] with first <= last, found {rng}"
    if rng and rng[0] < d.start_second:
        return ("keyframe_range", "start_second", f"the first keyframe ({rng[0]}) is before the video's start "
                f"(data.start_second={d.start_second})")
    return None


#: Checks that relate two fields of one section (the model section is checked by ``build_model``).
_CROSS_CHECKS = {
    "data": (at_least("train_jitter_max", "train_jitter_min"), at_most("train_crop_size", "train_jitter_min"),
             _keyframe_range),
    "train": (_nesterov_needs_momentum,),
    "detector": (at_least("max_size", "min_size"),),
}


def validate_config(cfg: Config, origins: Optional[Dict[str, str]] = None, default_source: str = "config") -> None:
    """Check every value against the range, choices or rule its field declares (all sections but
    ``model``, whose architecture checks live with the model builders).

    Args:
        origins: ``section.key`` -> where it was set (a file, ``"command line"``), for the message.
        default_source: the source named for keys that ``origins`` does not know.

    Raises:
        AvaDetectError: the first bad value: its key, what was expected, what was found, and its source.
    """
    origins = origins or {}
    for f in dataclasses.fields(cfg):
        if f.name == "model":
            continue
        problem = check_section(getattr(cfg, f.name), f.name, _CROSS_CHECKS.get(f.name, ()))
        if problem is not None:
            key, other, message = problem
            raise AvaDetectError(f"bad value for config key '{key}': {message}",
                                 origins.get(key) or origins.get(other) or default_source)


def _parse_override(item: str) -> Tuple[str, Dict[str, Any]]:
    """``"section.key=value"`` -> ``("section.key", {"section": {"key": value}})``; values are YAML."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or "." not in key:
        raise AvaDetectError(f"override {item!r} must look like section.key=value", "command line")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    _check_acyclic(parsed, key, "command line")
    nested: Dict[str, Any] = {}
    node = nested
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = parsed
    return key, nested


def load_config(path: Optional[PathLike] = None, overrides: Sequence[str] = ()) -> Config:
    """Load the config: defaults, then the YAML file (with its ``_base_`` chain), then overrides,
    then check every value (:func:`validate_config`).

    Args:
        path: YAML file, or None for the built-in defaults.
        overrides: ``["section.key=value", ...]``; values are parsed as YAML (``train.epochs=3``,
            ``model.roi_aligned=false``, ``data.mean=[0.5,0.5,0.5]``).

    Raises:
        AvaDetectError: unknown key, wrong type, value out of range, malformed override or YAML,
            unreadable file; naming the key and the file or ``command line``.
    """
    cfg = OmegaConf.structured(Config)
    origins: Dict[str, str] = {}
    if path is not None:
        data, origins = _read_yaml(Path(path))
        cfg = _merge_checked(cfg, data, os.fspath(path))
    for item in overrides:
        key, nested = _parse_override(item)
        nested = upgrade_legacy_keys(nested, "command line")
        cfg = _merge_checked(cfg, nested, "command line")
        origins[key] = "command line"
        origins.update({f"{section}.{k}": "command line" for section, keys in nested.items()
                        if isinstance(keys, dict) for k in keys})
    out = OmegaConf.to_object(cfg)
    validate_config(out, origins)
    return out


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """The config as plain nested dicts (for saving and for checkpoints)."""
    return dataclasses.asdict(cfg)


def config_from_dict(data: Dict[str, Any], source: str = "checkpoint") -> Config:
    """Inverse of :func:`config_to_dict`, with the same checks as :func:`load_config` (and the same
    upgrade of old keys, so the config stored in an older checkpoint still loads)."""
    if not isinstance(data, dict):
        raise AvaDetectError(f"expected a mapping of config sections, found {_type_name(data)}", source)
    _check_acyclic(data, "", source)
    data = upgrade_legacy_keys(_check_sections(data, source), source)
    cfg = OmegaConf.to_object(_merge_checked(OmegaConf.structured(Config), data, source))
    validate_config(cfg, default_source=source)
    return cfg


def save_config(cfg: Config, path: PathLike) -> None:
    """Write the resolved config as YAML next to a run's outputs (atomically)."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config_to_dict(cfg), f, sort_keys=False)


def configs_dir() -> Path:
    """The folder of the experiment configs that ship with the package.

    Installed from a wheel or with ``pip install .``: ``ava_detect/configs`` inside the package
    (``setup.py`` maps the project's top-level ``configs/`` there). Run from a source checkout
    (``pip install -e .``, or the checkout on ``PYTHONPATH``): the top-level ``configs/`` beside
    the package.

    Raises:
        AvaDetectError: neither is there (an installation without its package data).
    """
    package = Path(__file__).resolve().parent
    installed = package / "configs"
    if installed.is_dir():
        return installed
    checkout = package.parent
    if (checkout / "setup.py").is_file() and (checkout / "configs").is_dir():
        return checkout / "configs"
    raise AvaDetectError("the packaged configs are missing from this installation (expected the folder "
                         "ava_detect/configs, or configs/ beside the package in a source checkout)", installed)


def packaged_configs() -> List[str]:
    """The shipped configs, as paths relative to :func:`configs_dir` (``"synthetic/slowfast_tiny.yaml"``), sorted."""
    root = configs_dir()
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml"))


def packaged_config(relative: str) -> Path:
    """The shipped config ``relative`` to the configs folder, e.g. ``"synthetic/slowfast_tiny.yaml"``
    (its ``_base_`` files resolve beside it, inside the same folder).

    Raises:
        AvaDetectError: no such config, listing the ones that ship.
    """
    path = configs_dir() / relative
    if not path.is_file():
        raise AvaDetectError(f"no packaged config {relative!r}; the configs that ship are: "
                             f"{', '.join(packaged_configs())}", path)
    return path
