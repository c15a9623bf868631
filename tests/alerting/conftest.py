"""Receivers on 127.0.0.1 for the sink tests: a tiny threaded http.server that
records every request and answers with what the test scripted."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Request], tuple[int, Any]]


@dataclass
class Receiver:
    url: str
    requests: list[Request] = field(default_factory=list)
    handler: Handler = field(default=lambda r: (200, {"ok": True}))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(url="")

    class H(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          self.rfile.read(n) if n else b"")
            rec.requests.append(req)
            status, body = rec.handler(req)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)

