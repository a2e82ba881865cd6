"""``annotate`` on live streams, fed by real local streams (:mod:`live_streams`: the synthetic video as
MPEG-TS sent at real-time pace over TCP, UDP, a FIFO, standard input or a growing file).

Each stream test takes a few seconds of wall-clock time, since the streams play in real time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pandas as pd
import pytest
import torch

from ava_detect import cli
from ava_detect.annotate import Annotator, LiveOptions, StreamStalled, annotate_stream, load_annotate_config
from ava_detect.annotate.live import LatencyHistogram, half_clip_seconds, stream_id
from ava_detect.annotate.live_view import LiveView
from ava_detect.annotate.options import AnnotateOptions
from ava_detect.config import load_config
from ava_detect.data.live_source import LiveSource, display_name, source_kind
from ava_detect.errors import AvaDetectError
from ava_detect.model import build_model, save_checkpoint
from common import cli_error, command, subprocess_env
from live_streams import StreamFeeder, encode_ts

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
LIVE_ONLY = ("arrival", "latency")


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    """A 6-second synthetic video as MPEG-TS (the same encoded frames for the file and the streams), the
    tiny model (80 classes, random weights) and the video's ground-truth boxes as the person detector."""
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("live")
    make_synthetic_dataset(root / "syn", num_videos=2, seconds=6, size=(160, 120))
    video = sorted((root / "syn" / "videos").glob("*.mp4"))[0]
    gt = root / "syn" / "annotations"
    split = "val" if video.stem in (gt / "val.csv").read_text() else "train"
    torch.manual_seed(0)
    weights = root / "tiny80.pth"
    save_checkpoint(weights, model=build_model(load_config(TINY)))
    ts = encode_ts(video, root / f"{video.stem}.ts", fps=30, gop=15)
    return SimpleNamespace(root=root, ts=ts, stem=video.stem, boxes=gt / f"{split}.csv", weights=weights)


def _argv(feed, source, out: Path, *extra) -> list:
    out.mkdir(parents=True, exist_ok=True)
    return ["annotate", str(source), "--config", str(TINY), "--weights", str(feed.weights), "--detector", "csv",
            "--boxes", str(feed.boxes), "--second-offset", "900", "--video-id", feed.stem, "--batch-size", "1",
            "--out", str(out / "out.mp4"), "--jsonl", str(out / "out.jsonl"), "--csv", str(out / "out.csv"),
            "--device", "cpu", *extra]


def _lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _keyframes(lines: list, strip: bool = True) -> list:
    out = [dict(x) for x in lines if x["event"] == "keyframe"]
    if strip:
        for x in out:
            for key in LIVE_ONLY:
                x.pop(key, None)
    return out


def _decoded_frames(path: Path) -> list:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _annotator(feed, *overrides) -> Annotator:
    cfg = load_annotate_config(TINY, [f"annotate.weights={feed.weights}", "detector.backend=csv",
                                      f"detector.boxes_csv={feed.boxes}", "annotate.second_offset=900",
                                      "annotate.batch_size=1", *overrides])
    return Annotator.from_config(cfg, device="cpu")


# ---- what a live source is -------------------------------------------------------------------------


def test_source_kinds_and_stream_ids(tmp_path):
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    regular = tmp_path / "clip.ts"
    regular.write_bytes(b"x")
    assert [source_kind(s) for s in ("rtsp://cam/1", "HTTP://h/x.m3u8", "udp://127.0.0.1:5000", "tcp://h:1",
                                     "srt://h:1", "-", str(fifo), "/dev/null", str(regular), "missing.mp4")] == [
        "url", "url", "url", "url", "url", "stdin", "fifo", "device", "file", "file"]
    assert source_kind(str(regular), follow=True) == "growing"
    assert display_name("rtsp://admin:secret@cam.local:554/s") == "rtsp://admin:***@cam.local:554/s"
    assert display_name("rtsp://cam.local/s") == "rtsp://cam.local/s" and display_name("-") == "-"
    assert [stream_id(s) for s in ("rtsp://user:pw@cam.local:554/s", "-", str(fifo), "udp://127.0.0.1:5000")] == [
        "cam.local", "stdin", "cam", "127.0.0.1"]


