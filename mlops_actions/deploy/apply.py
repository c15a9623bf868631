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

Models that declare ``depends_on`` go in waves (:mod:`mlops_actions.config.order`):
each wave is declared, then watched until every rollout of it is done; when one
of them ends other than Healthy (rolled back, aborted, timed out), the later
waves are not started and are reported as NotStarted, naming the model that
stopped them.
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
from mlops_actions.config.order import waves
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

__all__ = ["NOT_STARTED", "PHASE_WORDS", "TIMEOUT", "ApplyResult", "apply_environment", "environment_lock",
           "load_env", "target_for"]


NOT_STARTED = "NotStarted"  # an ApplyResult's phase: an earlier wave failed, or --wait was not given
TIMEOUT = "Timeout"  # an ApplyResult's phase: still running when the timeout ran out
PHASE_WORDS = {Phase.ROLLED_BACK.value: "rolled back", Phase.ABORTED.value: "aborted",
               Phase.HEALTHY.value: "healthy", TIMEOUT: "did not finish in time", NOT_STARTED: "not started"}


@dataclass(frozen=True)
class ApplyResult:
    model: str
    version: str
    changed: bool
    phase: str  # a rollout Phase's value, TIMEOUT or NOT_STARTED
    message: str
    blocked_by: str = ""  # NOT_STARTED: the model(s) it waited for


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
    """Wave by wave (``depends_on``): declare a wave, watch it to the end, stop at a failure.

    Without ``depends_on`` there is one wave: every model declared together, watched together.
    Without ``wait``, waves are declared until one has a rollout to wait for; the later ones
    are NotStarted (a rerun goes on once that wave is Healthy).
    """
    order = waves(spec.models)
    deadline = time.monotonic() + timeout
    results: list[ApplyResult] = []
    if isinstance(target, LocalClient):
        target.status()  # before any alias moves: a gateway of another environment refuses (exit 2)
    for number, wave in enumerate(order, 1):
        if len(order) > 1:
            progress(f"wave {number}/{len(order)}: {', '.join(wave)}")
        settled, declared = _declare_wave(repo, env, spec, wave, target, registry, actor=actor,
                                          progress=progress, done=done)
        results += settled
        later = [key for rest in order[number:] for key in rest]
        if not wait:
            results += [ApplyResult(key, spec.models[key].version, True, r.phase.value if r else "",
                                    "declared; not waiting") for key, (_, r) in declared.items()]
            if declared and later:
                waiting = ", ".join(declared)
                why = (f"not started: ordering needs --wait; wave {number} ({waiting}) was declared, "
                       f"rerun `mlops-actions apply --env {env}` once it is Healthy, or apply with --wait")
                progress(f"{', '.join(later)}: {why}")
                return results + _not_started(spec, later, waiting, why)
            continue
        finished = _watch(env, spec, declared, target, registry, deadline=deadline, timeout=timeout,
                          poll=poll, progress=progress, done=done)
        results += finished
        failed = next((r for r in finished if r.phase != Phase.HEALTHY.value), None)
        if failed is not None and later:
            words = PHASE_WORDS.get(failed.phase, failed.phase)
            why = (f"not started: {failed.model} {failed.version} {words} "
                   f"in wave {number} of {len(order)}; later waves start once it is Healthy: "
                   f"fix {failed.model} (or its pin) and rerun apply")
            progress(f"stopped: {', '.join(later)} {why}")
            return results + _not_started(spec, later, failed.model, why)
    return results


def _not_started(spec: EnvironmentSpec, keys: list[str], blocked_by: str, why: str) -> list[ApplyResult]:
    return [ApplyResult(key, spec.models[key].version, False, NOT_STARTED, why, blocked_by=blocked_by)
            for key in keys]


Declared = dict[str, tuple[str, Rollout | None]]  # model key -> (registered name, its rollout)


def _declare_wave(repo: Path, env: str, spec: EnvironmentSpec, keys: tuple[str, ...],
                  target: DeploymentTarget, registry: DeployRegistry, *, actor: str,
                  progress: Callable[[str], None], done: list[str]) -> tuple[list[ApplyResult], Declared]:
    """Reconcile each model of a wave: (results of those already live, the rollouts to watch)."""
    results: list[ApplyResult] = []
    declared: Declared = {}
    for key in keys:
        pin = spec.models[key]
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
    return results, declared


def _watch(env: str, spec: EnvironmentSpec, declared: Declared, target: DeploymentTarget,
           registry: DeployRegistry, *, deadline: float, timeout: float, poll: float,
           progress: Callable[[str], None], done: list[str]) -> list[ApplyResult]:
    """Poll the target until every declared rollout is done (or the deadline passes)."""
    results: list[ApplyResult] = []
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
            results += [ApplyResult(key, spec.models[key].version, True, TIMEOUT,
                                    f"still running after {timeout:.0f}s") for key in pending]
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
    if r.strategy.type == "canary":
        registry.delete_alias(name, f"{env}-canary")
