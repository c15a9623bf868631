"""The local gateway as a routing plane, and the rollout host composed beside it.

``mlops-actions serve`` runs two components in one process: the gateway
(:mod:`mlops_actions.serving.gateway`, a scoring server with an admin API) and a
:class:`~mlops_actions.deploy.rollout.host.RolloutHost` that owns the state
database and the ticking. They meet here, and only here:

- :class:`GatewayPlane` is the engine's :class:`~mlops_actions.deploy.rollout.plane.RoutingPlane`
  over the gateway (its routing table, model loading, traffic windows and
  prediction store), and tells the gateway's metrics and version cache about rollouts;
- :class:`HostAdmin` answers the gateway's admin API from the host, in JSON;
- :func:`local_gateway` wires the three together (:func:`build_gateway` and
  :func:`build_single_model_gateway` for ``serve``).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from mlops_actions.config.loader import load_environment, registered_name
from mlops_actions.config.specs import (
    AnalysisSpec,
    BlueGreenStrategy,
    EnvironmentSpec,
    LocalTarget,
    duration_seconds,
)
from mlops_actions.deploy.registry_bridge import DeployRegistry, get_deploy_registry
from mlops_actions.deploy.rollout.host import RolloutHost, RolloutRequestError
from mlops_actions.deploy.rollout.plane import VersionSample, Window, sample_window
from mlops_actions.deploy.rollout.record import Phase, Rollout, Route, parse_strategy
from mlops_actions.errors import ConfigError
from mlops_actions.monitoring.store import open_store
from mlops_actions.registry.uris import check_model_uri
from mlops_actions.serving.auth import TOKEN_ENV, load_or_create_token
from mlops_actions.serving.gateway import Gateway, GatewayConfig
from mlops_actions.serving.interface import AdminError
from mlops_actions.serving.predlog import LogSampling
from mlops_actions.serving.pyfunc import load_pyfunc
from mlops_actions.serving.sticky import StickyForwarder, sticky_from_env

__all__ = ["GatewayPlane", "HostAdmin", "build_gateway", "build_single_model_gateway", "initial_routes",
           "local_gateway", "model_key_from_uri"]


class GatewayPlane:
    """RoutingPlane over an in-process gateway; also the host's RolloutListener."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._active: dict[str, Rollout] = {}  # unfinished rollouts: their versions stay loaded

    # -- RoutingPlane
    def route(self, model: str) -> Route | None:
        return self.gateway.route(model)

    def set_route(self, route: Route) -> None:
        self.gateway.set_route(route)

    async def ensure_loaded(self, uri: str) -> None:
        await self.gateway.ensure_loaded(uri)

    def measure(self, model: str, versions: Sequence[str], window: Window,
                spec: AnalysisSpec) -> dict[str, VersionSample]:
        return sample_window(self.gateway.stats, self.gateway.store, model, versions, window, spec)

    # -- RolloutListener
    def rollout_loaded(self, rollout: Rollout) -> None:
        self._track(rollout)

    def rollout_saved(self, rollout: Rollout) -> None:
        self._track(rollout)
        gw = self.gateway
        live = rollout.to_version if rollout.phase is Phase.HEALTHY else rollout.from_version
        gw.metrics.set_deployment(model=rollout.model, environment=gw.environment, version=live,
                                  strategy=rollout.strategy.type, phase=rollout.phase.value,
                                  phases=[p.value for p in Phase])
        gw.metrics.rollout_step.labels(rollout.model, gw.environment).set(rollout.step)
        if rollout.done:
            self._schedule_unload(rollout)

    def _track(self, rollout: Rollout) -> None:
        if rollout.done:
            self._active.pop(rollout.model, None)
        else:
            self._active[rollout.model] = rollout

    def _schedule_unload(self, rollout: Rollout) -> None:
        """Unload versions no route uses: at once, or after blue-green's ``scale_down_delay``."""
        delay = 0.0
        if isinstance(rollout.strategy, BlueGreenStrategy):
            delay = duration_seconds(rollout.strategy.scale_down_delay)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(delay, self._unload_unused)

    def _unload_unused(self) -> None:
        keep = {uri for r in self._active.values() for uri in (r.from_uri, r.to_uri)}
        self.gateway.unload_unused(keep)


