"""Run the gateway of one environment under uvicorn (httptools + uvloop when installed).

The gateway with its rollout host is built by
:func:`mlops_actions.serving.local_plane.build_gateway` (or
``build_single_model_gateway``)."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import socket
import sys
from urllib.parse import urlsplit

import uvicorn

from mlops_actions.errors import ConfigError, TargetError
from mlops_actions.serving.auth import TOKEN_ENV
from mlops_actions.serving.gateway import Gateway

__all__ = ["SWITCH_INTERVAL", "bind", "listen_address", "run", "uvicorn_config"]


def uvicorn_config(gateway: Gateway, host: str, port: int) -> uvicorn.Config:
    has = importlib.util.find_spec
    return uvicorn.Config(
        gateway, host=host, port=port, lifespan="on", access_log=False, log_level="warning",
        loop="uvloop" if has("uvloop") else "asyncio", http="httptools" if has("httptools") else "h11",
        timeout_graceful_shutdown=30, backlog=2048)


def listen_address(url: str, host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """Where the gateway of an environment listens: the host and port of its ``target.url``
    (``http://127.0.0.1:8081`` -> ``("127.0.0.1", 8081)``; no port: 80, or 443 for https);
    ``host``/``port`` given (``serve --host/--port``, e.g. behind a proxy) win."""
    parts = urlsplit(url)
    if port is None:
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ConfigError(f"target.url {url!r} has no valid port") from None
    if host is not None:
        return host, port
    host = parts.hostname or ""
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"target.url {url!r} names the host {host!r}, not an address this machine "
                              "can listen on", hint="pass --host (e.g. --host 0.0.0.0 behind that name) "
                              "or write the address in target.url") from None
    return host, port


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or TargetError when it is taken. Bound before the gateway
    starts, so "ready" is never logged by a gateway that cannot listen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise TargetError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          hint="another process (another gateway?) holds the port: stop it, or change "
                          "the port in target.url (or pass --port)") from None
    return sock


#: while the gateway serves, how long a thread that wants the GIL waits before the event loop must
#: hand it over (CPython's default: 5 ms). The prediction logger's writer thread needs the GIL for
#: a few microseconds per commit, and every request in that commit waits for it while the loop
#: runs the other requests. At 16 connections on the benchmark's logistic regression, 1 ms gave
#: a lower p99 and more requests/s in 8 of 9 alternating restarts (medians 5.95 -> 5.53 ms,
#: 6,150 -> 6,560 req/s); the forest, whose requests spend longer in numpy, was unchanged; 0.5
#: and 0.2 ms were no better.
SWITCH_INTERVAL = 0.001


def run(gateway: Gateway, host: str = "127.0.0.1", port: int = 8080) -> None:
    sock = bind(host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"gateway for {gateway.environment} on http://{host}:{port} "
          f"(admin token: ${TOKEN_ENV} or {gateway.config.state_dir / 'gateway.token'})", flush=True)
    server = uvicorn.Server(uvicorn_config(gateway, host, port))

    def stop(why: str) -> None:  # a model did not load: stop serving, exit 3 below
        server.should_exit = True

    gateway.on_start_failure = stop
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        server.run(sockets=[sock])
    finally:
        sys.setswitchinterval(interval)
        sock.close()
    if gateway.start_error is not None:
        raise TargetError(f"the gateway did not start: {gateway.start_error}",
                          hint="check the model URIs pinned in the environment and the registry")
