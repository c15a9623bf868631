"""Run the gateway of one environment under uvicorn (httptools + uvloop when installed)."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

from mlops_actions.config.loader import load_environment, registered_name
from mlops_actions.config.specs import EnvironmentSpec, LocalTarget
from mlops_actions.deploy.interface import Route
from mlops_actions.deploy.registry_bridge import DeployRegistry, get_deploy_registry
from mlops_actions.errors import ConfigError, TargetError
from mlops_actions.monitoring.store import open_store
from mlops_actions.serving.auth import TOKEN_ENV, load_or_create_token
from mlops_actions.serving.gateway import Gateway, GatewayConfig
from mlops_actions.serving.predlog import LogSampling
from mlops_actions.serving.sticky import StickyForwarder, sticky_from_env

__all__ = ["bind", "build_gateway", "build_single_model_gateway", "listen_address", "registered_name", "run",
           "uvicorn_config"]


def initial_routes(repo: Path, env: EnvironmentSpec, registry: DeployRegistry) -> dict[str, Route]:
    routes = {}
    for key, pin in env.models.items():
        mv = registry.get(registered_name(repo, key), pin.version)
        routes[key] = Route(model=key, stable=pin.version, stable_uri=mv.uri)
    return routes


def build_gateway(repo: Path, env_name: str, store_url: str | None = None, tick_seconds: float = 0.1,
                  registry: DeployRegistry | None = None, max_inflight: int = 512) -> Gateway:
    env_path = repo / "environments" / f"{env_name}.yaml"
    if not env_path.exists():
        known = sorted(p.stem for p in (repo / "environments").glob("*.yaml"))
        raise ConfigError(f"environment {env_name!r} not found at {env_path}",
                          hint=f"environments: {', '.join(known) or 'none'}")
    env = load_environment(env_path)
    if not isinstance(env.target, LocalTarget):
        raise ConfigError(f"environment {env_name!r} targets {env.target.type}; "
                          "`serve` runs the local gateway",
                          hint="use target: {type: local} or deploy with the kubernetes target")
    state_dir = repo / ".mlops"
    token = load_or_create_token(state_dir, env.target.token_env or TOKEN_ENV)
    store = open_store(store_url, repo_root=repo)  # default: <repo>/.mlops/predictions.db
    routes = initial_routes(repo, env, registry or get_deploy_registry(repo))
    return Gateway(GatewayConfig(environment=env_name, state_dir=state_dir, token=token, store=store,
                                 initial_routes=routes, tick_seconds=tick_seconds, max_inflight=max_inflight,
                                 log_sampling=LogSampling.from_environment(env)))


def model_key_from_uri(uri: str) -> str:
    """``models:/churn/3`` or ``models:/churn@prod`` -> ``churn``; else ``model``."""
    if uri.startswith("models:/"):
        rest = uri[len("models:/"):]
        return rest.split("/", 1)[0].split("@", 1)[0] or "model"
    return "model"


def build_single_model_gateway(model_uri: str, *, model: str | None = None, version: str | None = None,
                               environment: str | None = None, store_url: str | None = None,
                               state_dir: Path | None = None, tick_seconds: float = 0.1,
                               max_inflight: int = 512) -> Gateway:
    """One model version per process (a Kubernetes pod): ``serve --model-uri``.

    Names for headers, logs and metric labels come from the flags or from
    ``MLOPS_MODEL``, ``MLOPS_MODEL_VERSION`` and ``MLOPS_ENVIRONMENT`` (set by the
    Kubernetes target). State goes to ``state_dir`` (default: a fresh temp dir). In an A/B
    test the ``MLOPS_AB_*`` variables make the pod forward the other variant's sticky keys
    (:mod:`mlops_actions.serving.sticky`).
    """
    if not model_uri:
        raise ConfigError("--model-uri is empty", hint="set MODEL_URI, e.g. models:/churn/3")
    key = model or os.environ.get("MLOPS_MODEL") or os.environ.get("MLOPS_MODEL_NAME") \
        or model_key_from_uri(model_uri)
    ver = version or os.environ.get("MLOPS_MODEL_VERSION") or "unversioned"
    env_name = environment or os.environ.get("MLOPS_ENVIRONMENT") or "default"
    state = state_dir or Path(tempfile.mkdtemp(prefix="mlops-gateway-"))
    token = load_or_create_token(state)
    store = open_store(store_url or os.environ.get("MLOPS_PREDICTION_STORE")
                       or f"sqlite:///{state / 'predictions.db'}")
    sticky = sticky_from_env(version=ver)  # MLOPS_AB_*: this pod is one variant of an A/B test
    return Gateway(GatewayConfig(environment=env_name, state_dir=state, token=token, store=store,
                                 initial_routes={key: Route(model=key, stable=ver, stable_uri=model_uri)},
                                 tick_seconds=tick_seconds, pin_routes=True, max_inflight=max_inflight,
                                 sticky=StickyForwarder(sticky) if sticky is not None else None))


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


def run(gateway: Gateway, host: str = "127.0.0.1", port: int = 8080) -> None:
    sock = bind(host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"gateway for {gateway.environment} on http://{host}:{port} "
          f"(admin token: ${TOKEN_ENV} or {gateway.config.state_dir / 'gateway.token'})", flush=True)
    server = uvicorn.Server(uvicorn_config(gateway, host, port))

    def stop(why: str) -> None:  # a model did not load: stop serving, exit 3 below
        server.should_exit = True

    gateway.on_start_failure = stop
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if gateway.start_error is not None:
        raise TargetError(f"the gateway did not start: {gateway.start_error}",
                          hint="check the model URIs pinned in the environment and the registry")
