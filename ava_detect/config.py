"""Typed configuration: one dataclass per section, loaded from YAML plus ``section.key=value`` overrides.

The config is read once, at the top (the CLI or a user script): ``build_model(cfg)``,
``build_dataset(cfg, split)`` and friends turn it into explicit arguments; modules and datasets
never see the config object.

A YAML file may start from other files with ``_base_: other.yaml`` (or a list of them), paths
relative to the file; keys in the file override the base. Unknown keys and values of the wrong
type are errors that name the key and the file.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ava_detect.errors import AvaDetectError
from ava_detect.io import atomic_open

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class NonLocalConfig:
    """Non-local blocks in the backbone (PySlowFast's ``NONLOCAL`` section); none by default."""

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
class ModelConfig:
    """The action detector: SlowFast / Slow-only ResNet backbone + RoI head."""

    #: ``slowfast`` (two pathways) or ``slow`` (Slow-only).
    arch: str = "slowfast"
    #: ResNet depth: 50 or 101 (the published models), or 18 (bottleneck blocks (2, 2, 2, 2), for small CPU runs).
    depth: int = 50
    #: Number of action classes the head predicts (AVA: 80).
    num_classes: int = 80
    #: Frames of the fast pathway (the slow pathway gets ``num_frames // alpha``);
    #: for Slow-only models, the frames of the one pathway.
    num_frames: int = 32
    #: Frame stride of the fast pathway in the 30 fps video (slow: ``sampling_rate * alpha``).
    sampling_rate: int = 2
    #: Frame-rate ratio between the fast and slow pathways.
    alpha: int = 4
    #: Channel ratio: fast pathway width = slow width / ``beta_inv``.
    beta_inv: int = 8
    #: Fast -> slow fusion: out channels = ``fusion_channel_ratio`` x fast channels.
    fusion_channel_ratio: int = 2
    #: Temporal kernel of the fast -> slow fusion convolution (stride = ``alpha``).
    fusion_kernel_size: int = 7
    #: ResNet width per group (64 for the published models; smaller for tests).
    width_per_group: int = 64
    #: Groups of the 3x3 convolutions (1 = ResNet, >1 = ResNeXt).
    num_groups: int = 1
    #: Temporal kernel of the stem conv and of conv_a in res2, res3, res4, res5, slow pathway
    #: (also the one pathway of Slow-only models).
    slow_temporal_kernels: List[int] = field(default_factory=lambda: [1, 1, 1, 3, 3])
    #: Temporal kernel of the stem conv and of conv_a in res2, res3, res4, res5, fast pathway.
    fast_temporal_kernels: List[int] = field(default_factory=lambda: [5, 3, 3, 3, 3])
    #: Per stage res2..res5: how many leading blocks use the stage's temporal kernel, the rest use 1
    #: (PySlowFast's ``NUM_BLOCK_TEMP_KERNEL``; its R101 AVA models use [3, 4, 6, 3]). Empty = every block.
    num_block_temp_kernel: List[int] = field(default_factory=list)
    #: Spatial stride of res5 (AVA: 1, output stride 16; 2 = the Kinetics classification layout, stride 32).
    res5_spatial_stride: int = 1
    #: Dilation of res5's 3x3 convolutions (AVA: 2).
    res5_dilation: int = 2
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
    #: Non-local blocks (none by default).
    non_local: NonLocalConfig = field(default_factory=NonLocalConfig)


@dataclass
class DataConfig:
    """Where the AVA-format data is and how clips are made from it (see ``ava_detect.data``)."""

    #: Dataset folder; relative file names below are resolved against it.
    root: str = ""
    #: ``video`` (decode prepared videos, ``video_dir``) or ``frames`` (PySlowFast JPEG frame folders, ``frame_dir``).
    source: str = "video"
    #: Folder of prepared videos ``<video_id><video_suffix>`` (``ava-detect prep videos``).
    video_dir: str = "videos"
    #: File name suffix of the prepared videos.
    video_suffix: str = ".mp4"
    #: Folder of PySlowFast frame folders ``<video_id>/<video_id>_%06d.jpg`` (``ava-detect prep frames``).
    frame_dir: str = "frames"
    #: Decoder threads per clip read (1: DataLoader workers already run in parallel).
    decode_threads: int = 1
    #: Ground truth of the training and validation splits.
    train_gt: str = "annotations/train.csv"
    val_gt: str = "annotations/val.csv"
    #: Predicted person boxes: added to the training boxes when ``train_use_predicted_boxes``.
    train_boxes: str = "annotations/train_predicted_boxes.csv"
    #: Predicted person boxes used at test time (the test keyframes are the keys that have some).
    val_boxes: str = "annotations/val_predicted_boxes.csv"
    #: Excluded timestamps of the training split (empty: none).
    train_exclusions: str = "annotations/train_excluded_timestamps.csv"
    #: Excluded timestamps of the validation split (empty: none).
    exclusions: str = "annotations/val_excluded_timestamps.csv"
    #: Label map of the classes to train and evaluate (empty: the packaged AVA v2.2 80-class map).
    labelmap: str = ""
    #: Frame rate of the prepared videos' time axis.
    fps: int = 30
    #: Skip (with a warning counting them) the keyframes of videos that are missing, instead of an error.
    skip_missing_videos: bool = False
    #: Train: short-side jitter range and square crop size, in pixels.
    train_jitter_min: int = 256
    train_jitter_max: int = 320
    train_crop_size: int = 224
    #: Random horizontal flip in training.
    train_flip: bool = True
    #: Colour jitter strength in training (brightness/contrast/saturation in 1 +- this; 0 = off).
    train_color_jitter: float = 0.0
    #: Test: short side of the full frame, in pixels.
    test_short_side: int = 256
    #: RGB normalisation after /255.
    mean: List[float] = field(default_factory=lambda: [0.45, 0.45, 0.45])
    std: List[float] = field(default_factory=lambda: [0.225, 0.225, 0.225])
    #: Predicted boxes with at least this score are used at test time (SlowFast configs: 0.8).
    test_box_threshold: float = 0.8
    #: Also train on the predicted boxes of ``train_boxes`` (PySlowFast's recipes do).
    train_use_predicted_boxes: bool = False
    #: Training predicted boxes need at least this score (SlowFast configs: 0.8).
    train_box_threshold: float = 0.8
    #: A predicted box takes the labels of a ground-truth box it overlaps with IoU >= this (else: a negative).
    label_iou_threshold: float = 0.9
    #: DataLoader workers per process.
    num_workers: int = 2


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping of ``ava-detect train``."""

    output_dir: str = "runs/train"
    #: Clips per process per step.
    batch_size: int = 8
    epochs: int = 20
    #: Learning rate for ``reference_batch_size`` clips in total; scaled linearly with the global batch.
    base_lr: float = 0.1
    reference_batch_size: int = 64
    #: ``steps`` (multiply by ``lr_decay`` at each of ``lr_steps`` epochs) or ``cosine``.
    lr_policy: str = "steps"
    lr_steps: List[int] = field(default_factory=lambda: [10, 15])
    lr_decay: float = 0.1
    warmup_epochs: float = 5.0
    warmup_start_lr: float = 0.000125
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-7
    #: Train only the head.
    freeze_backbone: bool = False
    #: Keep batch-norm statistics and affine parameters fixed.
    freeze_bn: bool = False
    #: Mixed precision (GPU only).
    amp: bool = True
    #: Clip the gradient norm to this value (0 = off).
    clip_grad_norm: float = 0.0
    #: Validate every N epochs (0 = only at the end).
    eval_period: int = 1
    #: Save a checkpoint every N epochs (``checkpoints/last.pth`` and ``checkpoints/epoch_NNNN.pth``).
    checkpoint_period: int = 1
    #: Also refresh ``checkpoints/last.pth`` every N iterations (0 = only at epoch ends).
    checkpoint_iters: int = 0
    seed: int = 0
    #: Weights to start from: a file or a published name (empty = random initialisation).
    weights: str = ""


@dataclass
class TestConfig:
    """``ava-detect test``: inference and evaluation."""

    output_dir: str = "runs/test"
    batch_size: int = 8
    #: ``activitynet`` (official) or ``pyslowfast``.
    protocol: str = "activitynet"
    #: Label map used for the headline number (empty: the packaged official 60-class list).
    eval_labelmap: str = ""
    #: bf16 autocast on CPU / fp16 on GPU for inference.
    autocast: bool = False


@dataclass
class DetectorConfig:
    """The person detector that proposes boxes (``ava-detect detect`` and ``annotate``; see ``ava_detect.detection``)."""

    #: ``torchvision`` (Faster R-CNN R50-FPN v2, COCO), ``detectron2`` (if installed) or ``csv`` (precomputed boxes).
    backend: str = "torchvision"
    #: Weights file of the torchvision / detectron2 model (empty: the backend's COCO weights, downloaded on first use).
    weights: str = ""
    #: detectron2 model-zoo config (backend ``detectron2``).
    detectron2_config: str = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"
    #: Precomputed AVA box CSV (backend ``csv``): predicted boxes ``...,,score`` or ground truth (score 1.0).
    boxes_csv: str = ""
    #: Format of ``boxes_csv``: ``auto`` (from its first row), ``boxes`` or ``ground_truth``.
    boxes_format: str = "auto"
    #: Person boxes with a lower score are dropped (AVA recipes give the action model boxes >= 0.8).
    score_threshold: float = 0.8
    #: Short side (pixels) the detector resizes frames to (torchvision / detectron2 default: 800).
    min_size: int = 800
    #: Cap on the long side (pixels) after that resize.
    max_size: int = 1333
    #: Region proposals per frame kept by the torchvision detector's RPN (1000 = torchvision's default;
    #: fewer is faster on CPU and finds slightly fewer people).
    proposals: int = 1000
    #: Frames per detector forward pass.
    batch_size: int = 4


@dataclass
class AnnotateConfig:
    """``ava-detect annotate``: labelling a user's clip (see ``ava_detect.annotate``)."""

    #: Action-model weights: a file or a published name (``slowfast_r50_8x8_ava``, downloaded on first use).
    weights: str = "slowfast_r50_8x8_ava"
    #: Seconds between keyframes; keyframes are at file times 0, every, 2 * every, ... inside the video.
    every: float = 1.0
    #: Added to a keyframe's whole second of file time to give the CSV's ``second`` (and the key looked
    #: up in a box CSV): 0 for user clips, 900 for prepared AVA videos (t=0 is movie second 900).
    second_offset: int = 0
    #: Actions with at least this probability are written to the CSV / JSON and may be drawn.
    threshold: float = 0.3
    #: At most this many actions (the highest scores above ``threshold``) are drawn per person.
    top_k: int = 3
    #: Action-model batch size (keyframe clips per forward pass).
    batch_size: int = 4
    #: Label map of the action names (empty: ``data.labelmap`` when set, else the packaged 80-class map).
    labelmap: str = ""
    #: Run the action model under bf16 autocast (faster on CPUs with bf16 units and GPUs; scores differ ~1e-2).
    bf16: bool = False
    #: Fold batch norm into the convolutions for inference (scores change by ~1e-5, so they no longer
    #: equal ``ava-detect test``'s bit for bit; a few percent faster on CPU).
    fuse_bn: bool = False
    #: Boxes of consecutive keyframes with at least this IoU can be the same person (Hungarian assignment).
    track_iou: float = 0.3
    #: A person not seen for up to this many keyframes keeps their id when seen again.
    track_max_age: int = 2
    #: h264 quality of the rendered video (x264 CRF: 0 lossless .. 51 worst; 18 looks lossless).
    crf: int = 20
    #: x264 preset (speed / size trade-off: ultrafast, veryfast, fast, medium, ...).
    preset: str = "veryfast"


@dataclass
class Config:
    """The whole configuration (one section per step of the pipeline)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)


def _read_yaml(path: Path, seen: Sequence[Path] = ()) -> Dict[str, Any]:
    """Read one YAML file and its ``_base_`` chain, merged (later wins)."""
    path = path.resolve()
    if path in seen:
        raise AvaDetectError("config includes itself through '_base_'", path)
    if not path.is_file():
        raise AvaDetectError("config file not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise AvaDetectError(f"invalid YAML: {getattr(e, 'problem', e)}", path, mark.line + 1 if mark else None) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AvaDetectError(f"expected a mapping of sections at the top level, found {type(data).__name__}", path)
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    merged: Dict[str, Any] = {}
    for base in bases:
        merged = _deep_merge(merged, _read_yaml(path.parent / base, [*seen, path]))
    return _deep_merge(merged, data)


def _deep_merge(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _merge_checked(schema: DictConfig, data: Union[Dict[str, Any], DictConfig], source: str) -> DictConfig:
    try:
        return OmegaConf.merge(schema, data)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = getattr(e, "msg", str(e)).splitlines()[0]
        if "not in" in msg or "Key" in msg and "not" in msg:
            section = key.split(".")[0]
            node = getattr(Config(), section, None)
            valid = ""
            if dataclasses.is_dataclass(node):
                valid = f" (valid keys of '{section}': {', '.join(f.name for f in dataclasses.fields(node))})"
            elif "." not in key:
                valid = f" (valid sections: {', '.join(f.name for f in dataclasses.fields(Config))})"
            raise AvaDetectError(f"unknown config key '{key}'{valid}", source) from None
        raise AvaDetectError(f"bad value for config key '{key}': {msg}", source) from None


def load_config(path: Optional[PathLike] = None, overrides: Sequence[str] = ()) -> Config:
    """Load the config: defaults, then the YAML file (with its ``_base_`` chain), then overrides.

    Args:
        path: YAML file, or None for the built-in defaults.
        overrides: ``["section.key=value", ...]``; values are parsed as YAML (``train.epochs=3``,
            ``model.roi_aligned=false``, ``data.mean=[0.5,0.5,0.5]``).

    Raises:
        AvaDetectError: unknown key, wrong type, malformed override or YAML, naming key and file.
    """
    cfg = OmegaConf.structured(Config)
    if path is not None:
        cfg = _merge_checked(cfg, _read_yaml(Path(path)), os.fspath(path))
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or "." not in key:
            raise AvaDetectError(f"override {item!r} must look like section.key=value", "command line")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        nested: Dict[str, Any] = {}
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parsed
        cfg = _merge_checked(cfg, nested, "command line")
    return OmegaConf.to_object(cfg)


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """The config as plain nested dicts (for saving and for checkpoints)."""
    return dataclasses.asdict(cfg)


def config_from_dict(data: Dict[str, Any], source: str = "checkpoint") -> Config:
    """Inverse of :func:`config_to_dict`, with the same checks as :func:`load_config`."""
    return OmegaConf.to_object(_merge_checked(OmegaConf.structured(Config), data, source))


def save_config(cfg: Config, path: PathLike) -> None:
    """Write the resolved config as YAML next to a run's outputs (atomically)."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config_to_dict(cfg), f, sort_keys=False)
