"""The Kubernetes target behind the shared :class:`DeploymentTarget` port.

``apply_environment`` (``mlops_actions.deploy.apply``) drives any target through
four calls; this adapter answers them from the cluster: ``reconcile`` applies
one model's objects (no waiting: Argo Rollouts runs the rollout, as the rollout
host beside the gateway does for the local target), ``status`` maps each live Argo ``Rollout``
onto the shared :class:`Rollout` record, ``promote`` and ``abort`` patch the
Rollout as ``kubectl argo rollouts`` does, ``undo`` puts the previous revision back.

In ``gateway-api`` mode no controller runs in the cluster: ``status`` (which
``apply --wait`` polls) advances :class:`~.progressive.GatewayApiDriver` one
step per call, so the ``apply`` process runs the rollout engine (:mod:`mlops_actions.deploy.rollout`)
over the HTTPRoute routing plane (:mod:`.plane`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops_actions.config.specs import (
    ABTestStrategy,
    BlueGreenStrategy,
    CanaryStrategy,
    EnvironmentSpec,
    FullStrategy,
    KubernetesTarget,
    ModelPin,
    ModelSpec,
    Strategy,
)
from mlops_actions.deploy.interface import Phase, Rollout, Route
from mlops_actions.deploy.targets.interface import Desired, Reconciled, TargetStatus
from mlops_actions.deploy.targets.kubernetes.client import (
    abort_rollout,
    promote_rollout,
    stable_version,
    undo_rollout,
)
from mlops_actions.deploy.targets.kubernetes.interface import (
    KubeApi,
    KubernetesError,
    Manifest,
    ObjectRef,
    ResolvedVersion,
)
from mlops_actions.deploy.targets.kubernetes.progressive import GatewayApiDriver, PrometheusAnalysis
from mlops_actions.deploy.targets.kubernetes.render import (
    check_shared_namespace,
    dns_label,
    locate,
    version_slug,
)
from mlops_actions.deploy.targets.kubernetes.target import KubernetesDeployTarget
from mlops_actions.errors import ConfigError, Location

__all__ = ["ArgoRolloutsTarget", "rollout_record", "sibling_environments", "target_for_environment"]


_MANUAL_ABORT = re.compile(r"^RolloutAborted: Rollout aborted update to revision \d+\.?$")


def _phase(status: Mapping[str, Any], observed: bool) -> Phase:
    """Argo's phase as the shared Phase; an abort with a reason (failed metric,
    progress deadline) is an automatic rollback, a bare abort is a person's."""
    phase = status.get("phase")
    if not observed:
        return Phase.PROGRESSING  # the controller has not seen this generation yet
    if phase == "Healthy":
        return Phase.HEALTHY
    if phase == "Paused":
        return Phase.PAUSED
    if phase == "Degraded":
        if status.get("abort"):
            manual = _MANUAL_ABORT.match(str(status.get("message", "")).strip())
            return Phase.ABORTED if manual else Phase.ROLLED_BACK
        return Phase.DEGRADED
    return Phase.PROGRESSING


def _env_value(obj: Manifest, name: str) -> str:
    containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    return next((str(e.get("value", "")) for e in containers[0].get("env", []) if e.get("name") == name), "")


def rollout_record(obj: Manifest, environment: str, model: str, strategy: Strategy,
                   stable: str | None = None) -> Rollout:
    """An Argo ``Rollout`` object as the shared :class:`Rollout` record (``stable``: the
    version of the stable ReplicaSet, when known)."""
    meta = obj.get("metadata", {})
    status = obj.get("status") or {}
    weights = (status.get("canary") or {}).get("weights") or {}
    weight = int((weights.get("canary") or {}).get("weight") or 0)
    generation = meta.get("generation")
    observed = generation is None or str(status.get("observedGeneration", "")) == str(generation)
    phase = _phase(status, observed)
    if phase is Phase.HEALTHY:
        weight = 0
    version = _env_value(obj, "MLOPS_MODEL_VERSION")
    version_a = str((meta.get("annotations") or {}).get("mlops-actions.io/ab-version-a", ""))
    message = str(status.get("message", ""))
    if isinstance(strategy, ABTestStrategy) and version_a:
        # The A/B Rollout pauses at its last step for as long as the test runs: that is the
        # running state (the local gateway's A/B rollout is Healthy then); A stays the pin.
        if phase is Phase.PAUSED:
            phase, message = Phase.HEALTHY, f"A/B test running: A={version_a}, B={version}"
        version = version_a
    return Rollout(
        id=f"{meta.get('namespace', '')}/{meta.get('name', '')}@{meta.get('generation', 0)}",
        environment=environment, model=model,
        from_version=str((meta.get("annotations") or {}).get("mlops-actions.io/ab-version-a", "")
                         or stable or ""),
        from_uri="", to_version=version, to_uri=_env_value(obj, "MODEL_URI"), strategy=strategy,
        phase=phase, step=int(status.get("currentStepIndex") or 0), weight=weight, message=message)


