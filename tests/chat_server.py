"""A real chat-completions HTTP server on 127.0.0.1 for the summariser tests (no network, no mocks)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the assistant's text; None with `raw` for a broken body
    raw: str | None = None
    delay: float = 0.0


def completion(content: str) -> str:
    return json.dumps({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })


def findings_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings the summariser sent, parsed back out of the user message."""
    user = request["messages"][-1]["content"]
    return json.loads(user.split("Findings:\n", 1)[1].split("\nWrite an executive", 1)[0])


@dataclass
class ChatServer:
    behaviour: Callable[[dict[str, Any]], Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                server.bodies.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                request = json.loads(body)
                server.requests.append(request)
                reply = server.behaviour(request)
                time.sleep(reply.delay)
                payload = (reply.raw if reply.raw is not None else completion(reply.content or "")).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
