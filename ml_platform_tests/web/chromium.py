"""Headless Debian Chromium driven over its DevTools protocol (a websocket), without selenium or playwright.

Chromium is started with the flags this machine needs (no sandbox, no GPU, no QUIC, no background networking,
a fresh profile) and `--remote-debugging-port=0`; the port it picked is read from `DevToolsActivePort` in the
profile folder, and the page target is driven with the `websockets` package (installed with dagster-webserver).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

from websockets.sync.client import connect

CHROMIUM = Path(os.environ.get("ML_PLATFORM_CHROMIUM", "/usr/bin/chromium"))

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
]

# Runs in the child before exec: a shell that started the tests in the background may have left SIGINT ignored,
# and an ignored signal stays ignored across exec; reset it so the process group dies cleanly on SIGTERM/SIGINT.
_RESET_SIGNALS = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])")


def launch_in_own_group(command: list[str], **popen) -> subprocess.Popen:
    """Start a command in a new session (its own process group) with default SIGINT and SIGTERM handlers."""
    import sys

    return subprocess.Popen([sys.executable, "-c", _RESET_SIGNALS, *command], start_new_session=True, **popen)


def stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process's whole group, then SIGKILL whatever is left after `grace` seconds."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # children (code servers, renderers) may outlive the leader; the group id is the leader's pid
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


class PageTimeout(AssertionError):
    """The page did not show what was expected in time; the message carries what it did show."""


class Chromium:
    """One headless Chromium with one page, driven over DevTools. Use as a context manager."""

    def __init__(self, width: int = 1600, height: int = 1000, log_path: Path | None = None,
                 start_timeout: float = 30.0):
        self.width, self.height = width, height
        self.log_path = log_path
        self.start_timeout = start_timeout
        self._ids = itertools.count(1)
        self._profile: tempfile.TemporaryDirectory | None = None
        self._process: subprocess.Popen | None = None
        self._log = None
        self._socket = None
        self._connection = contextlib.ExitStack()

    # -- lifecycle -----------------------------------------------------------------------------------------

    def __enter__(self) -> "Chromium":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        profile = Path(self._profile.name)
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self._process = launch_in_own_group(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", f"--window-size={self.width},{self.height}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.start_timeout
        port = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Chromium exited with code {self._process.returncode} at start-up "
                                   f"(log: {self.log_path})")
            text = port_file.read_text() if port_file.exists() else ""
            if text.strip() and "\n" in text:
                port = int(text.splitlines()[0])
                break
            time.sleep(0.05)
        if port is None:
            raise RuntimeError(f"Chromium did not open its DevTools port within {self.start_timeout:.0f} s")
        page_socket = None
        while time.monotonic() < deadline and page_socket is None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                targets = json.load(response)
            page_socket = next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None)
            if page_socket is None:
                time.sleep(0.05)
        if page_socket is None:
            raise RuntimeError("Chromium opened no page target")
        # As a context manager: websockets 17.1+ deprecates using connect() directly.
        self._socket = self._connection.enter_context(connect(page_socket, max_size=None, open_timeout=10))
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.set_viewport(self.width, self.height)

    def set_viewport(self, width: int, height: int) -> None:
        """Resize the page's viewport (what screenshots capture)."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.width, self.height = width, height

    def close(self) -> None:
        if self._socket is not None:
            try:
                self.call("Browser.close", timeout=5)
            except Exception:
                pass
            try:
                self._connection.close()
            except Exception:
                pass
            self._socket = None
        if self._process is not None:
            stop_group(self._process, grace=5)
            self._process = None
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    # -- protocol ------------------------------------------------------------------------------------------

    def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        """Send one DevTools command and return its result (events that arrive meanwhile are dropped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer to {method} within {timeout:.0f} s")
            message = json.loads(self._socket.recv(timeout=remaining))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- what a person sees --------------------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Navigate the page (a full load, as when a person types the address)."""
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"could not open {url}: {result['errorText']}")

    def visible_text(self) -> str:
        """The rendered text of the page (`document.body.innerText`: hidden elements excluded)."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_until(self, ready: Callable[[str], bool], what: str, timeout: float = 30.0,
                   settle: float = 0.5, failure_screenshot: Path | None = None) -> str:
        """Poll the visible text until `ready(text)` holds, and still holds `settle` seconds later; return it."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.visible_text()
            if ready(text):
                time.sleep(settle)
                text = self.visible_text()
                if ready(text):
                    return text
            time.sleep(0.2)
        if failure_screenshot is not None:
            try:
                self.screenshot(failure_screenshot)
            except Exception:
                pass
        shown = " | ".join(line for line in text.splitlines() if line.strip())
        raise PageTimeout(f"after {timeout:.0f} s the page still does not show {what}; "
                          f"it shows: {shown[:3000]!r}"
                          + (f"; screenshot: {failure_screenshot}" if failure_screenshot else ""))

    def screenshot(self, path: Path) -> Path:
        """A PNG of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
