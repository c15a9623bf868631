"""The Kubernetes deployment target: reconcile / status / promote / abort (Flagger-router shape).

Argo Rollouts (or plain Deployments + HTTPRoute weights) runs the rollout inside
the cluster; this class declares the desired objects, watches the outcome and
reads the live state back. Nothing here keeps state in the runner: a killed CI
job leaves the rollout running in the cluster, and the next ``reconcile`` is an
idempotent re-apply that watches again.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_actions.config.specs import (
    ABTestStrategy,
    BlueGreenStrategy,
    CanaryStrategy,
    EnvironmentSpec,
    FullStrategy,
    KubernetesTarget,
    ModelSpec,
)
from mlops_actions.deploy.targets.kubernetes.client import (
    abort_rollout,
    apply_all,
    promote_rollout,
    read_rollout,
    wait_for_rollout,
)
from mlops_actions.deploy.targets.kubernetes.interface import (
    ApplyReport,
    KubeApi,
    KubernetesError,
    Manifest,
    ObjectRef,
    ResolvedVersion,
    RolloutPhase,
    RolloutStatus,
)
from mlops_actions.deploy.targets.kubernetes.render import (
    LABEL_ENVIRONMENT,
    Resolver,
    ab_environment,
    dns_label,
    render_environment,
    selector_for_environment,
    version_slug,
)
from mlops_actions.errors import CheckFailed, ConfigError

__all__ = ["KubernetesDeployTarget", "PlanAction", "PlanItem", "ReconcileResult"]


class PlanAction(enum.StrEnum):
    """What applying would do to one object."""

    CREATE = "create"  #: absent in the cluster
    UPDATE = "update"  #: present, and the server-side dry run changes it
    UNCHANGED = "unchanged"  #: present and already as declared
    PRUNE = "prune"  #: ours, no longer declared (deleted only with prune on)


@dataclass(frozen=True)
class PlanItem:
    ref: ObjectRef
    action: PlanAction


@dataclass(frozen=True)
class ReconcileResult:
    report: ApplyReport
    rollouts: tuple[RolloutStatus, ...]

    @property
    def settled(self) -> bool:
        return all(r.phase in (RolloutPhase.HEALTHY, RolloutPhase.PAUSED) for r in self.rollouts)


def _comparable(obj: Manifest) -> Manifest:
    meta = obj.get("metadata", {})
    return {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {},
            "spec": obj.get("spec")}


class KubernetesDeployTarget:
    """One environment on one cluster."""

    def __init__(self, api: KubeApi, env_name: str, env: EnvironmentSpec, models: Mapping[str, ModelSpec],
                 resolve: Resolver, *, source: str | None = None, display_source: str | None = None,
                 progress: Callable[[str], None] = lambda _m: None,
                 previous: Mapping[str, ResolvedVersion] | None = None) -> None:
        if not isinstance(env.target, KubernetesTarget):
            raise ConfigError(f"environment {env_name!r} does not have a kubernetes target")
        self.api = api
        self.env_name = env_name
        self.env = env
        self.target: KubernetesTarget = env.target
        self.models = models
        self.resolve = resolve
        self.source = source
        self.display_source = display_source
        self.progress = progress
        self.previous = previous

    def desired(self, *, drop_previous: frozenset[str] = frozenset(),
                weights: Mapping[str, int] | None = None) -> list[Manifest]:
        """The manifests to apply. In gateway-api mode the version live now (read
        from the cluster unless given) stays beside the pinned one at its current weight."""
        previous = dict(self.previous or {})
        live_weights: dict[str, int] = {}
        if self.target.mode == "gateway-api" and self.previous is None:
            for key, pin in self.env.models.items():
                if isinstance(pin.strategy, CanaryStrategy | BlueGreenStrategy):
                    old, weight = self._live_gateway(key)
                    if old is not None:
                        previous[key] = old
                        if weight is not None:
                            live_weights[key] = weight
        for key in drop_previous:
            previous.pop(key, None)
        return render_environment(self.env_name, self.env, self.models, self.resolve, source=self.source,
                                  display_source=self.display_source, previous=previous,
                                  weights={**live_weights, **(weights or {})})

    def _live_gateway(self, key: str) -> tuple[ResolvedVersion | None, int | None]:
        """gateway-api mode: (the other version the live HTTPRoute sends traffic to, the
        pinned version's live weight or None when it has none yet)."""
        ns, name = self.target.namespace, dns_label(key)
        route = self.api.get(ObjectRef("gateway.networking.k8s.io/v1", "HTTPRoute", ns, name))
        if route is None:
            return None, None
        pinned = f"{name}-{version_slug(self.env.models[key].version)}"
        plain = [b for rule in route.get("spec", {}).get("rules", []) if not rule.get("matches")
                 for b in rule.get("backendRefs", [])]
        others = sorted((b for b in plain if b.get("name") != pinned), key=lambda b: -int(b.get("weight", 1)))
        weight = next((int(b.get("weight", 1)) for b in plain if b.get("name") == pinned), None)
        if not others:
            return None, weight
        deployment = self.api.get(ObjectRef("apps/v1", "Deployment", ns, str(others[0]["name"])))
        if deployment is None:
            return None, weight
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
        env = {e.get("name"): e.get("value") for e in containers[0].get("env", [])}
        if not env.get("MODEL_URI") or not env.get("MLOPS_MODEL_VERSION"):
            return None, weight
        old = ResolvedVersion(str(env.get("MLOPS_MODEL_NAME") or key), str(env["MLOPS_MODEL_VERSION"]),
                              str(env["MODEL_URI"]))
        return old, weight

    def _name(self, model_key: str) -> str:
        self.env.pin(model_key, self.env_name)  # a clear error for a model the file does not pin
        return dns_label(model_key)

    # -- the port

    def reconcile(self, *, timeout: float = 600.0, prune: bool | None = None, wait: bool = True,
                  force: bool = False) -> ReconcileResult:
        """Apply the environment, then watch every Rollout until it settles.

        A Rollout that ends Degraded (failed analysis: Argo aborted and sent the
        traffic back to stable) raises :class:`CheckFailed`.
        """
        manifests = self.desired()
        do_prune = self.target.prune if prune is None else prune
        self._bootstrap_ab_tests(timeout=timeout, force=force)
        report = apply_all(self.api, manifests, environment_label=LABEL_ENVIRONMENT,
                           prune_selector=selector_for_environment(self.env_name) if do_prune else None,
                           force=force, progress=self.progress)
        if not wait:
            return ReconcileResult(report, ())
        deadline = time.monotonic() + timeout
        statuses: list[RolloutStatus] = []
        for m in manifests:
            meta = m["metadata"]
            remaining = max(1.0, deadline - time.monotonic())
            if m["kind"] == "Rollout":
                statuses.append(wait_for_rollout(self.api, meta["namespace"], meta["name"],
                                                 timeout=remaining, progress=self.progress))
            elif m["kind"] == "Deployment":
                statuses.append(self._wait_deployment(ObjectRef.of(m), remaining))
        result = ReconcileResult(report, tuple(statuses))
        degraded = [s for s in statuses if s.phase is RolloutPhase.DEGRADED]
        if degraded:
            raise CheckFailed(
                "rollout failed and was rolled back by the cluster: "
                + "; ".join(s.summary() for s in degraded),
                hint="see the AnalysisRun (kubectl argo rollouts get rollout NAME -n "
                     f"{self.target.namespace}); revert the pin in git so git and the cluster agree")
        return result

    def _bootstrap_ab_tests(self, *, timeout: float, force: bool) -> None:
        """Deploy version A first where an A/B test starts on a cluster without its Rollout.

        Argo Rollouts skips the steps when a Rollout is created, so a new A/B
        Rollout would go straight to 100% version B. Applying the pinned version
        with a full rollout first gives Argo a stable version A to split against.
        """
        if self.target.mode != "argo-rollouts":
            return
        fresh = {key: pin for key, pin in self.env.models.items()
                 if isinstance(pin.strategy, ABTestStrategy) and self._needs_version_a(key, pin.strategy)}
        if not fresh:
            return
        full = FullStrategy(type="full")
        models = {**self.env.models, **{k: p.model_copy(update={"strategy": full}) for k, p in fresh.items()}}
        env_a = self.env.model_copy(update={"models": models})
        manifests = render_environment(self.env_name, env_a, self.models, self.resolve, source=self.source,
                                       display_source=self.display_source, previous=self.previous)
        wanted = {dns_label(k) for k in fresh}
        objects = [m for m in manifests
                   if m["metadata"]["name"] in wanted and m["kind"] in ("Rollout", "Service")]
        for m in objects:  # version A's pods take part in the sticky assignment too
            key = next(k for k in fresh if dns_label(k) == m["metadata"]["name"])
            if m["kind"] == "Rollout":
                container = m["spec"]["template"]["spec"]["containers"][0]
                container["env"] += self._ab_env(key, fresh[key].strategy)
        self.progress(f"A/B test: deploying version A of {', '.join(sorted(fresh))} first")
        apply_all(self.api, objects, environment_label=LABEL_ENVIRONMENT, force=force, progress=self.progress)
        for name in sorted(wanted):
            wait_for_rollout(self.api, self.target.namespace, name, timeout=timeout, progress=self.progress)

    def _ab_env(self, key: str, strategy: Any) -> list[dict[str, str]]:
        return ab_environment(self.target, dns_label(key), strategy, self.env.models[key].version)

    def _needs_version_a(self, key: str, strategy: ABTestStrategy) -> bool:
        """Version A must be (re)deployed first: no Rollout yet (Argo would skip the steps and go
        straight to B), or its pods do not carry this A/B test's sticky environment."""
        ref = ObjectRef("argoproj.io/v1alpha1", "Rollout", self.target.namespace, dns_label(key))
        live = self.api.get(ref)
        if live is None:
            return True
        containers = live.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
        env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
        return any(env.get(e["name"]) != e["value"] for e in self._ab_env(key, strategy))

    def _wait_deployment(self, ref: ObjectRef, timeout: float) -> RolloutStatus:
        deadline = time.monotonic() + timeout
        while True:
            obj = self.api.get(ref) or {}
            st = _deployment_status(obj, ref)
            if st.phase is RolloutPhase.HEALTHY:
                self.progress(st.summary())
                return st
            if time.monotonic() >= deadline:
                raise KubernetesError(f"{ref} not available within {timeout:g}s: {st.message}")
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def status(self) -> list[RolloutStatus]:
        """Live state of every pinned model (Rollouts, or Deployments in gateway-api mode)."""
        out: list[RolloutStatus] = []
        ns = self.target.namespace
        for key in sorted(self.env.models):
            name = dns_label(key)
            if self.target.mode == "argo-rollouts":
                st = read_rollout(self.api, ns, name)
                out.append(st or RolloutStatus(name, ns, RolloutPhase.UNKNOWN, "not deployed"))
            else:
                items = self.api.list("apps/v1", "Deployment", ns,
                                      f"app.kubernetes.io/name={name},"
                                      f"{selector_for_environment(self.env_name)}")
                out += [_deployment_status(d, ObjectRef.of(d)) for d in items] or [
                    RolloutStatus(name, ns, RolloutPhase.UNKNOWN, "not deployed")]
        return out

    def promote(self, model_key: str, *, full: bool = False) -> RolloutStatus:
        """Argo: leave the pause (``full``: skip the remaining steps). gateway-api mode:
        move the pinned version to the next ``set_weight`` (``full``: to 100%)."""
        name = self._name(model_key)
        if self.target.mode == "argo-rollouts":
            return promote_rollout(self.api, self.target.namespace, name, full=full)
        old, weight = self._live_gateway(model_key)
        strategy = self.env.models[model_key].strategy
        steps = [s.set_weight for s in getattr(strategy, "steps", []) if s.set_weight is not None]
        current = weight if weight is not None else (steps[0] if steps else 100)
        following = [w for w in steps if w > current]
        if old is None or full or not following or following[0] >= 100 \
                or isinstance(strategy, BlueGreenStrategy):
            manifests = self.desired(drop_previous=frozenset({model_key}))
            self.progress(f"{model_key}: all traffic to {self.env.models[model_key].version}")
        else:
            manifests = self.desired(weights={model_key: following[0]})
            self.progress(f"{model_key}: {following[0]}% to {self.env.models[model_key].version}")
        return self._apply_gateway(model_key, manifests)

    def abort(self, model_key: str) -> RolloutStatus:
        """Roll back in the cluster: all traffic to the stable (previous) version."""
        name = self._name(model_key)
        if self.target.mode == "argo-rollouts":
            return abort_rollout(self.api, self.target.namespace, name)
        old, _ = self._live_gateway(model_key)
        if old is None:
            raise KubernetesError(f"{model_key}: the live HTTPRoute sends no traffic to another version, "
                                  "so there is nothing to go back to",
                                  hint="pin the previous version in git and apply")
        self.progress(f"{model_key}: all traffic back to {old.version}")
        return self._apply_gateway(model_key, self.desired(weights={model_key: 0}))

    def _apply_gateway(self, model_key: str, manifests: list[Manifest]) -> RolloutStatus:
        name = dns_label(model_key)
        mine = [m for m in manifests if m["metadata"]["labels"].get("app.kubernetes.io/name") == name]
        apply_all(self.api, mine, environment_label=LABEL_ENVIRONMENT, progress=self.progress)
        route = next(m for m in mine if m["kind"] == "HTTPRoute")
        plain = [b for rule in route["spec"]["rules"] if not rule.get("matches") for b in rule["backendRefs"]]
        pinned = f"{name}-{version_slug(self.env.models[model_key].version)}"
        done = all(b["name"] == pinned or not b.get("weight", 1) for b in plain)
        weights = ", ".join(f"{b['name']} {b.get('weight', 1)}" for b in plain)
        phase = RolloutPhase.HEALTHY if done else RolloutPhase.PROGRESSING
        return RolloutStatus(name, self.target.namespace, phase, message=f"weights: {weights}", observed=True,
                             desired_version=self.env.models[model_key].version)

    def plan(self, *, prune: bool | None = None) -> list[PlanItem]:
        """What ``reconcile`` would change, by server-side dry run against the live objects."""
        manifests = self.desired()
        items: list[PlanItem] = []
        for m in manifests:
            ref = ObjectRef.of(m)
            live = self.api.get(ref)
            if live is None:
                items.append(PlanItem(ref, PlanAction.CREATE))
                continue
            after = self.api.apply(m, dry_run=True)
            same = _comparable(after) == _comparable(live)
            items.append(PlanItem(ref, PlanAction.UNCHANGED if same else PlanAction.UPDATE))
        if self.target.prune if prune is None else prune:
            wanted = {ObjectRef.of(m) for m in manifests}
            scopes = sorted({(m["apiVersion"], m["kind"], m["metadata"]["namespace"]) for m in manifests})
            for api_version, kind, ns in scopes:
                for obj in self.api.list(api_version, kind, ns, selector_for_environment(self.env_name)):
                    ref = ObjectRef(api_version, kind, ns, obj["metadata"]["name"])
                    if ref not in wanted:
                        items.append(PlanItem(ref, PlanAction.PRUNE))
        return items


def _deployment_status(obj: Manifest, ref: ObjectRef) -> RolloutStatus:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    want = int(spec.get("replicas", 1))
    ready = int(status.get("availableReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    meta = obj.get("metadata", {})
    generation = meta.get("generation")
    observed = generation is not None and status.get("observedGeneration") == generation
    labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
    version = labels.get("app.kubernetes.io/version")
    healthy = observed and ready >= want and updated >= want
    phase = RolloutPhase.HEALTHY if healthy else RolloutPhase.PROGRESSING
    return RolloutStatus(ref.name, ref.namespace, phase,
                         message=f"{ready}/{want} available", desired_version=version,
                         stable_version=version if healthy else None, observed=observed)


