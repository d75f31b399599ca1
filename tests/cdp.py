"""A real headless Chromium driven over the DevTools protocol (websocket-client), for the report tests.

Opens a page, records every console message, exception, log entry and network request, and
evaluates JavaScript and takes screenshots. No browser automation framework: a few protocol
commands over one WebSocket, so the only requirement is the system's `chromium`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-extensions", "--disable-sync",
         "--remote-debugging-port=0")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Page:
    url: str
    console: list[dict[str, Any]] = field(default_factory=list)  # Runtime.consoleAPICalled
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # Runtime.exceptionThrown
    log: list[dict[str, Any]] = field(default_factory=list)  # Log.entryAdded
    requests: list[str] = field(default_factory=list)  # Network.requestWillBeSent URLs

    @property
    def errors(self) -> list[str]:
        out = [json.dumps(c.get("args")) for c in self.console if c.get("type") in ("error", "assert")]
        out += [json.dumps(e.get("exceptionDetails", {}).get("text")) for e in self.exceptions]
        out += [e["entry"].get("text", "") for e in self.log if e.get("entry", {}).get("level") == "error"]
        return out


class Browser:
    """One Chromium process with a fresh profile; `open(url)` loads a page in a new tab."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        import websocket  # websocket-client, in the test extra

        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="anomaly-chromium-")
        self.proc = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        endpoint = self._endpoint()
        self.ws = websocket.create_connection(endpoint, timeout=timeout, suppress_origin=True)
        self._id = 0
        self._events: list[dict[str, Any]] = []

    def _endpoint(self) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                return found.group(1)
        self.close()
        raise RuntimeError("chromium did not start its DevTools endpoint")

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for i, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self._events.pop(i)
            self._events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def open(self, url: str, width: int = 1200, height: int = 900) -> Session:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session)
        self.send("Emulation.setDeviceMetricsOverride", session, width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self._events = [e for e in self._events if e.get("sessionId") != session]
        self.send("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired", session)
        self.evaluate(session, "new Promise(r => requestAnimationFrame(() => r(1)))")  # painted
        page = Page(url)
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                page.console.append(params)
            elif method == "Runtime.exceptionThrown":
                page.exceptions.append(params)
            elif method == "Log.entryAdded":
                page.log.append(params)
            elif method == "Network.requestWillBeSent":
                page.requests.append(params["request"]["url"])
        return Session(self, session, page)

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.send("Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("text"))
        return result["result"].get("value")

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class Session:
    browser: Browser
    id: str
    page: Page

    def evaluate(self, expression: str) -> Any:
        return self.browser.evaluate(self.id, expression)

    def screenshot(self, path: Path, *, full: bool = True, clip: dict[str, float] | None = None,
                   scale: float = 1.0) -> int:
        """A PNG of the page (whole, or `clip` in CSS pixels); returns its size in bytes."""
        params: dict[str, Any] = {"format": "png"}
        if full or clip is not None:
            if clip is None:
                size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
                clip = {"x": 0, "y": 0, "width": size[0], "height": size[1]}
            params.update(captureBeyondViewport=True, clip={**clip, "scale": scale})
        data = base64.b64decode(self.browser.send("Page.captureScreenshot", self.id, **params)["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return len(data)


def artifacts_dir() -> Path:
    """Where the tests leave screenshots: $ANOMALY_TEST_ARTIFACTS, else test-artifacts/ in the checkout."""
    return Path(os.environ.get("ANOMALY_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
