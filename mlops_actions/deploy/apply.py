"""Apply an environment file to its target: aliases, then rollouts, then watch.

The target is the environment's: the local gateway's admin API, or a cluster
(``target: {type: kubernetes}``: Argo Rollouts, or Gateway API weights stepped by
this process) through the same :class:`DeploymentTarget` port.

Idempotent: a model whose live route already matches its pin (and has no
rollout running) is left alone. One apply per environment at a time
(``.mlops/apply-<env>.lock``, an ``flock``); the environment file is read again
once the lock is held, so a run that waited behind another never applies the
older file it started with (it is superseded by the file now on disk, and says so).

When an outside system fails part-way (MLflow, the gateway), the error says
which steps were already done (aliases moved, rollouts declared or finished), so
no environment is left half-applied without a record of it; a rerun converges,
since every step is idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_actions.config.loader import load_environment, registered_name
from mlops_actions.config.specs import (
    ABTestStrategy,
    CanaryStrategy,
    EnvironmentSpec,
    KubernetesTarget,
    LocalTarget,
)
from mlops_actions.deploy.interface import Phase, Rollout
from mlops_actions.deploy.registry_bridge import DeployRegistry, get_deploy_registry
from mlops_actions.deploy.targets.interface import DeploymentTarget, Desired
from mlops_actions.deploy.targets.local import LocalTarget as LocalClient
from mlops_actions.deploy.targets.local import read_token
from mlops_actions.errors import ConfigError, ExternalError, TargetError

__all__ = ["ApplyResult", "apply_environment", "environment_lock", "load_env", "target_for"]


@dataclass(frozen=True)
class ApplyResult:
    model: str
    version: str
    changed: bool
    phase: str
    message: str


def load_env(repo: Path, env: str) -> EnvironmentSpec:
    path = repo / "environments" / f"{env}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (repo / "environments").glob("*.yaml"))
        raise ConfigError(f"environment {env!r} not found at {path}",
                          hint=f"environments: {', '.join(known) or 'none'}")
    return load_environment(path)


def target_for(repo: Path, spec: EnvironmentSpec, env: str | None = None, *,
               progress: Callable[[str], None] = print) -> DeploymentTarget:
    """The environment's DeploymentTarget: the local gateway, or the cluster of a kubernetes target
    (kubeconfig context ``target.context``, ``$KUBECONFIG``, or in-cluster config)."""
    if isinstance(spec.target, KubernetesTarget):
        from mlops_actions.deploy.targets.kubernetes.adapter import target_for_environment

        name = env or spec.name
        if not name:
            raise ConfigError("a kubernetes target needs the environment's name to find its file")
        return target_for_environment(repo, name, progress=progress)
    if not isinstance(spec.target, LocalTarget):  # pragma: no cover - the spec's union has two members
        raise ConfigError(f"unknown target type {spec.target.type!r}: expected local or kubernetes")
    return LocalClient(spec.target.url, read_token(spec.target.token_env, repo / ".mlops"),
                       environment=env or spec.name)


@contextlib.contextmanager
def environment_lock(repo: Path, env: str, timeout: float = 600.0,
                     on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    path = repo / ".mlops" / f"apply-{env}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if on_wait is not None and not told:
                    on_wait(f"another apply of {env} holds {path}: waiting up to {timeout:.0f} s")
                    told = True
                if time.monotonic() > deadline:
                    raise TargetError(f"another apply holds the lock for {env} ({path})",
                                      hint="wait for it to finish") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def apply_environment(repo: Path, env: str, *, target: DeploymentTarget | None = None,
                      registry: DeployRegistry | None = None, wait: bool = True, timeout: float = 1800.0,
                      poll: float = 0.5, actor: str = "", progress: Callable[[str], None] = print
                      ) -> list[ApplyResult]:
    spec = load_env(repo, env)  # bad input fails before waiting for the lock
    registry = registry or get_deploy_registry(repo)
    actor = actor or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER", "unknown")
    done: list[str] = []  # the steps already taken, for the error of an apply stopped part-way
    with environment_lock(repo, env, on_wait=progress):
        current = load_env(repo, env)
        if current != spec:
            progress(f"superseded: environments/{env}.yaml changed while this apply waited for the lock; "
                     "applying the file now on disk")
            spec = current
        target = target or target_for(repo, spec, env, progress=progress)
        try:
            return _apply_locked(repo, env, spec, target, _Journal(registry, done), wait=wait,
                                 timeout=timeout, poll=poll, actor=actor, progress=progress, done=done)
        except ExternalError as exc:
            if not done:
                raise
            raise _stopped_part_way(exc, env, done) from None


def _stopped_part_way(exc: ExternalError, env: str, done: list[str]) -> ExternalError:
    """The same error (same class, same exit code), saying what this apply had already changed."""
    steps = "; ".join(done)
    err = type(exc)(f"apply of {env} stopped part-way: {exc.message}",
                    hint=f"already done: {steps}. Every step is idempotent: rerun "
                         f"`mlops-actions apply --env {env}` when the outside system is back "
                         f"and it converges" + (f" ({exc.hint})" if exc.hint else ""))
    err.exit_code = exc.exit_code
    return err


class _Journal:
    """The registry, with each alias change it made written down (for :func:`_stopped_part_way`)."""

    def __init__(self, registry: DeployRegistry, done: list[str]) -> None:
        self._registry = registry
        self._done = done

    def get(self, name: str, version: str) -> Any:
        return self._registry.get(name, version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._registry.set_alias(name, alias, version)
        self._done.append(f"MLflow alias {name}@{alias} -> {version}")

    def delete_alias(self, name: str, alias: str) -> None:
        self._registry.delete_alias(name, alias)


def _apply_locked(repo: Path, env: str, spec: EnvironmentSpec, target: DeploymentTarget,
                  registry: DeployRegistry, *, wait: bool, timeout: float, poll: float, actor: str,
                  progress: Callable[[str], None], done: list[str]) -> list[ApplyResult]:
    results: list[ApplyResult] = []
    declared: dict[str, tuple[str, Rollout | None]] = {}
    if isinstance(target, LocalClient):
        target.status()  # before any alias moves: a gateway of another environment refuses (exit 2)
    for key, pin in spec.models.items():
        name = registered_name(repo, key)
        mv = registry.get(name, pin.version)
        strategy = pin.strategy
        b_uri = None
        if isinstance(strategy, ABTestStrategy):
            b_uri = registry.get(name, strategy.version_b).uri
            registry.set_alias(name, f"{env}-b", strategy.version_b)
        desired = Desired(model=key, version=pin.version, uri=mv.uri,
                          strategy=strategy.model_dump(mode="json", by_alias=True), actor=actor,
                          version_b_uri=b_uri)
        rec = target.reconcile(desired)
        if rec.changed:
            done.append(f"{key} {pin.version} declared to the {env} target ({strategy.type})")
        held = _held_back(rec.rollout, pin.version)
        if not rec.changed and held is not None:
            progress(f"{key}: {held}")
            results.append(ApplyResult(key, pin.version, False, Phase.ROLLED_BACK.value, held))
            continue
        if not rec.changed and (rec.rollout is None or rec.rollout.phase is Phase.HEALTHY):
            registry.set_alias(name, env, pin.version)  # live matches git: so must the alias
            registry.delete_alias(name, f"{env}-canary")  # no rollout runs
            progress(f"{key}: {pin.version} already live in {env}: no change")
            results.append(ApplyResult(key, pin.version, False, Phase.HEALTHY.value, "no change"))
            continue
        if isinstance(strategy, CanaryStrategy):
            registry.set_alias(name, f"{env}-canary", pin.version)
        progress(f"{key}: rolling out {pin.version} with {strategy.type}")
        declared[key] = (name, rec.rollout)
    if not wait:
        for key, (_, r) in declared.items():
            results.append(ApplyResult(key, spec.models[key].version, True,
                                       r.phase.value if r else "", "declared; not waiting"))
        return results
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    pending = dict(declared)
    while pending:
        status = target.status()
        for key in list(pending):
            r = status.rollouts.get(key)
            if r is None:
                continue
            line = f"{key}: {r.phase.value} step {r.step} weight {r.weight}% - {r.message}"
            if last.get(key) != line:
                progress(line)
                last[key] = line
            if r.done:
                name = pending.pop(key)[0]
                live = r.to_version if r.phase is Phase.HEALTHY else r.from_version
                done.append(f"{key} rollout {r.phase.value}: {live} live")
                _settle_aliases(registry, name, env, r)
                results.append(ApplyResult(key, r.to_version, True, r.phase.value, r.message))
        if pending and time.monotonic() > deadline:
            for key in pending:
                results.append(ApplyResult(key, spec.models[key].version, True,
                                           "Timeout", f"still running after {timeout:.0f}s"))
            break
        if pending:
            time.sleep(poll)
    return results


def _held_back(rollout: Rollout | None, version: str) -> str | None:
    """Why the pinned ``version`` is not rolled out again: its last rollout was rolled back
    automatically, and the pin has not changed since (rerunning apply must not start the
    failed canary again). None when there is no such rollout."""
    if rollout is None or rollout.phase is not Phase.ROLLED_BACK or rollout.to_version != version:
        return None
    reason = f" ({rollout.message})" if rollout.message else ""
    return (f"{version} was rolled back automatically{reason}; {rollout.from_version} stays live until "
            f"the pin changes: open the rollback PR (mlops-actions rollback-pr) or pin a fixed version")


def _settle_aliases(registry: DeployRegistry, name: str, env: str, r: Rollout) -> None:
    if r.phase is Phase.HEALTHY:
        registry.set_alias(name, env, r.to_version)
    if r.strategy.get("type") == "canary":
        registry.delete_alias(name, f"{env}-canary")