def test_latency_histogram_quantiles():
    h = LatencyHistogram()
    assert h.quantile(0.5) == 0.0
    for v in np.linspace(0.0, 1.0, 101):
        h.add(float(v))
    assert h.quantile(0.5) == pytest.approx(0.5, abs=0.011) and h.quantile(0.95) == pytest.approx(0.95, abs=0.011)
    assert h.max == 1.0 and h.n == 101
    h.add(1e6)  # beyond the last bin: counted there, max kept
    assert h.quantile(1.0) == 1e6 and h.counts.sum() == 102


def test_budget_shorter_than_half_a_clip_is_refused():
    options = AnnotateOptions(num_frames=32, sampling_rate=2)
    assert half_clip_seconds(options) == pytest.approx(32 * 2 / 60)
    with pytest.raises(AvaDetectError, match="--max-latency 1 s is too short.*at least 1.27 s"):
        LiveOptions(max_latency=1.0).check(options)
    LiveOptions(max_latency=1.3).check(options)


def test_live_command_refuses_before_loading_anything(feed, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "out.jsonl").write_text("yesterday's results\n")
    line = cli_error(capsys, *_argv(feed, "udp://127.0.0.1:9", taken))
    assert "out.jsonl" in line and "already exists" in line
    assert (taken / "out.jsonl").read_text() == "yesterday's results\n" and not (taken / "out.mp4").exists()
    line = cli_error(capsys, *_argv(feed, "udp://127.0.0.1:9", tmp_path / "a", "--json", str(tmp_path / "r.json")))
    assert "--jsonl" in line
    line = cli_error(capsys, *_argv(feed, "udp://127.0.0.1:9", tmp_path / "b", "--max-latency", "0.3"))
    assert "--max-latency 0.3 s is too short" in line
    line = cli_error(capsys, *_argv(feed, feed.ts, tmp_path / "c", "--serve", "0"))
    assert "--serve" in line and "--live" in line
    line = cli_error(capsys, *_argv(feed, "udp://127.0.0.1:9", tmp_path / "d", "--serve", "0.0.0.0:0"))
    assert "--serve-public" in line


def test_a_source_that_sends_nothing_is_one_error_and_no_output(feed, tmp_path, capsys):
    fifo = tmp_path / "quiet.fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    line = cli_error(capsys, *_argv(feed, fifo, tmp_path / "o", "--stall-timeout", "1"))
    assert "no frame arrived within 1 s" in line and str(fifo) in line
    assert time.monotonic() - start < 20
    assert not any((tmp_path / "o").iterdir())


# ---- streams ---------------------------------------------------------------------------------------


def test_tcp_stream_gives_the_results_of_the_file(feed, tmp_path):
    """The same encoded frames, from the file and from a TCP stream at real-time pace: the same
    keyframes, boxes, ids, scores and drawn frames, when the models keep up."""
    assert cli.main([*_argv(feed, feed.ts, tmp_path / "file"), "--json", str(tmp_path / "file" / "out.json")]) == 0
    # a file's JSON Lines hold the JSON's keyframes, one per line
    document = json.loads((tmp_path / "file" / "out.json").read_text())
    file_lines = _lines(tmp_path / "file" / "out.jsonl")
    assert [{"event": "keyframe", **k} for k in document["keyframes"]] == file_lines[1:-1]
    assert file_lines[0] == {"event": "start", **{k: v for k, v in document.items() if k != "keyframes"}}
    assert file_lines[-1] == {"event": "end", "frames": 180, "keyframes": 6, "boxes": 6, "people": 4,
                              "video_seconds": pytest.approx(6.0, abs=0.04)}
    with StreamFeeder(feed.ts, "tcp") as feeder:
        start = time.monotonic()
        assert cli.main(_argv(feed, feeder.url, tmp_path / "live", "--max-latency", "4")) == 0
        took = time.monotonic() - start
    assert took > 4.5  # it ran at the stream's pace (6 s), it did not read a file
    live_lines = _lines(tmp_path / "live" / "out.jsonl")
    assert len(_keyframes(file_lines)) == 6
    assert _keyframes(live_lines) == _keyframes(file_lines)
    assert any(p["actions"] for k in _keyframes(file_lines) for p in k["people"])
    assert (tmp_path / "live" / "out.csv").read_text() == (tmp_path / "file" / "out.csv").read_text()
    end = live_lines[-1]
    assert end["event"] == "end" and end["end"] == "end of stream" and end["skipped"] == {}
    assert end["over_budget"] == 0 and end["latency_max"] <= 4.0
    assert all(0 < k["latency"] <= 4.0 for k in _keyframes(live_lines, strip=False))
    file_frames, live_frames = _decoded_frames(tmp_path / "file" / "out.mp4"), _decoded_frames(tmp_path / "live" / "out.mp4")
    assert len(live_frames) == len(file_frames) == 180 == end["frames"]
    # the same boxes and labels drawn on the same pictures: the live video is encoded for low latency
    # (x264's zero-latency tuning), so pixels differ by coding noise, but no pixel of a box or label
    # line is elsewhere (a frame shifted by one differs by more than 60 in about 1% of its pixels)
    far = [(np.abs(a.astype(np.int16) - b).max(axis=2) > 60).mean() for a, b in zip(file_frames, live_frames)]
    assert max(far) < 1e-3
    assert b"moof" in (tmp_path / "live" / "out.mp4").read_bytes()  # fragmented MP4


