"""The local target: an HTTP client of the gateway's admin API."""

from __future__ import annotations

import os
from typing import Any

import requests

from mlops_actions import masking
from mlops_actions.deploy.interface import Rollout, Route
from mlops_actions.deploy.targets.interface import (
    ENVIRONMENT_HEADER,
    WRONG_ENVIRONMENT,
    Desired,
    Reconciled,
    TargetStatus,
)
from mlops_actions.errors import ConfigError, TargetError

__all__ = ["LocalTarget", "read_token"]


def read_token(env_var: str, state_dir: str | os.PathLike[str]) -> str:
    token = os.environ.get(env_var, "").strip()
    if token:
        return token
    path = os.path.join(state_dir, "gateway.token")
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
        masking.found(token)  # read from a file: GitHub does not know to mask it
        return token
    except OSError:
        raise TargetError(f"no admin token: ${env_var} is unset and {path} cannot be read",
                          hint=f"export {env_var}=<the gateway's token>") from None


class LocalTarget:
    """``environment``: the environment this client acts for; the gateway at ``url`` refuses
    every admin call when it serves another one (a staging URL pasted into production.yaml)."""

    def __init__(self, url: str, token: str, timeout: float = 10.0, *,
                 environment: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.environment = environment
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        if environment:
            self._session.headers[ENVIRONMENT_HEADER] = environment
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self._session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise TargetError(f"gateway at {self.url} unreachable: {exc}",
                              hint="start it with `mlops-actions serve --env ENV` or fix target.url",
                              ) from None
        try:
            data: dict[str, Any] = resp.json()
        except ValueError:
            data = {"message": resp.text[:200]}
        if resp.status_code == 401:
            raise TargetError("the gateway refused the admin token (401)",
                              hint="set MLOPS_GATEWAY_TOKEN to the token in the gateway's "
                                   ".mlops/gateway.token")
        if resp.status_code == 409 and data.get("error_code") == WRONG_ENVIRONMENT:
            raise ConfigError(f"target.url {self.url} of environments/{self.environment}.yaml is the "
                              f"gateway of another environment: {data.get('message')}",
                              hint=f"point target.url at the {self.environment} gateway (started with "
                              f"`mlops-actions serve --env {self.environment}`); nothing was changed")
        if resp.status_code >= 400:
            raise TargetError(f"gateway {method} {path} -> {resp.status_code}: {data.get('message', data)}")
        return data

    def reconcile(self, desired: Desired) -> Reconciled:
        body = {"model": desired.model, "version": desired.version, "uri": desired.uri,
                "strategy": desired.strategy, "actor": desired.actor, "version_b_uri": desired.version_b_uri}
        data = self._call("POST", "/admin/rollouts", json=body)
        rollout = Rollout.from_dict(data["rollout"]) if data.get("rollout") else None
        route = Route.from_dict(data["route"]) if data.get("route") else None
        return Reconciled(bool(data.get("changed")), rollout, route)

    def status(self) -> TargetStatus:
        data = self._call("GET", "/admin/status")
        return TargetStatus(data["environment"],
                            {m: Route.from_dict(r) for m, r in data["routes"].items()},
                            {m: Rollout.from_dict(r) for m, r in data["rollouts"].items()})

    def promote(self, model: str, full: bool = False) -> Rollout:
        data = self._call("POST", f"/admin/rollouts/{model}/promote", params={"full": "1" if full else "0"})
        return Rollout.from_dict(data["rollout"])

    def abort(self, model: str, actor: str = "") -> Rollout:
        data = self._call("POST", f"/admin/rollback/{model}", params={"actor": actor or "cli"})
        return Rollout.from_dict(data["rollout"])

    def history(self, model: str | None = None) -> list[dict[str, Any]]:
        params = {"model": model} if model else {}
        result: list[dict[str, Any]] = self._call("GET", "/admin/history", params=params)["history"]
        return result
