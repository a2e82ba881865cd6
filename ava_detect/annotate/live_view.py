"""A live view of ``annotate`` on a stream: the newest annotated frame as an MJPEG page in a browser.

:class:`LiveView` serves, from a daemon thread of the standard library's ``http.server``:

- ``/``: an HTML page (no external resources) with the stream in ``<img id="live">``, the title and a
  status line that it refreshes from ``/status.json`` once a second;
- ``/stream.mjpg``: ``multipart/x-mixed-replace`` JPEG parts, each new frame once, at most ``max_fps``;
- ``/frame.jpg``: the newest frame as one JPEG (503 before the first frame);
- ``/status.json``: the title, frame count and size, publishing rate, open streams and the caller's status.

The caller's side is cheap: :meth:`LiveView.publish` only keeps a reference to the newest frame.
Frames are JPEG-encoded (Pillow) in the server's threads, only when a client asks for one, at most
``max_fps`` times a second for all clients together, and each encoding is shared by every client.

Serving a camera is a privacy matter: a host other than the loopback (``127.x``, ``::1``,
``localhost``) is refused unless ``allow_public`` is given (the CLI's ``--serve-public``).

:func:`parse_serve_address` reads the ``--serve`` flag's text (``PORT``, ``HOST:PORT``, ``[IPv6]:PORT``).
"""

from __future__ import annotations

import collections
import errno
import html
import io
import ipaddress
import json
import logging
import re
import socket
import socketserver
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, Optional, Set, Tuple

import numpy as np
from PIL import Image

from ava_detect.errors import AvaDetectError

logger = logging.getLogger(__name__)

#: Host used when ``--serve`` gives only a port.
DEFAULT_HOST = "127.0.0.1"

_BOUNDARY = "ava-detect-frame"
_EXPECTED = "expected PORT, HOST:PORT or [IPv6]:PORT with a port in 0..65535 (0: any free port)"