class _SlowPredictor:
    """The action model, taking ``seconds`` longer per keyframe (a model the CPU cannot keep up with)."""

    def __init__(self, predictor, seconds: float):
        self.predictor, self.seconds = predictor, seconds
        self.num_classes = predictor.num_classes

    def predict(self, clips, boxes):
        time.sleep(self.seconds)
        return self.predictor.predict(clips, boxes)


def test_slow_model_on_udp_skips_keyframes_and_keeps_the_budget(feed, tmp_path):
    """Keyframes every 0.5 s, a model that needs 1.2 s each: about one in three is scored (the newest
    waiting one), the others are skipped, none is delayed; every frame is out within the budget."""
    annotator = _annotator(feed, "annotate.every=0.5")
    slow = _SlowPredictor(annotator.predictor, 1.2)
    budget = 2.5
    with StreamFeeder(feed.ts, "udp") as feeder, pytest.raises(StreamStalled) as ended:
        annotate_stream(feeder.url, out_video=tmp_path / "o.mp4", out_jsonl=tmp_path / "o.jsonl",
                        detector=annotator.detector, predictor=slow, class_ids=annotator.class_ids,
                        names=annotator.names, options=annotator.options, video_id=feed.stem,
                        live=LiveOptions(max_latency=budget, stall_timeout=1.5))
    stats = ended.value.stats  # UDP has no end of stream: it ends by going quiet
    lines = _lines(tmp_path / "o.jsonl")
    keyframes = _keyframes(lines, strip=False)
    scored = [k for k in keyframes if "skipped" not in k]
    skipped = [k for k in keyframes if "skipped" in k]
    assert len(keyframes) >= 10 and [k["time"] for k in keyframes] == sorted(k["time"] for k in keyframes)
    assert 2 <= len(scored) <= len(keyframes) // 2 and len(skipped) >= len(keyframes) // 2
    assert {k["skipped"] for k in skipped} <= {"behind", "late"} and "people" not in skipped[0]
    assert all(k["latency"] <= budget for k in scored)  # skipped, not delayed
    assert stats.keyframes == len(scored) and sum(stats.skipped.values()) == len(skipped)
    assert stats.frame_latency.max <= budget and stats.over_budget == 0
    assert stats.frames >= 170  # UDP on the loopback loses little or nothing
    # frames wait for at most the budget: the buffer holds about a clip plus the budget, not the video
    assert stats.max_buffered_frames <= 30 * (budget + 2 * half_clip_seconds(annotator.options)) + 10
    assert lines[-1]["event"] == "end" and lines[-1]["skipped"] == stats.skipped