class ArgoRolloutsTarget:
    """``DeploymentTarget`` for an environment whose target is ``kubernetes``."""

    def __init__(self, api: KubeApi, env_name: str, env: EnvironmentSpec, models: Mapping[str, ModelSpec],
                 *, source: str | None = None, display_source: str | None = None,
                 progress: Callable[[str], None] = lambda _m: None) -> None:
        if not isinstance(env.target, KubernetesTarget):
            raise ConfigError(f"environment {env_name!r} does not have a kubernetes target")
        self.api = api
        self.env_name = env_name
        self.env = env
        self.target: KubernetesTarget = env.target
        self.models = models
        self.source = source
        self.display_source = display_source
        self.progress = progress
        self._strategies: dict[str, Strategy] = {k: p.strategy for k, p in env.models.items()}
        self._declared: dict[str, tuple[ModelPin, dict[str, str | None]]] = {}
        self._drives: dict[str, Rollout] = {}
        self.driver = GatewayApiDriver(
            env_name, {}, PrometheusAnalysis(self.target.prometheus_url), self._live_weights,
            self._set_weight, progress=progress)

    def _one(self, model: str, pin: ModelPin, uris: Mapping[str, str | None]) -> KubernetesDeployTarget:
        def resolve(key: str, spec: ModelSpec, version: str) -> ResolvedVersion:
            uri = uris.get(version)
            if not uri:
                raise KubernetesError(f"no model URI for {key} {version} in the desired state")
            return ResolvedVersion(spec.name, version, uri)

        env = self.env.model_copy(update={"models": {model: pin}})
        return KubernetesDeployTarget(self.api, self.env_name, env, self.models, resolve, source=self.source,
                                      display_source=self.display_source, progress=self.progress)

    def reconcile(self, desired: Desired) -> Reconciled:
        pin = ModelPin.model_validate({"version": desired.version, "strategy": desired.strategy})
        uris: dict[str, str | None] = {desired.version: desired.uri}
        version_b = desired.strategy.get("version_b")
        if isinstance(version_b, str):
            uris[version_b] = desired.version_b_uri
        result = self._one(desired.model, pin, uris).reconcile(wait=False, prune=False)
        self._strategies[desired.model] = pin.strategy
        self._declared[desired.model] = (pin, uris)
        changed = bool(result.report.applied)
        if self.target.mode == "gateway-api" and isinstance(pin.strategy, CanaryStrategy | BlueGreenStrategy):
            self.driver.pins[desired.model] = pin
            drive = self.driver.start(desired.model)
            self._drives[desired.model] = drive
            changed = changed or not drive.done
        return Reconciled(changed, self._record(desired.model), self._route(desired.model))

    # -- gateway-api mode: the weights, for the driver

    def _live_weights(self, model: str) -> tuple[str | None, int | None]:
        """(the other version on the model's live HTTPRoute, the pinned version's weight)."""
        pin, uris = self._declared.get(model) or (self.env.models[model], {})
        old, weight = self._one(model, pin, uris)._live_gateway(model)
        return (old.version if old is not None else None), weight

    def _set_weight(self, model: str, weight: int | None) -> None:
        pin, uris = self._declared[model]
        one = self._one(model, pin, uris)
        manifests = one.desired(drop_previous=frozenset({model})) if weight is None \
            else one.desired(weights={model: weight})
        one._apply_gateway(model, manifests)

    def _drive(self, model: str) -> Rollout | None:
        """Advance the model's gateway-api rollout one step (this process runs its engine)."""
        drive = self._drives.get(model)
        if drive is not None and not drive.done:
            drive = self._drives[model] = self.driver.tick(drive)
        return drive

    def _record(self, model: str) -> Rollout | None:
        ns = self.target.namespace
        name = dns_label(model)
        if self.target.mode == "argo-rollouts":
            obj = self.api.get(ObjectRef("argoproj.io/v1alpha1", "Rollout", ns, name))
            if obj is None:
                return None
            return rollout_record(obj, self.env_name, model, self._strategy(model),
                                  stable_version(self.api, obj))
        deployments = self.api.list("apps/v1", "Deployment", ns, f"app.kubernetes.io/name={name}")
        if not deployments:
            return None
        ready = all((d.get("status") or {}).get("availableReplicas", 0) >= d["spec"].get("replicas", 1)
                    for d in deployments)
        newest = max(deployments, key=lambda d: str(d["metadata"].get("creationTimestamp", "")))
        record = rollout_record(newest, self.env_name, model, self._strategy(model))
        drive = self._drives.get(model)
        if drive is not None:
            old, _ = self._live_weights(model)
            return dataclasses.replace(record, to_version=drive.to_version, from_version=old or "",
                                       phase=drive.phase if ready or drive.done else Phase.PROGRESSING,
                                       step=drive.step, weight=drive.weight, message=drive.message,
                                       measurements=drive.measurements)
        if isinstance(self.env.models[model].strategy, CanaryStrategy | BlueGreenStrategy):
            old, weight = self._live_weights(model)  # another process drives it: show its weights
            if old is not None:
                pinned = self.env.models[model].version
                phase = Phase.ROLLED_BACK if weight == 0 else Phase.PROGRESSING
                message = (f"{weight or 0}% to {pinned}, the rest to {old} "
                           "(stepped by the apply that declared it)")
                return dataclasses.replace(record, to_version=pinned, from_version=old, phase=phase,
                                           weight=weight or 0, message=message)
        return dataclasses.replace(record, phase=Phase.HEALTHY if ready else Phase.PROGRESSING)

    def _strategy(self, model: str) -> Strategy:
        return self._strategies.get(model) or FullStrategy(type="full")

    def _route(self, model: str) -> Route | None:
        """The route once the model is fully rolled out (Argo keeps the weights during a rollout)."""
        record = self._record(model)
        if record is None or record.phase is not Phase.HEALTHY:
            return None
        return Route(model=model, stable=record.to_version, stable_uri=record.to_uri)

    def status(self) -> TargetStatus:
        """Live rollouts and routes; in gateway-api mode each call also advances the rollouts."""
        rollouts: dict[str, Rollout] = {}
        routes: dict[str, Route] = {}
        for key in sorted(self.env.models):
            self._drive(key)
            record = self._record(key)
            if record is not None:
                rollouts[key] = record
                routes[key] = self._live_route(key, record)
        return TargetStatus(self.env_name, routes, rollouts)

    def _live_route(self, model: str, record: Rollout) -> Route:
        """What serves the model now: the stable version, and the candidate while a rollout runs."""
        strategy = self._strategy(model)
        mode = {"ab_test": "ab_test", "blue_green": "blue_green"}.get(strategy.type, "canary")
        running = record.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.ANALYZING, Phase.DEGRADED)
        if isinstance(strategy, ABTestStrategy) and record.phase is not Phase.ROLLED_BACK:
            return Route(model=model, stable=record.to_version, stable_uri="",
                         candidate=strategy.version_b, candidate_uri=record.to_uri, mode="ab_test",
                         weight=round(strategy.traffic_split * 100), sticky_header=strategy.sticky_header)
        if running and record.from_version and record.from_version != record.to_version:
            return Route(model=model, stable=record.from_version, stable_uri="", candidate=record.to_version,
                         candidate_uri=record.to_uri, mode=mode, weight=record.weight)
        stable = record.to_version if record.phase is Phase.HEALTHY or not record.from_version \
            else record.from_version
        return Route(model=model, stable=stable,
                     stable_uri=record.to_uri if stable == record.to_version else "")

    def promote(self, model: str, full: bool = False) -> Rollout:
        if self.target.mode == "argo-rollouts":
            promote_rollout(self.api, self.target.namespace, dns_label(model), full=full)
        else:
            self._gateway_target(model, "promote").promote(model, full=full)
        return self._live(model)

    def abort(self, model: str, actor: str = "") -> Rollout:
        if self.target.mode == "argo-rollouts":
            abort_rollout(self.api, self.target.namespace, dns_label(model))
        else:
            self._gateway_target(model, "abort").abort(model)
        return self._live(model)

    def undo(self, model: str) -> tuple[str | None, Rollout]:
        """``kubectl argo rollouts undo``: the Rollout's previous revision goes back in as its pod
        template, and Argo rolls it out with the Rollout's strategy. Argo CD's self-heal (or the
        next ``apply``) puts the pinned version back unless the pin in git is reverted too."""
        if self.target.mode != "argo-rollouts":
            raise ConfigError(f"undo needs Argo Rollouts' revision history; environment {self.env_name!r} "
                              "runs in gateway-api mode", hint=f"mlops-actions rollback-pr --model {model} "
                              f"--env {self.env_name} restores the previous pin; merge it and apply")
        restored, _ = undo_rollout(self.api, self.target.namespace, dns_label(model))
        return restored, self._live(model)

    def _gateway_target(self, model: str, verb: str) -> KubernetesDeployTarget:
        """The model's target in gateway-api mode: the desired state declared in this process, else
        the pinned versions' MLflow URIs read back from their live Deployments (``MODEL_URI``)."""
        if model in self._declared:
            return self._one(model, *self._declared[model])
        pin = self.env.pin(model, self.env_name)
        versions = [pin.version]
        if isinstance(pin.strategy, ABTestStrategy):
            versions.append(pin.strategy.version_b)
        uris: dict[str, str | None] = {v: self._live_uri(model, v) for v in versions}
        missing = [v for v, uri in uris.items() if not uri]
        if missing:
            raise KubernetesError(f"cannot {verb} {model}: version(s) {', '.join(missing)} have no "
                                  f"Deployment in namespace {self.target.namespace}",
                                  hint="apply the environment first")
        return self._one(model, pin, uris)

    def _live_uri(self, model: str, version: str) -> str | None:
        name = f"{dns_label(model)}-{version_slug(version)}"
        deployment = self.api.get(ObjectRef("apps/v1", "Deployment", self.target.namespace, name))
        if deployment is None:
            return None
        return _env_value(deployment, "MODEL_URI") or None

    def _live(self, model: str) -> Rollout:
        record = self._record(model)
        if record is None:
            raise KubernetesError(f"model {model!r} has no Rollout in namespace {self.target.namespace}",
                                  hint="apply the environment first")
        return record


