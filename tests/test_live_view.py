"""The live view of ``annotate`` on streams: the ``--serve`` address, the loopback guard, each
endpoint, the MJPEG stream (new frames once, lazily encoded, at most ``max_fps``), clients that go
away or stop reading, and the page in a real headless Chromium."""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Iterator, List

import numpy as np
import pytest
from PIL import Image

from ava_detect.annotate.live_view import LiveView, is_loopback, parse_serve_address
from ava_detect.errors import AvaDetectError

from chromium import Chromium, chromium_or_skip

W, H = 96, 64


def _picture(i: int, width: int = W, height: int = H) -> np.ndarray:
    """A frame that differs visibly from frame ``i - 1``: a white bar that moves, on a grey that changes."""
    rgb = np.full((height, width, 3), (i * 37) % 200, np.uint8)
    x = (i * 11) % (width - 16)
    rgb[:, x:x + 16] = 255
    return rgb


@contextmanager
def _publishing(view: LiveView, *, interval: float = 0.02) -> Iterator[List[int]]:
    """Publish changing pictures from a thread, like the pipeline does, while the block runs;
    yields the list of published frame numbers."""
    stop = threading.Event()
    published: List[int] = []

    def feed() -> None:
        i = 0
        while not stop.is_set():
            view.publish(_picture(i), {"frame": i})
            published.append(i)
            i += 1
            stop.wait(interval)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield published
    finally:
        stop.set()
        thread.join(timeout=5)