def _refused(exc: RolloutRequestError) -> AdminError:
    return AdminError(exc.status, exc.code, exc.message)


class HostAdmin:
    """The gateway's admin API answered by a rollout host (a serving ``RolloutAdmin``)."""

    def __init__(self, host: RolloutHost) -> None:
        self.host = host

    async def start(self) -> None:
        await self.host.start()

    async def stop(self) -> None:
        await self.host.stop()

    def declare(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            model = str(body["model"])
            version = str(body["version"])
            uri = str(body["uri"])
            strategy = parse_strategy(body.get("strategy") or {"type": "full"})
        except KeyError as exc:
            raise AdminError(400, "BAD_REQUEST", f"missing field {exc}; expected model, version, uri, "
                             "strategy") from None
        except PydanticValidationError as exc:
            raise AdminError(400, "BAD_REQUEST", f"invalid strategy: {exc}") from None
        actor = str(body.get("actor") or "admin-api")
        b_uri = str(body["version_b_uri"]) if body.get("version_b_uri") else None
        try:
            done = self.host.declare(model, version, uri, strategy, actor, b_uri)
        except RolloutRequestError as exc:
            raise _refused(exc) from None
        data: dict[str, Any] = {"changed": done.changed}
        if done.rollout is not None:
            data["rollout"] = done.rollout.to_dict()
        if done.route is not None:
            data["route"] = done.route.to_dict()
        return (201 if done.changed else 200), data

    def promote(self, model: str, full: bool) -> dict[str, Any]:
        try:
            return {"rollout": self.host.promote(model, full).to_dict()}
        except RolloutRequestError as exc:
            raise _refused(exc) from None

    def abort(self, model: str, reason: str) -> dict[str, Any]:
        try:
            return {"rollout": self.host.abort(model, reason).to_dict()}
        except RolloutRequestError as exc:
            raise _refused(exc) from None

    def rollback(self, model: str, actor: str) -> dict[str, Any]:
        try:
            return {"rollout": self.host.rollback(model, actor).to_dict()}
        except RolloutRequestError as exc:
            raise _refused(exc) from None

    def rollouts(self) -> dict[str, Any]:
        return {m: r.to_dict() for m, r in self.host.rollouts.items()}

    def history(self, model: str | None) -> list[dict[str, Any]]:
        return self.host.history(model)

    def measurements(self, model: str) -> list[dict[str, Any]]:
        try:
            return [m.to_dict() for m in self.host.measurements(model)]
        except RolloutRequestError as exc:
            raise _refused(exc) from None


def local_gateway(config: GatewayConfig, *, tick: bool = True) -> Gateway:
    """A gateway with a rollout host beside it (its database: ``state_dir/gateway.db``).
    ``tick`` False: the host does not tick on its own (tests drive :meth:`RolloutHost.tick`)."""
    gateway = Gateway(config)
    plane = GatewayPlane(gateway)
    host = RolloutHost(config.environment, config.state_dir / "gateway.db", plane,
                       initial_routes=config.initial_routes, pin_routes=config.pin_routes,
                       tick_seconds=config.tick_seconds if tick else None,
                       check_uri=check_model_uri if config.loader is load_pyfunc else None, listener=plane)
    gateway.admin = HostAdmin(host)
    return gateway


def host_of(gateway: Gateway) -> RolloutHost:
    """The rollout host composed with ``gateway`` by :func:`local_gateway`."""
    admin = gateway.admin
    if not isinstance(admin, HostAdmin):
        raise TypeError("this gateway was not built by local_gateway()")
    return admin.host


# --------------------------------------------------------------------------- serve


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
    return local_gateway(GatewayConfig(environment=env_name, state_dir=state_dir, token=token, store=store,
                                       initial_routes=routes, tick_seconds=tick_seconds,
                                       max_inflight=max_inflight,
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
    return local_gateway(GatewayConfig(
        environment=env_name, state_dir=state, token=token, store=store,
        initial_routes={key: Route(model=key, stable=ver, stable_uri=model_uri)},
        tick_seconds=tick_seconds, pin_routes=True, max_inflight=max_inflight,
        sticky=StickyForwarder(sticky) if sticky is not None else None))