def sibling_environments(root: Path, env_file: Path) -> dict[str, EnvironmentSpec]:
    """The other environment files next to ``env_file`` that load (the broken ones are ``check``'s)."""
    from mlops_actions.config.loader import load_environment

    out: dict[str, EnvironmentSpec] = {}
    for path in sorted((root / "environments").glob("*.yaml")):
        if path.resolve() == env_file.resolve():
            continue
        try:
            spec = load_environment(path)
        except ConfigError:
            continue
        out[spec.name or path.stem] = spec
    return out


def target_for_environment(repo: str | Path, env_name: str, *, kubeconfig: str | None = None,
                           timeout: float = 10.0,
                           progress: Callable[[str], None] = lambda _m: None) -> ArgoRolloutsTarget:
    """The DeploymentTarget of ``environments/<env_name>.yaml`` when its target is ``kubernetes``.

    For ``deploy.apply.target_for``: kubeconfig (``target.context``) or in-cluster config.
    """
    from mlops_actions.config.loader import load_environment, load_model
    from mlops_actions.deploy.targets.kubernetes.client import connect

    root = Path(repo)
    path = root / "environments" / f"{env_name}.yaml"
    spec = load_environment(path)
    if not isinstance(spec.target, KubernetesTarget):
        raise ConfigError(f"environment {env_name!r} has target type {spec.target.type!r}, not kubernetes")
    check_shared_namespace(spec.name or env_name, spec, sibling_environments(root, path), str(path))
    models = {key: load_model(root / "models" / key / "model.yaml") for key in spec.models
              if (root / "models" / key / "model.yaml").exists()}
    origin = locate(str(path), ["target"]) or Location(str(path))
    origin = Location(f"environments/{env_name}.yaml", origin.line, origin.column)
    api = connect(context=spec.target.context, kubeconfig=kubeconfig, timeout=timeout, origin=origin)
    return ArgoRolloutsTarget(api, spec.name or env_name, spec, models, source=str(path),
                              display_source=f"environments/{env_name}.yaml", progress=progress)
