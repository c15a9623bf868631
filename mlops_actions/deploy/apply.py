"""Apply an environment file to its local target: aliases, then rollouts, then watch.

Idempotent: a model whose live route already matches its pin (and has no
rollout running) is left alone. One apply per environment at a time
(``.mlops/apply-<env>.lock``, an ``flock``); the environment file is read again
once the lock is held, so a run that waited behind another never applies the
older file it started with (it is superseded by the file now on disk, and says so).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlops_actions.config.loader import load_environment
from mlops_actions.config.specs import ABTestStrategy, CanaryStrategy, EnvironmentSpec, LocalTarget
from mlops_actions.deploy.interface import Phase, Rollout
from mlops_actions.deploy.registry_bridge import DeployRegistry, get_deploy_registry
from mlops_actions.deploy.targets.interface import DeploymentTarget, Desired
from mlops_actions.deploy.targets.local import LocalTarget as LocalClient
from mlops_actions.deploy.targets.local import read_token
from mlops_actions.errors import ConfigError, TargetError

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


def target_for(repo: Path, spec: EnvironmentSpec) -> LocalClient:
    if not isinstance(spec.target, LocalTarget):
        raise ConfigError(f"this command drives the local gateway; the environment targets "
                          f"{spec.target.type}",
                          hint="use the kubernetes commands for kubernetes targets")
    return LocalClient(spec.target.url, read_token(spec.target.token_env, repo / ".mlops"))


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


def _name(repo: Path, key: str) -> str:
    from mlops_actions.serving.server import registered_name

    return registered_name(repo, key)


def apply_environment(repo: Path, env: str, *, target: DeploymentTarget | None = None,
                      registry: DeployRegistry | None = None, wait: bool = True, timeout: float = 1800.0,
                      poll: float = 0.5, actor: str = "", progress: Callable[[str], None] = print
                      ) -> list[ApplyResult]:
    spec = load_env(repo, env)  # bad input fails before waiting for the lock
    registry = registry or get_deploy_registry(repo)
    actor = actor or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER", "unknown")
    results: list[ApplyResult] = []
    with environment_lock(repo, env, on_wait=progress):
        current = load_env(repo, env)
        if current != spec:
            progress(f"superseded: environments/{env}.yaml changed while this apply waited for the lock; "
                     "applying the file now on disk")
            spec = current
        target = target or target_for(repo, spec)
        declared: dict[str, tuple[str, Rollout | None]] = {}
        for key, pin in spec.models.items():
            name = _name(repo, key)
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
            if not rec.changed and (rec.rollout is None or rec.rollout.done):
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


def _settle_aliases(registry: DeployRegistry, name: str, env: str, r: Rollout) -> None:
    if r.phase is Phase.HEALTHY:
        registry.set_alias(name, env, r.to_version)
    if r.strategy.get("type") == "canary":
        registry.delete_alias(name, f"{env}-canary")
