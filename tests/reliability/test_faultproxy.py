"""The fault-injection proxy itself: each fault does what it says, on the exchange it was aimed at."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.reliability.faultproxy import FaultProxy, http_request_complete


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        type(self).hits += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = b"hello " + body + b" " + b"x" * 1000
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the resets are the point of these tests


@pytest.fixture
def upstream() -> Iterator[ThreadingHTTPServer]:
    _Hello.hits = 0
    server = _QuietServer(("127.0.0.1", 0), _Hello)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: ThreadingHTTPServer) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.server_address[1]) as p:
        yield p


def post(session: requests.Session, proxy: FaultProxy, body: str, timeout: float = 5) -> requests.Response:
    return session.post(f"{proxy.url}/x", data=body, timeout=timeout)


def test_passes_traffic_and_counts_exchanges_on_a_keep_alive_connection(proxy: FaultProxy) -> None:
    with requests.Session() as s:
        for i in range(3):
            assert post(s, proxy, f"n{i}").content.startswith(f"hello n{i}".encode())
    assert proxy.connections == 1 and proxy.exchanges == 3 and proxy.total_faults() == 0


def test_each_fault_hits_the_exchange_it_was_aimed_at(proxy: FaultProxy) -> None:
    with requests.Session() as s:
        proxy.inject("http_503", retry_after=2, after=1)  # the 2nd request from now
        assert post(s, proxy, "a").status_code == 200
        r = post(s, proxy, "b")
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        hits = _Hello.hits
        proxy.inject("reset")  # the upstream does the work; the answer is lost
        with pytest.raises(requests.ConnectionError):
            post(s, proxy, "c")
        assert _Hello.hits == hits + 1
        proxy.inject("refuse")  # the upstream never sees it
        with pytest.raises(requests.ConnectionError):
            post(s, proxy, "d")
        assert _Hello.hits == hits + 1
        proxy.inject("cut", nbytes=200)  # past the headers: a body shorter than Content-Length
        with pytest.raises(requests.RequestException):
            post(s, proxy, "e")
        proxy.inject("blackhole")
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            post(s, proxy, "f", timeout=0.5)
        assert time.monotonic() - started < 5
        assert post(s, proxy, "g").status_code == 200  # faults spent: traffic flows again
    assert dict(proxy.injected) == {"http_503": 1, "reset": 1, "refuse": 1, "cut": 1, "blackhole": 1}
    assert proxy.pending() == 0


def test_reset_is_an_rst_and_cut_truncates(proxy: FaultProxy) -> None:
    request = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
    proxy.inject("reset")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(request)
        with pytest.raises(ConnectionResetError):
            while sock.recv(4096):
                pass
    proxy.inject("cut", nbytes=25)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(request)
        got = b""
        while chunk := sock.recv(4096):
            got += chunk
    assert len(got) == 25 and got.startswith(b"HTTP/1.1 200")


def test_latency_is_added_per_connection_and_per_chunk(proxy: FaultProxy) -> None:
    proxy.latency = 0.3
    started = time.monotonic()
    with requests.Session() as s:
        post(s, proxy, "a")
        post(s, proxy, "b")  # same connection: no second connection delay
        per_connection = time.monotonic() - started
        proxy.latency, proxy.chunk_latency = 0.0, 0.2
        started = time.monotonic()
        post(s, proxy, "c")  # one chunk each way at least
        per_chunk = time.monotonic() - started
    assert per_connection >= 0.3 and per_chunk >= 0.4


def test_http_request_complete_waits_for_the_body() -> None:
    assert not http_request_complete(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab")
    assert http_request_complete(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd")
    assert http_request_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
