"""A TCP proxy on 127.0.0.1 that injects faults between the toolkit and a real upstream.

Put it between a client (the MLflow client, psycopg2, the GitHub REST client) and a
real server on loopback; switch faults while traffic flows; read the counters for
the figures.

Faults apply to *exchanges*: an exchange starts with the first bytes a client sends
on a connection, or the first bytes it sends after the upstream answered. For
HTTP/1.1 without pipelining that is one request; for PostgreSQL one query round trip
(startup, ``BEGIN``, each ``INSERT`` page, ``COMMIT``). So a fault can hit the third
request of a keep-alive connection, or the ``COMMIT`` of a batch, not only new
connections.

Per-exchange faults (queued with :meth:`FaultProxy.inject`, ``after`` exchanges from
now, ``times`` in a row):

* ``refuse``: reset the client at once; the request never reaches the upstream.
* ``reset``: forward the request, then reset the client as the answer arrives (the
  upstream did the work; the client never hears of it: "response lost").
* ``cut``: forward the request, relay ``nbytes`` of the answer, then close both sides.
* ``blackhole``: swallow the request and never answer (until the client gives up).
* ``http_503``: answer ``HTTP/1.1 503`` itself (optionally with ``Retry-After``) and
  close; the upstream never sees the request.

Standing settings: ``latency`` (seconds before each new connection reaches the
upstream) and ``chunk_latency`` (seconds before each forwarded chunk, both ways).

A reset is a real RST (``SO_LINGER`` 0), as a crashed peer or a middlebox sends.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal

__all__ = ["FaultKind", "FaultProxy", "PendingFault"]

FaultKind = Literal["refuse", "reset", "cut", "blackhole", "http_503"]
_KINDS = ("refuse", "reset", "cut", "blackhole", "http_503")
_CHUNK = 65536


@dataclass
class PendingFault:
    kind: FaultKind
    after: int  # exchanges still to let through before this fault applies
    times: int  # exchanges it applies to, in a row
    nbytes: int = 0  # cut: answer bytes relayed before the cut
    retry_after: float | None = None  # http_503: the Retry-After header, seconds


def rst_close(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN: the peer sees ECONNRESET."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def http_request_complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole HTTP/1.1 request (headers and Content-Length body)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            with contextlib.suppress(ValueError):
                length = int(value.strip())
    return len(body) >= length


def http_503(retry_after: float | None) -> bytes:
    body = b'{"message": "fault injected by the test proxy", "error_code": "TEMPORARILY_UNAVAILABLE"}'
    headers = [b"HTTP/1.1 503 Service Unavailable", b"Content-Type: application/json",
               b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    if retry_after is not None:
        headers.append(b"Retry-After: " + f"{retry_after:g}".encode())
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


class FaultProxy:
    """``with FaultProxy(port) as proxy:``; point the client at ``proxy.port`` / ``proxy.url``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.latency = 0.0
        self.chunk_latency = 0.0
        self.connections = 0
        self.exchanges = 0
        self.injected: Counter[str] = Counter()
        self._faults: list[PendingFault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)

    # ------------------------------------------------------------------ control
    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(self, kind: FaultKind, *, times: int = 1, after: int = 0, nbytes: int = 0,
               retry_after: float | None = None) -> None:
        """Queue a fault for ``times`` exchanges, ``after`` exchanges from now (counted across
        every connection). Faults queued earlier go first."""
        if kind not in _KINDS:
            raise ValueError(f"unknown fault {kind!r}: expected one of {', '.join(_KINDS)}")
        with self._lock:
            self._faults.append(PendingFault(kind, after, times, nbytes, retry_after))

    def clear(self) -> None:
        """No more faults: the queue is emptied and the standing latencies reset to 0."""
        with self._lock:
            self._faults.clear()
        self.latency = self.chunk_latency = 0.0

    def pending(self) -> int:
        with self._lock:
            return sum(f.times for f in self._faults)

    def drop_connections(self) -> None:
        """Reset every open connection (as a proxy restart would): pooled keep-alive
        connections then start fresh, so the next fault hits a known exchange."""
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            rst_close(sock)

    def total_faults(self) -> int:
        return sum(self.injected.values())

    def __enter__(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(timeout=5)
        _close(self._listener)
        self.drop_connections()
        for t in self._threads:
            t.join(timeout=5)

    # ------------------------------------------------------------------ internals
    def _next_fault(self) -> PendingFault | None:
        """Count one exchange; the fault that applies to it, if any."""
        with self._lock:
            self.exchanges += 1
            if not self._faults:
                return None
            head = self._faults[0]
            if head.after > 0:
                head.after -= 1
                return None
            head.times -= 1
            if head.times <= 0:
                self._faults.pop(0)
            self.injected[head.kind] += 1
            return head

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
                self._threads = [t for t in self._threads if t.is_alive()]
            t = threading.Thread(target=self._serve, args=(client,), name="faultproxy-conn", daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, client: socket.socket) -> None:
        self._track(client, True)
        upstream: socket.socket | None = None
        try:
            if self.latency:
                time.sleep(self.latency)
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
            self._track(upstream, True)
            _Relay(self, client, upstream).run()
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)
            self._track(client, False)
            if upstream is not None:
                self._track(upstream, False)


class _Relay:
    """One connection's two directions, in one thread, with the fault of the current exchange."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.awaiting_request = True  # the next client bytes start an exchange
        self.fault: PendingFault | None = None
        self.cut_left = 0
        self.held = b""  # http_503: the request read so far

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.client, selectors.EVENT_READ, "client")
        sel.register(self.upstream, selectors.EVENT_READ, "upstream")
        try:
            while not self.proxy._stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = sock.recv(_CHUNK)
                    go_on = self.from_client(data) if key.data == "client" else self.from_upstream(data)
                    if not go_on:
                        return
        finally:
            sel.close()

    def from_client(self, data: bytes) -> bool:
        if not data:
            return False
        if self.awaiting_request:
            self.awaiting_request = False
            self.fault = self.proxy._next_fault()
            self.cut_left = self.fault.nbytes if self.fault and self.fault.kind == "cut" else 0
        kind = self.fault.kind if self.fault else None
        if kind == "refuse":
            rst_close(self.client)
            return False
        if kind == "blackhole":
            return True  # swallowed; the client waits for an answer that never comes
        if kind == "http_503":
            self.held += data
            if http_request_complete(self.held):
                assert self.fault is not None
                self.client.sendall(http_503(self.fault.retry_after))
                return False
            return True
        if self.proxy.chunk_latency:
            time.sleep(self.proxy.chunk_latency)
        self.upstream.sendall(data)
        return True

    def from_upstream(self, data: bytes) -> bool:
        if not data:
            with contextlib.suppress(OSError):
                self.client.shutdown(socket.SHUT_WR)
            return False
        kind = self.fault.kind if self.fault else None
        if kind == "reset":
            rst_close(self.client)
            return False
        if kind == "cut":
            self.client.sendall(data[: self.cut_left])
            self.cut_left -= min(self.cut_left, len(data))
            if self.cut_left <= 0:
                return False  # both sides closed by the caller: a truncated answer, then FIN
            self.awaiting_request = True  # a short answer went through whole
            return True
        if self.proxy.chunk_latency:
            time.sleep(self.proxy.chunk_latency)
        self.client.sendall(data)
        self.awaiting_request = True
        self.fault = None
        return True