def parse_serve_address(text: str) -> Tuple[str, int]:
    """The host and port of a ``--serve`` value.

    ``"8080"`` -> ``("127.0.0.1", 8080)``; ``"0.0.0.0:8080"`` -> ``("0.0.0.0", 8080)``;
    ``"[::1]:8080"`` -> ``("::1", 8080)``; port 0 asks for any free port.

    Raises:
        AvaDetectError: text of another form, an empty host, or a port outside 0..65535.
    """
    value = str(text).strip()
    bracketed = re.fullmatch(r"\[([^\[\]]+)\]:(\d+)", value)
    if re.fullmatch(r"\d+", value):
        host, port_text = DEFAULT_HOST, value
    elif bracketed:
        host, port_text = bracketed.group(1), bracketed.group(2)
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise AvaDetectError(f"--serve: {_EXPECTED}; {host!r} in brackets is not an IPv6 address, "
                                 f"found {text!r}") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host or any(c.isspace() for c in host) or not re.fullmatch(r"\d+", port_text):
            hint = "; write an IPv6 host in brackets, e.g. [::1]:8080" if host.count(":") > 0 else ""
            raise AvaDetectError(f"--serve: {_EXPECTED}{hint}, found {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise AvaDetectError(f"--serve: {_EXPECTED}; port {port} is out of range, found {text!r}")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only: ``localhost``, ``127.0.0.0/8`` or ``::1`` (also in brackets
    or as an IPv4-mapped IPv6 address). Other names, ``0.0.0.0``, ``::`` and ``""`` are not."""
    name = str(host).strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in ("localhost", "localhost.") or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Server(ThreadingHTTPServer):
    """The HTTP server of one :class:`LiveView`: daemon request threads, no reverse DNS at bind, no
    tracebacks on stderr."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: Tuple[str, int], family: int, view: "LiveView"):
        self.address_family = family
        self.view = view
        super().__init__(address, _Handler, bind_and_activate=False)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also looks up the host's fully qualified name, which can wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # a client that went away while its request was read
            logger.debug("live view: connection from %s ended: %s", client_address, error)
        else:
            logger.warning("live view: error while answering %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """One request to the live view."""

    server: _Server
    server_version = "ava-detect-live"
    #: seconds a blocked read or write of a client may wait before its connection is dropped
    timeout = 10.0

    def setup(self) -> None:
        super().setup()
        self.server.view._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.view._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        logger.debug("live view %s: " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        view = self.server.view
        try:
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", view._page())
            elif path == "/stream.mjpg":
                self._stream()
            elif path == "/frame.jpg":
                newest = view._newest_jpeg()
                if newest is None:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", b"no frame yet\n")
                else:
                    self._send(HTTPStatus.OK, "image/jpeg", newest[1])
            elif path == "/status.json":
                self._send(HTTPStatus.OK, "application/json", view._status_json())
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")
        except OSError as e:  # the client went away (broken pipe, reset, timeout) or the view closed
            self.close_connection = True
            logger.debug("live view: %s %s ended: %s", self.address_string(), path, e)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        view = self.server.view
        self.close_connection = True
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        # Each part ends with the next boundary, so that a browser shows a frame as soon as it has it.
        self.wfile.write(f"--{_BOUNDARY}\r\n".encode())
        self.wfile.flush()
        sent = 0
        with view._stream_opened():
            while True:
                newest = view._jpeg_after(sent)
                if newest is None:  # closed
                    return
                sent, data = newest
                head = f"Content-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                self.wfile.write(head + data + f"\r\n--{_BOUNDARY}\r\n".encode())
                self.wfile.flush()


class LiveView:
    """The newest annotated frame as an MJPEG page on ``http://HOST:PORT/`` (stdlib ``http.server``
    in a daemon thread).

    Example::

        with LiveView("127.0.0.1", 8080) as view:
            logger.info("live view at %s", view.url)
            for rgb in frames:                   # uint8 [H, W, 3]
                view.publish(rgb, {"frame": n})

    Args:
        host: address to bind: a loopback one (``127.0.0.1``, ``::1``, ``localhost``) unless
            ``allow_public``.
        port: TCP port, 0..65535; 0 takes any free port (:attr:`url` tells which).
        allow_public: allow a host that other machines can reach (``0.0.0.0``, a LAN address...).
        max_fps: the most frames a second that are JPEG-encoded (for all clients together), > 0.
        quality: JPEG quality, 1..95.
        title: the page's title.

    Raises:
        AvaDetectError: a public host without ``allow_public``, or a setting out of range.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0, *, allow_public: bool = False,
                 max_fps: float = 10.0, quality: int = 80, title: str = "ava-detect live"):
        host = str(host).strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        host = host or "0.0.0.0"  # all interfaces
        if not is_loopback(host) and not allow_public:
            raise AvaDetectError(f"binding to {host} serves the camera to the network; "
                                 "pass --serve-public to allow it")
        if isinstance(port, bool) or not isinstance(port, (int, np.integer)) or not 0 <= int(port) <= 65535:
            raise AvaDetectError(f"--serve: the port must be an integer in 0..65535 (0: any free port), found {port!r}")
        if not (isinstance(max_fps, (int, float)) and np.isfinite(max_fps) and max_fps > 0):
            raise AvaDetectError(f"the live view's frame rate must be a number > 0, found {max_fps!r}")
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= int(quality) <= 95:
            raise AvaDetectError(f"the live view's JPEG quality must be an integer in 1..95, found {quality!r}")
        self.host = host
        self.port = int(port)
        self.allow_public = bool(allow_public)
        self.max_fps = float(max_fps)
        self.quality = int(quality)
        self.title = str(title)

        self._cond = threading.Condition()
        self._closed = False
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: Set[socket.socket] = set()
        self._streams = 0
        # the newest frame (a reference to the caller's array) and its number (1, 2, ...; 0: none yet)
        self._frame: Optional[np.ndarray] = None
        self._seq = 0
        self._status: Optional[Dict[str, Any]] = None
        self._publish_times: Deque[float] = collections.deque(maxlen=32)
        # the newest encoding: (frame number, JPEG bytes), when it was made, and whether one is under way
        self._jpeg: Optional[Tuple[int, bytes]] = None
        self._encoded_at = float("-inf")
        self._encoding = False

    # ------------------------------------------------------------------------- lifetime

    def start(self) -> "LiveView":
        """Bind ``host:port`` and start serving in a daemon thread; returns ``self``. Starting a started
        view does nothing.

        Raises:
            AvaDetectError: the address is in use, cannot be resolved or bound, or the view was closed.
        """
        if self._server is not None:
            return self
        if self._closed:
            raise AvaDetectError("the live view was closed; make a new one to serve again")
        where = f"{_url_host(self.host)}:{self.port}"
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as e:
            raise AvaDetectError(f"--serve: cannot serve on {where}: unknown host ({e.strerror})") from None
        family, _, _, _, address = infos[0]
        server = _Server((address[0], address[1]), family, self)
        try:
            server.server_bind()
            server.server_activate()
        except OSError as e:
            server.server_close()
            if e.errno == errno.EADDRINUSE:
                raise AvaDetectError(f"--serve: cannot serve on {where}: the address is already in use "
                                     "(pick another port, or 0 for any free one)") from None
            raise AvaDetectError(f"--serve: cannot serve on {where}: {e.strerror or e}") from None
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"ava-detect live view {where}", daemon=True)
        self._thread.start()
        logger.debug("live view serving at %s", self.url)
        return self

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` with the port actually bound (when 0 was asked); needs :meth:`start`."""
        if self._server is None:
            raise RuntimeError("the live view has no address before start()")
        return f"http://{_url_host(self.host)}:{self._server.server_port}/"

    def close(self) -> None:
        """Stop serving: open streams end, the port is released. Returns promptly even while clients
        keep streams open; closing again does nothing."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._cond:
            connections = list(self._connections)
        for connection in connections:  # unblocks writes to clients that stopped reading
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.debug("live view closed")

    def __enter__(self) -> "LiveView":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------------- the caller's side

    def publish(self, rgb: np.ndarray, status: Optional[Dict[str, Any]] = None) -> None:
        """Make ``rgb`` the newest frame. Cheap: keeps a reference, encodes nothing.

        Args:
            rgb: ``uint8 ndarray [H, W, 3]``, RGB. It is read later, from the server's threads: do not
                write into it after publishing (publish a new array for each frame).
            status: a small JSON-able dict shown on the page (e.g. ``{"frame": 1200, "people": 3}``);
                None keeps the previous status. Values that JSON cannot hold are shown as text.
        """
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            found = f"{rgb.dtype} {list(rgb.shape)}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise ValueError(f"live view frames are uint8 arrays [H, W, 3], found {found}")
        now = time.monotonic()
        with self._cond:
            self._frame = rgb
            self._seq += 1
            if status is not None:
                self._status = dict(status)
            self._publish_times.append(now)
            if self._streams:
                self._cond.notify_all()

    @property
    def clients(self) -> int:
        """The number of open ``/stream.mjpg`` streams."""
        with self._cond:
            return self._streams

    # ------------------------------------------------------------------------- the server's side

    def _track(self, connection: socket.socket) -> None:
        with self._cond:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._cond:
            self._connections.discard(connection)

    def _stream_opened(self) -> "_StreamCount":
        return _StreamCount(self)

    def _encode(self, rgb: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buffer, format="JPEG", quality=self.quality)
        return buffer.getvalue()

    def _jpeg_after(self, sent: int) -> Optional[Tuple[int, bytes]]:
        """Wait for a frame newer than frame number ``sent`` and return ``(its number, its JPEG)``, the
        newest there is then; None once the view closes. Encodes at most ``max_fps`` times a second in
        all, one encoding at a time, shared by all clients."""
        interval = 1.0 / self.max_fps
        with self._cond:
            while True:
                if self._closed:
                    return None
                if self._jpeg is not None and self._jpeg[0] > sent:
                    return self._jpeg  # encoded for another client meanwhile
                if self._seq <= sent:
                    self._cond.wait()
                    continue
                if self._encoding:
                    self._cond.wait()
                    continue
                wait = self._encoded_at + interval - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                frame, seq = self._frame, self._seq
                self._encoding = True
                self._encoded_at = time.monotonic()
                break
        data: Optional[bytes] = None
        try:
            data = self._encode(frame)
        finally:
            with self._cond:
                self._encoding = False
                if data is not None:
                    self._jpeg = (seq, data)
                self._cond.notify_all()
        return seq, data

    def _newest_jpeg(self) -> Optional[Tuple[int, bytes]]:
        """The newest frame as ``(number, JPEG)``, or None before the first frame (or once closed)."""
        with self._cond:
            seq = self._seq
            if seq == 0:
                return None
        return self._jpeg_after(seq - 1)

    def _status_json(self) -> bytes:
        with self._cond:
            frame, seq, status = self._frame, self._seq, self._status
            times = list(self._publish_times)
            streams = self._streams
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
        if times and time.monotonic() - times[-1] > 2.0:
            rate = 0.0  # nothing published lately
        body = {
            "title": self.title,
            "frames": seq,
            "width": None if frame is None else int(frame.shape[1]),
            "height": None if frame is None else int(frame.shape[0]),
            "fps": None if rate is None else round(rate, 2),
            "clients": streams,
            "status": status or {},
        }
        return json.dumps(body, default=str).encode()

    def _page(self) -> bytes:
        title = html.escape(self.title)
        return _PAGE.replace("{{TITLE}}", title).encode()


class _StreamCount:
    """Counts an open stream for the ``with`` block."""

    def __init__(self, view: LiveView):
        self.view = view

    def __enter__(self) -> None:
        with self.view._cond:
            self.view._streams += 1

    def __exit__(self, *exc: Any) -> None:
        with self.view._cond:
            self.view._streams -= 1


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<link rel="icon" href="data:,">
<style>
  html, body { margin: 0; background: #111; color: #ddd; font: 14px/1.4 system-ui, sans-serif; }
  header { display: flex; flex-wrap: wrap; gap: 0.3em 1.2em; align-items: baseline; padding: 0.5em 0.8em; }
  h1 { font-size: 1.1em; margin: 0; color: #fff; }
  #status { color: #aaa; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
  #status.stale { color: #e88; }
  main { display: flex; justify-content: center; }
  #live { display: block; max-width: 100%; max-height: calc(100vh - 3em); height: auto; background: #000; }
</style>
</head>
<body>
<header><h1>{{TITLE}}</h1><span id="status">connecting...</span></header>
<main><img id="live" src="/stream.mjpg" alt="the newest annotated frame"></main>
<script>
"use strict";
(function () {
  const line = document.getElementById("status");
  function show(s) {
    const parts = [];
    if (s.width) parts.push(s.width + "\\u00d7" + s.height);
    parts.push(s.frames + " frames");
    if (s.fps !== null && s.fps !== undefined) parts.push(s.fps.toFixed(1) + " fps");
    for (const [key, value] of Object.entries(s.status || {})) {
      parts.push(key + ": " + (typeof value === "object" ? JSON.stringify(value) : value));
    }
    line.textContent = parts.join(" \\u00b7 ");
    line.classList.remove("stale");
  }
  async function refresh() {
    try {
      const answer = await fetch("/status.json", {cache: "no-store"});
      if (!answer.ok) throw new Error("status " + answer.status);
      show(await answer.json());
    } catch (e) {
      line.textContent = "the live view is not answering";
      line.classList.add("stale");
    }
  }
  refresh();
  setInterval(refresh, 1000);
})();
</script>
</body>
</html>
"""
