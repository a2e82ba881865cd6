"""The CPU speed options of ``annotate`` (issue: deploy and speed): the lighter torchvision COCO person
detectors and the detector's input size, the backbone's folded batch norm, the precision policy
(``auto``: bf16 only on CPUs with bf16 matrix units), and ``--fast``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ava_detect import cli
from ava_detect.config import load_config
from ava_detect.detection import build_detector
from ava_detect.detection.coco_models import COCO_DETECTORS, DEFAULT_COCO_DETECTOR
from ava_detect.errors import AvaDetectError
from ava_detect.precision import use_bf16

SMALL = ["detector.min_size=96", "detector.max_size=160", "detector.proposals=30"]


def _person_weights(folder: Path, model: str) -> Path:
    """Random weights of ``model`` whose classifier calls every proposal "person"."""
    import torchvision.models.detection as detection

    torch.manual_seed(0)
    net = getattr(detection, COCO_DETECTORS[model].builder)(weights=None, weights_backbone=None, num_classes=91)
    state = net.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"].zero_()
    state["roi_heads.box_predictor.cls_score.bias"][1] = 12.0
    path = folder / f"{model}.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def mobilenet_weights(tmp_path_factory) -> Path:
    return _person_weights(tmp_path_factory.mktemp("mobilenet"), "fasterrcnn_mobilenet_v3_large_fpn")


def _frames(n: int = 2):
    g = torch.Generator().manual_seed(3)
    return [torch.randint(0, 255, (120, 160, 3), dtype=torch.uint8, generator=g) for _ in range(n)]


def test_table_matches_torchvisions_published_weights():
    import torchvision.models.detection as detection

    assert DEFAULT_COCO_DETECTOR == "fasterrcnn_resnet50_fpn_v2"
    for name, entry in COCO_DETECTORS.items():
        assert callable(getattr(detection, entry.builder)) and entry.builder == name
        weights = getattr(detection, entry.weights_enum).DEFAULT
        assert weights.meta["_metrics"]["COCO-val2017"]["box_map"] == entry.box_ap
        assert weights.meta["_ops"] == pytest.approx(entry.gflops)
        from ava_detect.detection.torchvision_backend import default_weights_url

        assert default_weights_url(name) == weights.url


def test_help_states_each_models_published_box_ap():
    for command in ("annotate", "detect"):
        text = _help(command)
        for name, entry in COCO_DETECTORS.items():
            assert name in text and f"{entry.box_ap:g} COCO box AP" in text


def _help(command: str) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main([command, "--help"])
    return " ".join(out.getvalue().split())


def test_lighter_detector_from_a_local_file_finds_people(mobilenet_weights):
    cfg = load_config(None, ["detector.model=fasterrcnn_mobilenet_v3_large_fpn", f"detector.weights={mobilenet_weights}",
                             "detector.score_threshold=0.5", *SMALL])
    det = build_detector(cfg)
    assert "fasterrcnn_mobilenet_v3_large_fpn at 96 px" in det.describe()
    out = det.detect(_frames())
    assert len(out) == 2
    for boxes, scores in out:
        assert boxes.dtype == torch.float32 and len(scores) > 0 and bool((scores >= 0.5).all())
        assert bool((boxes[:, 2] <= 160).all() and (boxes[:, 3] <= 120).all())


def test_weights_of_another_detector_name_the_model(detector_weights):
    cfg = load_config(None, ["detector.model=fasterrcnn_mobilenet_v3_large_fpn", f"detector.weights={detector_weights}",
                             *SMALL])
    with pytest.raises(AvaDetectError) as e:
        build_detector(cfg)
    msg = str(e.value)
    assert "fasterrcnn_mobilenet_v3_large_fpn state dict" in msg and str(detector_weights) in msg and "\n" not in msg


def test_unknown_detector_model_is_a_config_error():
    with pytest.raises(AvaDetectError, match="detector.model.*expected one of fasterrcnn_resnet50_fpn_v2"):
        load_config(None, ["detector.model=yolov8"])


def test_folded_backbone_gives_the_same_boxes(mobilenet_weights):
    from ava_detect.detection.torchvision_backend import TorchvisionPersonDetector, build_faster_rcnn

    kwargs = dict(model="fasterrcnn_mobilenet_v3_large_fpn", weights=str(mobilenet_weights), min_size=96,
                  max_size=160, proposals=30, score_threshold=0.5)
    folded = TorchvisionPersonDetector(**kwargs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.model.backbone.modules())
    plain_net = build_faster_rcnn(**{**kwargs, "score_threshold": 0.5 - 1e-6})
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain_net.backbone.modules())
    plain = TorchvisionPersonDetector(score_threshold=0.5, net=plain_net)
    frames = _frames()
    for (b1, s1), (b2, s2) in zip(folded.detect(frames), plain.detect(frames)):
        assert b1.shape == b2.shape and len(b1) > 0
        assert torch.allclose(b1, b2, atol=1e-2) and torch.allclose(s1, s2, atol=1e-4)


def test_precision_auto_is_bf16_only_with_bf16_units(monkeypatch):
    from ava_detect import precision

    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: False)
    assert not use_bf16("auto", "cpu") and use_bf16("bf16", "cpu") and not use_bf16("fp32", "cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: True)
    assert use_bf16("auto", "cpu") and not use_bf16("fp32", "cpu") and not use_bf16("auto", "meta")
    with pytest.raises(ValueError):
        use_bf16("fp16", "cpu")


def test_detector_in_bf16_returns_float32_boxes_near_fp32(mobilenet_weights, monkeypatch):
    from ava_detect import precision

    base = ["detector.model=fasterrcnn_mobilenet_v3_large_fpn", f"detector.weights={mobilenet_weights}",
            "detector.score_threshold=0.5", "detector.min_size=64", "detector.max_size=96", "detector.proposals=10"]
    fp32 = build_detector(load_config(None, [*base, "detector.precision=fp32"]))
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: True)
    bf16 = build_detector(load_config(None, base))  # auto -> bf16 on a CPU with bf16 units
    assert bf16.bf16 and not fp32.bf16 and "bf16" in bf16.describe()
    frames = _frames(1)
    (b32, s32), = fp32.detect(frames)
    (b16, s16), = bf16.detect(frames)
    assert b16.dtype == torch.float32 and s16.dtype == torch.float32 and len(b16) > 0
    assert float((b16[0] - b32[0]).abs().max()) < 8.0  # the top box, within a few pixels of a 96-px frame


def test_action_model_precision_policy(tmp_path, monkeypatch):
    from ava_detect import precision
    from ava_detect.annotate.annotator import build_predictor
    from ava_detect.config import packaged_config
    from ava_detect.model import build_model, save_checkpoint

    cfg = load_config(packaged_config("tiny.yaml"))
    weights = tmp_path / "tiny.pth"
    save_checkpoint(weights, model=build_model(cfg))
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: False)
    plain = build_predictor(cfg, weights=str(weights))
    assert not plain.bf16 and not plain.model.fused and plain.describe() == "fp32 on cpu"
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: True)
    fast = build_predictor(cfg, weights=str(weights))
    assert fast.bf16 and fast.model.fused and fast.model.channels_last
    assert fast.describe() == "bf16 autocast, batch norm folded, channels-last on cpu"
    forced = build_predictor(load_config(packaged_config("tiny.yaml"), ["annotate.precision=fp32"]), weights=str(weights))
    assert not forced.bf16 and not forced.model.fused
    folded = build_predictor(load_config(packaged_config("tiny.yaml"), ["annotate.precision=fp32", "annotate.fuse_bn=true"]),
                             weights=str(weights))
    assert not folded.bf16 and folded.model.fused and folded.model.channels_last


def test_fast_flag_overrides_and_explicit_flags_win():
    from ava_detect.annotate.fast import FAST_CPU_OVERRIDES
    from ava_detect.commands.annotate import _overrides

    parser = cli.build_parser()
    args = parser.parse_args(["annotate", "v.mp4", "--out", "o.mp4", "--fast"])
    cfg = load_config(None, _overrides(args))
    assert cfg.detector.model == "fasterrcnn_mobilenet_v3_large_320_fpn" and cfg.annotate.fuse_bn
    assert cfg.detector.min_size == 320 and cfg.detector.proposals == 150 and cfg.detector.batch_size == 1
    assert _overrides(args)[:len(FAST_CPU_OVERRIDES)] == FAST_CPU_OVERRIDES
    args = parser.parse_args(["annotate", "v.mp4", "detector.proposals=100", "--out", "o.mp4", "--fast",
                              "--detector-size", "320", "--detector-model", "fasterrcnn_resnet50_fpn", "--precision",
                              "fp32"])
    cfg = load_config(None, _overrides(args))
    assert (cfg.detector.model, cfg.detector.min_size, cfg.detector.max_size, cfg.detector.proposals) == (
        "fasterrcnn_resnet50_fpn", 320, 534, 100)
    assert cfg.annotate.precision == cfg.detector.precision == "fp32"
    args = parser.parse_args(["annotate", "v.mp4", "--out", "o.mp4", "--bf16"])
    assert load_config(None, _overrides(args)).annotate.precision == "bf16"