def _wait_for_lines(path: Path, keyframes: int, proc: subprocess.Popen, timeout: float = 60.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"annotate ended early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
        if path.exists():
            lines = path.read_text().splitlines()
            if sum('"keyframe"' in line for line in lines) >= keyframes:
                return lines
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no {keyframes} keyframes in {timeout} s: {proc.communicate()[1][-2000:]}")


def _playable_copy(path: Path, tmp: Path, proc: subprocess.Popen, timeout: float = 20.0) -> int:
    """Frames a player decodes from a copy of ``path`` taken while ``proc`` still writes it (polled until the
    first fragment is there: one key frame a second, written as frames reach their deadlines)."""
    deadline = time.monotonic() + timeout
    frames = 0
    while not frames and time.monotonic() < deadline and proc.poll() is None:
        copy = tmp / f"copy_{time.monotonic_ns()}.mp4"
        shutil.copyfile(path, copy)
        try:
            frames = len(_decoded_frames(copy))
        except av.FFmpegError:  # not a whole fragment yet
            frames = 0
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before its growing video was read"
    return frames


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_signal_mid_stream_finishes_every_output(feed, tmp_path, how):
    """A FIFO stream that never ends (SIGINT) / standard input (SIGTERM): the video plays while it grows,
    and the signal leaves a playable video and complete JSON Lines and CSV, exit status 0."""
    out = tmp_path / "o"
    if how == "SIGINT":
        fifo = tmp_path / f"{feed.stem}.fifo"
        feeder = StreamFeeder(feed.ts, f"fifo:{fifo}", loop=True).start()
        proc = subprocess.Popen(command(*_argv(feed, fifo, out)), env=subprocess_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    else:
        proc = subprocess.Popen(command(*_argv(feed, "-", out)), env=subprocess_env(), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        feeder = StreamFeeder(feed.ts, "file", out=proc.stdin, loop=True).start()
    try:
        _wait_for_lines(out / "out.jsonl", 3, proc)
        assert _playable_copy(out / "out.mp4", tmp_path, proc) > 0  # playable while it grows
        proc.send_signal(getattr(signal, how))
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        feeder.stop()
    assert proc.returncode == 0, stderr[-3000:]
    lines = _lines(out / "out.jsonl")
    assert lines[0]["event"] == "start" and lines[-1]["event"] == "end" and lines[-1]["end"] == "stopped"
    assert len(_keyframes(lines)) >= 3
    assert len(_decoded_frames(out / "out.mp4")) == lines[-1]["frames"] > 60
    if (out / "out.csv").stat().st_size:
        assert len(pd.read_csv(out / "out.csv", header=None).columns) == 9


def test_killed_process_leaves_a_playable_video_and_whole_lines(feed, tmp_path):
    out = tmp_path / "o"
    fifo = tmp_path / f"{feed.stem}.fifo"
    feeder = StreamFeeder(feed.ts, f"fifo:{fifo}", loop=True).start()
    proc = subprocess.Popen(command(*_argv(feed, fifo, out)), env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_lines(out / "out.jsonl", 3, proc)
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        proc.kill()
        feeder.stop()
    lines = _lines(out / "out.jsonl")  # every line is whole JSON
    assert lines[0]["event"] == "start" and len(_keyframes(lines)) >= 3
    assert len(_decoded_frames(out / "out.mp4")) >= 30


def test_stalled_stream_ends_within_the_timeout(feed, tmp_path, capsys):
    with StreamFeeder(feed.ts, "tcp", stall_after=2.0, stall_for=None) as feeder:
        line = cli_error(capsys, *_argv(feed, feeder.url, tmp_path / "o", "--stall-timeout", "1.5"))
    assert "stalled" in line and "--reconnect" in line and feeder.url in line
    lines = _lines(tmp_path / "o" / "out.jsonl")
    end = lines[-1]
    assert end["event"] == "end" and end["end"] == "stalled"
    assert 1.5 <= end["wall_seconds"] <= 2.0 + 1.5 + 1.0  # the frames of 2 s, then at most the timeout and a bit
    assert len(_decoded_frames(tmp_path / "o" / "out.mp4")) == end["frames"] >= 50


def test_growing_file_with_live(feed, tmp_path, capsys):
    growing = tmp_path / f"{feed.stem}.ts"
    feeder = StreamFeeder(feed.ts, "file", out=open(growing, "wb")).start()
    try:
        line = cli_error(capsys, *_argv(feed, growing, tmp_path / "o", "--live", "--stall-timeout", "1",
                                        "--max-height", "60"))
    finally:
        feeder.stop()
    assert "stalled" in line  # the file stopped growing
    lines = _lines(tmp_path / "o" / "out.jsonl")
    assert lines[-1]["frames"] == 180 and lines[-1]["keyframes"] >= 5
    # pictures scaled down on reading: the models, the drawing and the video at 80x60
    assert (lines[0]["width"], lines[0]["height"]) == (80, 60)
    assert {f.shape for f in _decoded_frames(tmp_path / "o" / "out.mp4")} == {(60, 80, 3)}


def test_max_height_scales_a_file_on_reading(feed, tmp_path):
    assert cli.main(_argv(feed, feed.ts, tmp_path, "--max-height", "61")) == 0
    start = _lines(tmp_path / "out.jsonl")[0]
    assert (start["width"], start["height"]) == (80, 60)  # even sides, the aspect ratio kept
    frames = _decoded_frames(tmp_path / "out.mp4")
    assert len(frames) == 180 and frames[0].shape == (60, 80, 3)
    assert AnnotateOptions(num_frames=8, sampling_rate=8, max_height=1080).working_size(3840, 2160) == (1920, 1080)
    assert AnnotateOptions(num_frames=8, sampling_rate=8, max_height=1080).working_size(640, 480) == (640, 480)


def test_reconnect_after_the_writer_goes_away(feed, tmp_path, caplog):
    """A FIFO whose writer closes and another comes: with reconnect, both streams' frames arrive, on one
    time line, and the attempt is logged."""
    fifo = tmp_path / "cam.fifo"
    source = LiveSource(str(fifo) if fifo.exists() else (os.mkfifo(fifo) or str(fifo)), stall_timeout=5.0,
                        reconnect=True)
    first = StreamFeeder(feed.ts, f"fifo:{fifo}", speed=3.0).start()
    caplog.set_level(logging.WARNING, logger="ava_detect.data.live_source")
    source.open().start()
    frames = []

    def second_writer():
        first.join(timeout=30)
        time.sleep(0.5)
        with StreamFeeder(feed.ts, f"fifo:{fifo}", speed=3.0) as again:
            again.join(timeout=30)

    writer = threading.Thread(target=second_writer, daemon=True)
    writer.start()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(frames) < 360:
        frame = source.get(timeout=0.1)
        if frame is not None:
            frames.append(frame)
    source.stop()
    source.join(5)
    times = [f.time for f in frames]
    assert len(frames) == 360 and source.reconnects == 1
    assert all(b > a for a, b in zip(times, times[1:])) and times[-1] == pytest.approx(359 / 30, abs=0.1)
    assert any("reconnecting in 1 s (attempt 1)" in r.getMessage() for r in caplog.records)


def test_live_view_shows_the_stream_in_chromium(feed, tmp_path):
    from chromium import Chromium, chromium_or_skip

    executable = chromium_or_skip()
    annotator = _annotator(feed)
    errors = []
    with StreamFeeder(feed.ts, "tcp", loop=True) as feeder, LiveView("127.0.0.1", 0) as view:
        stop = threading.Event()

        def run():
            try:
                annotator.annotate_stream(feeder.url, out_video=tmp_path / "o.mp4", view=view, stop=stop,
                                          video_id=feed.stem)
            except BaseException as e:  # noqa: BLE001 - reported by the test
                errors.append(e)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            with Chromium(executable) as browser:
                browser.navigate(view.url)
                width = browser.evaluate(
                    "new Promise(r => { const i = document.querySelector('img'); const t = () => "
                    "i.naturalWidth ? r(i.naturalWidth) : setTimeout(t, 100); t(); })", await_promise=True)
                snap = ("(() => { const i = document.querySelector('img'); const c = document.createElement('canvas');"
                        " c.width = i.naturalWidth; c.height = i.naturalHeight; const x = c.getContext('2d');"
                        " x.drawImage(i, 0, 0); return Array.from(x.getImageData(0, 0, c.width, c.height).data"
                        ".filter((v, k) => k % 97 == 0)); })()")
                first = browser.evaluate(snap)
                time.sleep(1.0)
                second = browser.evaluate(snap)
                assert browser.console_errors == []
        finally:
            stop.set()
            worker.join(30)
    assert not errors, errors
    assert width == 160 and first != second
