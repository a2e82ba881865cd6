"""Person detectors: the CSV, torchvision and detectron2 backends, loading errors, the COCO
person-box evaluation and the ``detect`` command (resumable, with ``--gt``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ava_detect import cli
from ava_detect.config import load_config
from ava_detect.data.ava_files import read_predicted_boxes
from ava_detect.data.video import read_video_frames
from ava_detect.detection import CsvPersonDetector, build_detector
from ava_detect.detection.evaluation import evaluate_person_boxes
from ava_detect.detection.keyframes import keyframe_seconds, parse_second_range
from ava_detect.errors import AvaDetectError
from common import shared_path

SMALL = ["detector.min_size=128", "detector.max_size=192", "detector.proposals=30"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, num_videos=2, seconds=6, size=(160, 120))
    return root


# ---- CSV backend -------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_backend_predicted_boxes_in_pixels(tmp_path):
    csv = _write(tmp_path / "boxes.csv", "vid,0902,0.100,0.200,0.500,0.900,,0.95\n"
                                         "vid,0902,0.600,0.100,0.700,0.300,,0.50\n"
                                         "vid,0903,0.000,0.000,1.000,1.000,,0.99\n")
    det = CsvPersonDetector(path=csv, score_threshold=0.8)
    frames = torch.zeros((2, 240, 320, 3), dtype=torch.uint8)
    (b1, s1), (b2, s2) = det.detect(frames, keys=[("vid", 902), ("vid", 904)])
    assert torch.allclose(b1, torch.tensor([[32.0, 48.0, 160.0, 216.0]]), atol=1e-4)
    assert torch.allclose(s1, torch.tensor([0.95]))
    assert b2.shape == (0, 4) and s2.shape == (0,)
    with pytest.raises(ValueError):
        det.detect(frames)  # keys are required


def test_csv_backend_reads_ground_truth_boxes_once_per_box(tmp_path):
    csv = _write(tmp_path / "gt.csv", "vid,0902,0.100,0.200,0.500,0.900,12,0\n"
                                      "vid,0902,0.100,0.200,0.500,0.900,14,0\n"
                                      "vid,0902,0.600,0.100,0.700,0.300,11,1\n")
    det = CsvPersonDetector(path=csv, score_threshold=0.8)
    assert det.format == "ground_truth"
    ((boxes, scores),) = det.detect([np.zeros((100, 200, 3), np.uint8)], keys=[("vid", 902)])
    assert boxes.shape == (2, 4) and torch.equal(scores, torch.ones(2))
    assert torch.allclose(boxes[1], torch.tensor([120.0, 10.0, 140.0, 30.0]), atol=1e-4)


def test_csv_backend_bad_rows_name_file_and_line(tmp_path):
    csv = _write(tmp_path / "bad.csv", "vid,0902,0.1,0.2,0.5,0.9,,0.9\nvid,0903,0.1,oops,0.5,0.9,,0.9\n")
    with pytest.raises(AvaDetectError) as e:
        CsvPersonDetector(path=csv)
    assert e.value.path == str(csv) and e.value.line == 2
    with pytest.raises(AvaDetectError, match="not found"):
        CsvPersonDetector(path=tmp_path / "missing.csv")


# ---- torchvision backend -----------------------------------------------------------------


def test_torchvision_backend_loads_local_file_and_detects_people(detector_weights):
    cfg = load_config(None, ["detector.backend=torchvision", f"detector.weights={detector_weights}",
                             "detector.score_threshold=0.5", "detector.batch_size=2", *SMALL])
    det = build_detector(cfg)
    video = shared_path("videos/arm_wrestling_340x256_28fps.mp4")
    frames = read_video_frames(video, [0, 30, 60])
    out = det.detect(frames)
    assert len(out) == 3
    for boxes, scores in out:
        assert boxes.dtype == torch.float32 and boxes.shape[1] == 4 and boxes.shape[0] == scores.shape[0]
        assert len(scores) > 0 and bool((scores >= 0.5).all())
        assert bool((scores[:-1] >= scores[1:]).all())  # sorted by score
        assert bool((boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 340).all() and (boxes[:, 3] <= 256).all())
        assert bool((boxes[:, 2] >= boxes[:, 0]).all())
    # a list of frames of different sizes works the same way, one result per frame
    mixed = det.detect([frames[0], frames[1, :128, :200]])
    assert len(mixed) == 2 and bool((mixed[1][0][:, 2] <= 200).all())


def test_wrong_detector_weights_are_one_clear_error(tmp_path, detector_weights):
    garbage = _write(tmp_path / "garbage.pth", "this is not a checkpoint")
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    for path, expected in ((garbage, "not a PyTorch weights file"), (other, "wrong person detector weights"),
                           (tmp_path / "missing.pth", "not found")):
        cfg = load_config(None, [f"detector.weights={path}", *SMALL])
        with pytest.raises(AvaDetectError) as e:
            build_detector(cfg)
        assert expected in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_offline_default_weights_message(tmp_path, monkeypatch):
    from ava_detect.detection import torchvision_backend

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    url = "http://127.0.0.1:9/fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth"  # nothing listens there
    monkeypatch.setattr(torchvision_backend, "default_weights_url", lambda model=None: url)
    with pytest.raises(AvaDetectError) as e:
        build_detector(load_config(None, SMALL), progress=False)
    msg = str(e.value)
    assert url in msg and "--detector-weights" in msg and "\n" not in msg


def test_default_weights_url_is_torchvisions():
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_V2_Weights

    from ava_detect.detection.torchvision_backend import default_weights_url

    assert default_weights_url() == FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url


def test_detectron2_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2", None)  # import detectron2 -> ImportError
    with pytest.raises(AvaDetectError, match="detectron2 is not installed"):
        build_detector(load_config(None, ["detector.backend=detectron2"]))


def test_unknown_backend_and_missing_csv():
    with pytest.raises(AvaDetectError, match="unknown person detector backend"):
        build_detector(load_config(None, ["detector.backend=yolo"]))
    with pytest.raises(AvaDetectError, match="box CSV"):
        build_detector(load_config(None, ["detector.backend=csv"]))


# ---- keyframes and evaluation ------------------------------------------------------------


def test_keyframe_seconds():
    assert keyframe_seconds(duration=4.0, second_offset=900, every=1) == [900, 901, 902, 903]
    assert keyframe_seconds(duration=4.004, second_offset=0, every=2) == [0, 2, 4]
    assert keyframe_seconds(duration=10.0, second_offset=900, seconds=(902, 915)) == list(range(902, 910))
    assert keyframe_seconds(duration=4.004, second_offset=0, every=2.0) == [0, 2, 4]  # seconds, as a float
    for bad in (0.5, 1.5, 0):
        with pytest.raises(AvaDetectError, match="whole number of seconds"):
            keyframe_seconds(duration=4.0, second_offset=0, every=bad)
    assert parse_second_range("902-1798") == (902, 1798)
    with pytest.raises(AvaDetectError):
        parse_second_range("1798-902")


def test_person_box_evaluation_known_values():
    gt = pd.DataFrame({"video_id": ["v"] * 4, "second": [902, 902, 902, 903],
                       "x1": [0.1, 0.1, 0.5, 0.2], "y1": [0.1, 0.1, 0.5, 0.2],
                       "x2": [0.3, 0.3, 0.7, 0.4], "y2": [0.5, 0.5, 0.9, 0.6]})  # 3 distinct boxes
    det = pd.DataFrame({"video_id": ["v"] * 3, "second": [902, 902, 903],
                        "x1": [0.11, 0.8, 0.2], "y1": [0.1, 0.8, 0.21],
                        "x2": [0.3, 0.9, 0.4], "y2": [0.5, 0.9, 0.6], "score": [0.9, 0.95, 0.8]})
    report = evaluate_person_boxes(ground_truth=gt, detections=det)
    # ranked: FP (0.95), TP (0.9), TP (0.8) -> interpolated precision 2/3 up to recall 2/3 (67 of 101 points)
    assert report.ap50 == pytest.approx(67 * (2 / 3) / 101, abs=1e-6)
    assert report.recall50 == pytest.approx(2 / 3)
    assert (report.keys, report.gt_boxes, report.detections) == (2, 3, 3)
    rows = {round(r.threshold, 2): r for r in report.table}
    assert rows[0.9].detections == 2 and rows[0.9].true_positives == 1 and rows[0.9].recall == pytest.approx(1 / 3)
    assert rows[0.8].precision == pytest.approx(2 / 3)
    # a detected keyframe with no detections still counts its ground truth as missed
    report2 = evaluate_person_boxes(ground_truth=gt, detections=det.iloc[:1],
                                    detected_keys=[("v", 902), ("v", 903)])
    assert report2.recall50 == pytest.approx(1 / 3)


# ---- the detect command ------------------------------------------------------------------


def test_detect_command_with_ground_truth_boxes_gives_full_ap(synthetic, tmp_path, capsys):
    gt = synthetic / "annotations" / "val.csv"
    out = tmp_path / "boxes.csv"
    rc = cli.main(["detect", "--videos", str(synthetic / "videos"), "--out", str(out), "--seconds", "902-904",
                   "--detector", "csv", "--boxes", str(gt), "--gt", str(gt), "--device", "cpu"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "AP@0.5 100.0" in text and "recall@0.5 100.0" in text
    boxes = read_predicted_boxes(out)
    assert set(boxes["second"]) == {902, 903, 904} and (boxes["score"] == 1.0).all()
    assert not (tmp_path / ".boxes.csv.parts").exists()


def test_detect_command_torchvision_and_resume(synthetic, tmp_path, detector_weights, capsys, monkeypatch):
    from ava_detect.detection import keyframes

    out = tmp_path / "boxes.csv"
    videos = sorted((synthetic / "videos").glob("*.mp4"))
    args = ["detect", *SMALL, "--videos", *map(str, videos), "--out", str(out), "--every", "2",
            "--detector-weights", str(detector_weights), "--box-threshold", "0.5", "--device", "cpu"]
    real = keyframes.detect_keyframes
    calls = []

    def interrupted(path, **kw):
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, **kw)

    monkeypatch.setattr(keyframes, "detect_keyframes", interrupted)
    assert cli.main(args) == 130
    assert not out.exists()  # no partial output
    parts = tmp_path / ".boxes.csv.parts"
    assert (parts / f"{videos[0].stem}.json").is_file()

    monkeypatch.setattr(keyframes, "detect_keyframes", real)
    capsys.readouterr()
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "resuming: 1 of 2 videos already done" in text
    boxes = read_predicted_boxes(out)
    assert set(boxes["video_id"].astype(str)) == {v.stem for v in videos}
    assert set(boxes["second"]) == {900, 902, 904}  # file times 0, 2, 4 of 6-second videos
    assert (boxes["score"] >= 0.5).all() and not parts.exists()
    meta_free = out.read_text().splitlines()
    assert all(len(line.split(",")) == 8 and line.split(",")[6] == "" for line in meta_free)


def test_detect_command_refuses_to_overwrite_a_video(synthetic, capsys):
    video = next((synthetic / "videos").glob("*.mp4"))
    before = video.read_bytes()
    rc = cli.main(["detect", "--videos", str(video), "--out", str(video), "--detector", "csv",
                   "--boxes", str(synthetic / "annotations" / "val.csv"), "--device", "cpu"])
    assert rc == 2 and "refusing to overwrite" in capsys.readouterr().err
    assert video.read_bytes() == before


def test_detect_videos_library_call(synthetic, tmp_path):
    """The library function behind ``detect``: typed arguments in, a result and progress reports out."""
    from ava_detect.detection import DetectProgress, detect_videos

    gt = synthetic / "annotations" / "val.csv"
    seen = []

    class Record(DetectProgress):
        def start(self, **facts):
            seen.append(facts)

        def keyframe(self, video):
            seen.append(video.name)

    cfg = load_config(None, ["detector.backend=csv", f"detector.boxes_csv={gt}"])
    result = detect_videos([synthetic / "videos"], tmp_path / "b.csv", detector=cfg.detector, seconds=(902, 904),
                           ground_truth=gt, progress=Record())
    assert (result.videos, result.resumed, result.keyframes) == (2, 0, 6)
    assert result.boxes == len(read_predicted_boxes(tmp_path / "b.csv")) > 0
    assert result.report.ap50 == pytest.approx(1.0) and result.report.recall50 == pytest.approx(1.0)
    assert seen[0]["videos"] == 2 and seen[0]["keyframes"] == 6 and "val.csv" in seen[0]["detector"]
    assert len(seen) == 7
