"""Run the gateway of one environment under uvicorn (httptools + uvloop when installed)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import uvicorn

from mlops_actions.config.loader import load_environment
from mlops_actions.config.specs import EnvironmentSpec, LocalTarget
from mlops_actions.deploy.interface import Route
from mlops_actions.deploy.registry_bridge import DeployRegistry, get_deploy_registry
from mlops_actions.errors import ConfigError
from mlops_actions.serving.auth import TOKEN_ENV, load_or_create_token
from mlops_actions.serving.gateway import Gateway, GatewayConfig
from mlops_actions.serving.stores import open_store

__all__ = ["build_gateway", "registered_name", "run", "uvicorn_config"]


def registered_name(repo: Path, key: str) -> str:
    """The MLflow name of ``models/<key>``: its model.yaml ``name``, else the key itself."""
    path = repo / "models" / key / "model.yaml"
    if path.exists():
        from mlops_actions.config.loader import load_model

        return load_model(path).name
    return key


def initial_routes(repo: Path, env: EnvironmentSpec, registry: DeployRegistry) -> dict[str, Route]:
    routes = {}
    for key, pin in env.models.items():
        mv = registry.get(registered_name(repo, key), pin.version)
        routes[key] = Route(model=key, stable=pin.version, stable_uri=mv.uri)
    return routes


def build_gateway(repo: Path, env_name: str, store_url: str | None = None, tick_seconds: float = 0.1,
                  registry: DeployRegistry | None = None) -> Gateway:
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
    store = open_store(store_url or f"sqlite:///{state_dir / 'predictions.db'}")
    routes = initial_routes(repo, env, registry or get_deploy_registry())
    return Gateway(GatewayConfig(environment=env_name, state_dir=state_dir, token=token, store=store,
                                 initial_routes=routes, tick_seconds=tick_seconds))


def uvicorn_config(gateway: Gateway, host: str, port: int) -> uvicorn.Config:
    has = importlib.util.find_spec
    return uvicorn.Config(
        gateway, host=host, port=port, lifespan="on", access_log=False, log_level="warning",
        loop="uvloop" if has("uvloop") else "asyncio", http="httptools" if has("httptools") else "h11",
        timeout_graceful_shutdown=30, backlog=2048)


def run(gateway: Gateway, host: str = "127.0.0.1", port: int = 8080) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"gateway for {gateway.environment} on http://{host}:{port} "
          f"(admin token: ${TOKEN_ENV} or {gateway.config.state_dir / 'gateway.token'})", flush=True)
    uvicorn.Server(uvicorn_config(gateway, host, port)).run()