def _get(url: str):
    """(status, content type, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers.get("Content-Type"), answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


class _Stream:
    """A client of ``/stream.mjpg`` that reads the parts one at a time."""

    def __init__(self, view: LiveView, timeout: float = 5.0):
        port = int(view.url.rsplit(":", 1)[1].strip("/"))
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.connection.request("GET", "/stream.mjpg")
        self.response = self.connection.getresponse()
        content_type = self.response.getheader("Content-Type")
        assert self.response.status == 200
        assert content_type.startswith("multipart/x-mixed-replace; boundary=")
        self.boundary = b"--" + content_type.split("boundary=", 1)[1].encode()
        self.file = self.response.fp
        assert self.file.readline().rstrip(b"\r\n") == self.boundary

    def next_jpeg(self) -> bytes:
        headers = {}
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip(b"\r\n")
            if not line:
                break
            key, value = line.decode().split(":", 1)
            headers[key.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        data = self.file.read(int(headers["content-length"]))
        assert self.file.readline() == b"\r\n"
        assert self.file.readline().rstrip(b"\r\n") == self.boundary
        return data

    def close(self) -> None:
        self.response.close()
        self.connection.close()


def _wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# --------------------------------------------------------------------------------------
# The --serve address and the loopback guard
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("8080", ("127.0.0.1", 8080)),
    (" 8080 ", ("127.0.0.1", 8080)),
    ("0", ("127.0.0.1", 0)),
    ("localhost:0", ("localhost", 0)),
    ("127.0.0.1:65535", ("127.0.0.1", 65535)),
    ("0.0.0.0:8080", ("0.0.0.0", 8080)),
    ("camera-box.local:9000", ("camera-box.local", 9000)),
    ("[::1]:8080", ("::1", 8080)),
    ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
])
def test_serve_address_forms(text, expected):
    assert parse_serve_address(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "http", "80a", "-1", "65536", "99999", "host:70000", ":8080", "host:",
                                  "host:port", "::1:8080", "[::1]", "[::1]8080", "[nothost]:80", "a b:80",
                                  "1.2.3.4:80:90"])
def test_bad_serve_addresses_name_the_flag_and_the_form(text):
    with pytest.raises(AvaDetectError) as e:
        parse_serve_address(text)
    message = str(e.value)
    assert message.startswith("--serve: ") and "expected PORT, HOST:PORT or [IPv6]:PORT" in message, message
    assert "0..65535" in message and repr(text) in message
    assert "\n" not in message


def test_an_ipv6_host_without_brackets_gets_a_hint():
    assert "[::1]:8080" in str(pytest.raises(AvaDetectError, parse_serve_address, "::1:8080").value)
    assert "out of range" in str(pytest.raises(AvaDetectError, parse_serve_address, "localhost:65536").value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST",
                                  "::ffff:127.0.0.1"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "10.0.0.1", "fe80::1", "example.com",
                                  "localhost.example.com", "128.0.0.1"])
def test_hosts_others_can_reach_are_not_loopback(host):
    assert not is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_a_public_host_is_refused_without_allow_public(host):
    with pytest.raises(AvaDetectError) as e:
        LiveView(host, 8080)
    assert str(e.value) == f"binding to {host} serves the camera to the network; pass --serve-public to allow it"
    view = LiveView(host, 8080, allow_public=True)  # allowed; not started, so nothing is exposed here
    assert view.host == host


@pytest.mark.parametrize("kwargs, words", [
    ({"port": 70000}, "0..65535"), ({"port": -1}, "0..65535"), ({"max_fps": 0}, "> 0"),
    ({"max_fps": float("nan")}, "> 0"), ({"quality": 0}, "1..95"), ({"quality": 100}, "1..95"),
])
def test_settings_out_of_range_are_refused(kwargs, words):
    with pytest.raises(AvaDetectError, match=words.replace(".", r"\.")):
        LiveView("127.0.0.1", **kwargs)


def test_a_port_in_use_is_an_error_naming_the_address():
    with LiveView() as first:
        port = int(first.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(AvaDetectError) as e:
            LiveView("127.0.0.1", port).start()
        assert f"127.0.0.1:{port}" in str(e.value) and "already in use" in str(e.value)
        assert _get(first.url + "status.json")[0] == 200  # the first one still serves


def test_url_has_the_port_taken_and_the_view_serves_ipv6_loopback():
    with LiveView("127.0.0.1", 0) as view:
        assert view.url.startswith("http://127.0.0.1:") and view.url.endswith("/")
        assert int(view.url.rsplit(":", 1)[1].strip("/")) > 0
    if not socket.has_ipv6:
        return
    try:
        view = LiveView("::1", 0).start()
    except AvaDetectError as e:
        pytest.skip(f"this machine cannot bind ::1: {e}")
    with view:
        assert view.url.startswith("http://[::1]:")
        assert _get(view.url + "status.json")[0] == 200


# --------------------------------------------------------------------------------------
# The endpoints
# --------------------------------------------------------------------------------------


def test_frame_jpg_is_503_before_a_frame_then_the_newest_frame():
    with LiveView() as view:
        status, _, _ = _get(view.url + "frame.jpg")
        assert status == 503
        view.publish(_picture(3, 120, 80))
        status, content_type, body = _get(view.url + "frame.jpg")
        assert status == 200 and content_type == "image/jpeg"
        image = Image.open(io.BytesIO(body))
        assert image.format == "JPEG" and image.size == (120, 80) and image.mode == "RGB"
        error = np.abs(np.asarray(image).astype(int) - _picture(3, 120, 80).astype(int)).mean()
        assert error < 8, error  # JPEG at quality 80
        view.publish(_picture(4, 120, 80))
        newer = np.asarray(Image.open(io.BytesIO(_get(view.url + "frame.jpg")[2]))).astype(int)
        assert np.abs(newer - _picture(4, 120, 80).astype(int)).mean() < 8


def test_status_json_reports_frames_size_rate_and_the_callers_status():
    with LiveView(title="door camera") as view:
        status, content_type, body = _get(view.url + "status.json")
        assert status == 200 and content_type == "application/json"
        assert json.loads(body) == {"title": "door camera", "frames": 0, "width": None, "height": None,
                                    "fps": None, "clients": 0, "status": {}}
        for i in range(5):
            view.publish(_picture(i), {"frame": i, "people": 2, "source": "rtsp://cam"} if i == 3 else None)
            time.sleep(0.01)
        answer = json.loads(_get(view.url + "status.json")[2])
        assert answer["frames"] == 5 and (answer["width"], answer["height"]) == (W, H)
        assert answer["status"] == {"frame": 3, "people": 2, "source": "rtsp://cam"}  # None keeps the last status
        assert 5 < answer["fps"] < 200
        view.publish(_picture(5), {"when": object()})  # not JSON-able: shown as text, not an error
        assert json.loads(_get(view.url + "status.json")[2])["status"]["when"].startswith("<object object")


def test_the_page_and_unknown_paths():
    with LiveView(title='cam <1> & "yard"') as view:
        status, content_type, body = _get(view.url)
        page = body.decode()
        assert status == 200 and content_type == "text/html; charset=utf-8"
        assert '<img id="live" src="/stream.mjpg"' in page
        assert "<title>cam &lt;1&gt; &amp; &quot;yard&quot;</title>" in page
        assert "/status.json" in page and "setInterval" in page
        assert "http://" not in page and "https://" not in page and "//" not in page.replace("://", "")
        for path in ("nope", "stream.mjpeg", "frame.png", "status", "../etc/passwd"):
            assert _get(view.url + path)[0] == 404, path


def test_publish_refuses_what_is_not_an_rgb_frame():
    view = LiveView()
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), [1, 2]):
        with pytest.raises(ValueError, match=r"uint8 arrays \[H, W, 3\]"):
            view.publish(bad)


# --------------------------------------------------------------------------------------
# The stream
# --------------------------------------------------------------------------------------


def test_the_stream_delivers_changing_frames_published_from_a_thread():
    with LiveView(max_fps=20) as view, _publishing(view):
        stream = _Stream(view)
        try:
            frames = [stream.next_jpeg() for _ in range(4)]
        finally:
            stream.close()
    pictures = [np.asarray(Image.open(io.BytesIO(f))) for f in frames]
    assert all(p.shape == (H, W, 3) for p in pictures)
    distinct = {p.tobytes() for p in pictures}
    assert len(distinct) >= 2


def test_each_frame_is_sent_once_and_encoded_only_for_clients():
    with LiveView() as view:
        encodes = []
        original = view._encode
        view._encode = lambda rgb: encodes.append(1) or original(rgb)
        for i in range(50):
            view.publish(_picture(i))
        assert encodes == []  # nobody watches: nothing is encoded
        stream = _Stream(view, timeout=0.5)
        try:
            first = stream.next_jpeg()
            assert np.abs(np.asarray(Image.open(io.BytesIO(first))).astype(int) - _picture(49).astype(int)).mean() < 8
            with pytest.raises(socket.timeout):
                stream.next_jpeg()  # no new frame: nothing more is sent
        finally:
            stream.close()
        assert len(encodes) == 1


def test_encoding_keeps_to_max_fps_for_all_clients_together():
    with LiveView(max_fps=5) as view:
        encodes = []
        original = view._encode
        view._encode = lambda rgb: encodes.append(time.monotonic()) or original(rgb)
        streams = [_Stream(view), _Stream(view)]
        try:
            with _publishing(view, interval=0.005):
                start = time.monotonic()
                received = [[s.next_jpeg() for _ in range(3)] for s in streams]
                elapsed = time.monotonic() - start
        finally:
            for s in streams:
                s.close()
    assert all(len(r) == 3 for r in received)
    gaps = np.diff(encodes)
    assert len(encodes) <= 5 * elapsed + 2, (len(encodes), elapsed)
    assert gaps.min() >= 1 / 5 - 0.02, gaps  # one encoding per 0.2 s at most, shared by both clients


def test_a_client_that_goes_away_raises_nothing_and_logs_no_traceback(capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="ava_detect")
    with LiveView(max_fps=50) as view, _publishing(view, interval=0.005):
        for _ in range(3):
            stream = _Stream(view)
            stream.next_jpeg()
            stream.close()
        raw = socket.create_connection(("127.0.0.1", int(view.url.rsplit(":", 1)[1].strip("/"))))
        raw.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        raw.recv(100)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset on close
        raw.close()
        assert _wait_for(lambda: view.clients == 0), view.clients
    out, err = capfd.readouterr()
    assert out == "" and err == "", err
    assert all(r.levelno <= logging.DEBUG and not r.exc_info for r in caplog.records), \
        [r.getMessage() for r in caplog.records]


def test_close_returns_promptly_while_clients_keep_streams_open():
    """One client reads the stream, another asks for it and never reads, so that the server's writes
    to it block once the socket buffers are full (noise frames: large JPEGs); close() ends both."""
    view = LiveView(max_fps=100, quality=95).start()
    port = int(view.url.rsplit(":", 1)[1].strip("/"))
    noise = [np.random.default_rng(i).integers(0, 256, (480, 640, 3), dtype=np.uint8) for i in range(2)]
    stop = threading.Event()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            view.publish(noise[i % 2])
            i += 1
            stop.wait(0.005)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        reading = _Stream(view)
        reading.next_jpeg()
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        assert _wait_for(lambda: view.clients == 2)
        time.sleep(0.5)  # ~40 frames of ~400 KB: more than the buffers hold
        start = time.monotonic()
        view.close()
        took = time.monotonic() - start
    finally:
        stop.set()
        feeder.join(timeout=5)
    assert took < 1.0, took
    # both streams end on the server's side while both clients still hold their connections
    assert _wait_for(lambda: view.clients == 0, timeout=2.0), view.clients
    with pytest.raises((EOFError, OSError)):
        for _ in range(100):
            reading.next_jpeg()
    reading.close()
    stalled.close()
    view.close()  # again: nothing
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # the port is released
    with pytest.raises(AvaDetectError, match="closed"):
        view.start()


# --------------------------------------------------------------------------------------
# In a real browser
# --------------------------------------------------------------------------------------




_SNAPSHOT = """(() => {
  const img = document.getElementById("live");
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data.filter((_, i) => i % 4 === 0));
})()"""


def test_the_page_shows_changing_frames_in_headless_chromium():
    """The page at view.url loads, its <img> decodes at the frame's size, what it shows changes
    while frames keep coming, and the status line follows /status.json; no console errors."""
    executable = chromium_or_skip()
    with LiveView(max_fps=15, title="live test") as view, _publishing(view, interval=0.04):
        with Chromium(executable) as browser:
            browser.navigate(view.url)
            assert browser.evaluate("document.title") == "live test"
            width = browser.evaluate("document.getElementById('live').decode().then("
                                     "() => document.getElementById('live').naturalWidth, e => 'failed: ' + e)",
                                     await_promise=True)
            assert width == W
            assert browser.evaluate("document.getElementById('live').naturalHeight") == H
            first = browser.evaluate(_SNAPSHOT)
            time.sleep(1.0)
            second = browser.evaluate(_SNAPSHOT)
            assert len(first) == len(second) == W * H
            assert first != second, "the picture did not change in the browser"
            assert _wait_for(lambda: " frames" in browser.evaluate("document.getElementById('status').textContent"))
            line = browser.evaluate("document.getElementById('status').textContent")
            assert f"{W}\u00d7{H}" in line and "frame: " in line and "fps" in line, line
            assert view.clients >= 1
            assert browser.console_errors == [], browser.console_errors
