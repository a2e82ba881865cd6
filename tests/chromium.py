"""A headless Chromium that tests drive over the DevTools protocol, without extra packages.

Chromium's ``--remote-debugging-pipe`` speaks the DevTools protocol over two pipes (it reads
JSON messages ending in a NUL byte from file descriptor 3 and writes its own to descriptor 4),
so the tests need neither a websocket client nor a browser download: Debian's ``chromium``
package is enough. :func:`find_chromium` gives its path or None.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional

#: Program names tried, in order.
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_or_skip() -> str:
    """The Chromium to run, or skip the calling test with the reason (fail it in CI, which installs one)."""
    import pytest

    from common import in_ci

    path = find_chromium()
    if path is None:
        reason = "needs a headless Chromium (Debian: apt-get install chromium); .ci/run installs it"
        if in_ci():
            pytest.fail(reason + "; CI installs it, so its absence is a failure", pytrace=False)
        pytest.skip(reason)
    return path


def find_chromium() -> Optional[str]:
    """Path of a Chromium (or Chrome) executable, or None."""
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    """The browser answered a command with an error, died, or did not answer in time."""


class Chromium:
    """One headless Chromium with one page.

    Example::

        with Chromium() as browser:
            browser.navigate("file:///tmp/report.html")
            title = browser.evaluate("document.title")

    Attributes:
        console_errors: console messages of level error, uncaught exceptions and failed loads
            (log entries of level error), as text, in the order they came.
    """

    def __init__(self, executable: Optional[str] = None, *, width: int = 1280, height: int = 900, timeout: float = 20.0):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError("no chromium executable found")
        self.timeout = timeout
        self.console_errors: List[str] = []
        self._events: List[Dict[str, Any]] = []
        self._next_id = 0
        self._buffer = b""
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        keep = (to_browser_r, from_browser_w)

        def child_fds() -> None:  # in the child: our pipe ends become descriptors 3 and 4
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-dev-shm-usage", "--allow-file-access-from-files", "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"]
        self._process = subprocess.Popen(args, pass_fds=(3, 4) + keep, preexec_fn=child_fds,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session=True)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------- protocol

    def _send(self, message: Dict[str, Any]) -> None:
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> Dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("the browser did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"the browser closed the connection (exit status {self._process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _note(self, event: Dict[str, Any]) -> None:
        self._events.append(event)
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console_errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())

    def call(self, method: str, *, session: bool = False, **params: Any) -> Dict[str, Any]:
        """Send one command and return its result (events that come meanwhile are kept)."""
        self._next_id += 1
        message: Dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._note(reply)

    def wait_event(self, method: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Wait for an event of the page (one that already came counts), return its params."""
        for i, event in enumerate(self._events):
            if event.get("method") == method:
                return self._events.pop(i).get("params", {})
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            event = self._receive(deadline)
            if "method" in event:
                self._note(event)
                if event["method"] == method:
                    self._events.remove(event)
                    return event.get("params", {})

    # ------------------------------------------------------------------------- page

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        self._events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values)."""
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=await_promise)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:60]}...: {details.get('exception', {}).get('description', details)}")
        return result.get("result", {}).get("value")

    def set_viewport(self, width: int, height: int, *, mobile: bool = False, scale: float = 1.0) -> None:
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=scale, mobile=mobile)

    def screenshot(self, *, full_page: bool = False) -> bytes:
        """A PNG of the viewport (or of the whole page)."""
        params: Dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", session=True, **params)["data"])

    # ------------------------------------------------------------------------- lifetime

    def close(self) -> None:
        try:
            if self._process.poll() is None:
                try:
                    self._next_id += 1
                    self._send({"id": self._next_id, "method": "Browser.close", "params": {}})
                except OSError:
                    pass
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=5)
        finally:
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
