"""``plan``: what merging would change, per environment and model.

Three inputs, as DESIGN.md section 4 says: the git base, the git head, and the
live state (registry aliases). Output per model: old -> new version, strategy,
the alias moves ``apply`` would make, and drift (live differs from the base,
i.e. someone changed it outside git); per environment, the order (waves) apply
follows when models declare ``depends_on``. ``changed`` is true when applying the head
would change anything: a pin differs from the base, or live differs from head.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, assert_never

from mlops_actions.config.order import describe_order, has_order, waves
from mlops_actions.config.specs import (
    ABTestStrategy,
    BlueGreenStrategy,
    CanaryStrategy,
    EnvironmentSpec,
    FullStrategy,
    ModelPin,
)
from mlops_actions.errors import Location
from mlops_actions.gitops.live import LiveRegistry
from mlops_actions.gitops.sources import EnvSource, pin_location

if TYPE_CHECKING:
    from mlops_actions.deploy.targets.interface import TargetStatus

__all__ = [
    "AliasMove",
    "ChangeKind",
    "EnvPlan",
    "ModelPlan",
    "Plan",
    "Problem",
    "compute_plan",
    "describe_strategy",
    "promotion_order",
    "render_markdown",
    "render_text",
]


class ChangeKind(StrEnum):
    ADDED = "added"  # pinned in head, not in base
    REMOVED = "removed"  # pinned in base, not in head
    VERSION = "version"  # the pinned version changed
    STRATEGY = "strategy"  # same version, different rollout strategy
    UNCHANGED = "unchanged"  # git did not change (live may still differ)


@dataclass(frozen=True)
class AliasMove:
    alias: str
    old: str | None  # live now (None: absent or live not read)
    new: str | None  # after apply (None: deleted)


@dataclass(frozen=True)
class Problem:
    message: str
    location: Location | None = None


@dataclass(frozen=True)
class ModelPlan:
    env: str
    model: str
    kind: ChangeKind
    old_version: str | None
    new_version: str | None
    old_strategy: str | None
    new_strategy: str | None
    live_version: str | None = None
    target_version: str | None = None  # what the target serves as stable now (None: no route)
    target_checked: bool = False  # False: the target was not read
    alias_moves: tuple[AliasMove, ...] = ()
    drift: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        serves_other = self.target_checked and self.target_version != self.new_version
        return self.kind is not ChangeKind.UNCHANGED or bool(self.alias_moves) or serves_other


@dataclass(frozen=True)
class EnvPlan:
    name: str
    status: str  # added, removed, changed, unchanged
    strategy_target: str
    models: tuple[ModelPlan, ...]
    target: str = "not checked"  # "checked", or why the target was not read
    order: tuple[tuple[str, ...], ...] = ()  # head's waves when a model has depends_on (config/order.py)

    @property
    def changed(self) -> bool:
        return self.status != "unchanged" or any(m.changed for m in self.models)


@dataclass(frozen=True)
class Plan:
    base: str
    head: str
    live: str  # "checked", "skipped (--no-live)", "not available yet: ..."
    environments: tuple[EnvPlan, ...]
    problems: tuple[Problem, ...] = ()
    registry_calls: int = 0
    target: str = "not checked"

    @property
    def changed(self) -> bool:
        return any(e.changed for e in self.environments)

    @property
    def changed_envs(self) -> list[str]:
        return [e.name for e in self.environments if e.changed]

    @property
    def git_changed_envs(self) -> list[str]:
        """Environments whose file the change edits, in promotion order (an environment after
        the one it promotes from): what a PR's checks validate and a push applies. Live state
        that differs from git (aliases not set before the first apply, drift) is reported, but
        does not make the PR responsible for another environment."""
        return [e.name for e in self.environments if e.status != "unchanged"]

    @property
    def drifts(self) -> list[ModelPlan]:
        return [m for e in self.environments for m in e.models if m.drift]

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "base": self.base, "head": self.head, "live": self.live, "target": self.target,
            "changed": self.changed, "changed_environments": self.changed_envs,
            "registry_calls": self.registry_calls,
            "environments": [asdict(e) | {"changed": e.changed} for e in self.environments],
            "problems": [{"message": p.message, "location": str(p.location) if p.location else None}
                         for p in self.problems],
        }
        return json.dumps(data, indent=2, default=str)


def describe_strategy(pin: ModelPin) -> str:
    s = pin.strategy
    if isinstance(s, FullStrategy):
        return "full"
    if isinstance(s, CanaryStrategy):
        weights = [f"{step.set_weight}%" for step in s.steps if step.set_weight is not None]
        gates = sum(1 for step in s.steps if step.analysis is not None)
        text = "canary " + " -> ".join(weights) if weights else "canary"
        return text + (f", {gates} analysis gate(s)" if gates else "")
    if isinstance(s, BlueGreenStrategy):
        return "blue-green" + ("" if s.auto_promote else " (manual promotion)")
    if isinstance(s, ABTestStrategy):
        return f"A/B with {s.version_b} at {s.traffic_split:.0%}"
    assert_never(s)


def promotion_order(envs: Mapping[str, EnvironmentSpec]) -> list[str]:
    """Environment names, each after the one it promotes from (``promotion.from``), then by name."""

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        source = envs[name].promotion.from_ if name in envs else None
        if source is None or source not in envs or name in seen:
            return 0
        return 1 + depth(source, seen | {name})

    return sorted(envs, key=lambda name: (depth(name), name))


def _desired_aliases(env: str, pin: ModelPin | None) -> dict[str, str | None]:
    """Aliases ``apply`` leaves behind once the rollout has finished."""
    if pin is None:
        return {env: None, f"{env}-b": None, f"{env}-canary": None}
    desired: dict[str, str | None] = {env: pin.version, f"{env}-canary": None}
    desired[f"{env}-b"] = pin.strategy.version_b if isinstance(pin.strategy, ABTestStrategy) else None
    return desired


def _plan_model(env: str, model: str, base: ModelPin | None, head: ModelPin | None,
                live: LiveRegistry | None, head_src: EnvSource,
                problems: list[Problem], target: TargetStatus | None = None) -> ModelPlan:
    if base is None and head is None:  # pragma: no cover - callers pass a union of keys
        raise ValueError("nothing to plan")
    if base is None:
        kind = ChangeKind.ADDED
    elif head is None:
        kind = ChangeKind.REMOVED
    elif base.version != head.version:
        kind = ChangeKind.VERSION
    elif base.strategy != head.strategy:
        kind = ChangeKind.STRATEGY
    else:
        kind = ChangeKind.UNCHANGED
    moves: list[AliasMove] = []
    notes: list[str] = []
    drift = None
    live_version = None
    if live is not None:
        state = live.model(model)
        if state.error is not None:
            notes.append(f"live: {state.error}")
            if head is not None:
                problems.append(Problem(
                    f"{env}: model {model!r} pinned at {head.version} but the registry says: "
                    f"{state.error}",
                    pin_location(head_src.texts.get(env, ""), head_src.paths.get(env, env), model)))
        else:
            live_version = state.aliases.get(env)
            for alias, want in _desired_aliases(env, head).items():
                have = state.aliases.get(alias)
                if have != want:
                    moves.append(AliasMove(alias, have, want))
            if f"{env}-canary" in state.aliases:
                notes.append(f"a rollout is in progress: {env}-canary -> {state.aliases[env + '-canary']}")
            if base is not None and live_version != base.version:
                drift = (f"git pins {base.version} but alias {env} -> {live_version or '(none)'}: "
                         "changed outside git; apply restores the pin")
            if head is not None and head.version not in state.versions:
                known = ", ".join(state.versions[-5:]) or "none"
                problems.append(Problem(
                    f"{env}: {model} {head.version} does not exist in the registry "
                    f"(latest versions: {known})",
                    pin_location(head_src.texts.get(env, ""), head_src.paths.get(env, env), model)))
    target_version = None
    if target is not None:
        route = target.routes.get(model)
        target_version = route.stable if route is not None else None
        if route is None and base is not None:
            drift = (drift + "; " if drift else "") + \
                f"git pins {base.version} but the target serves no route"
        elif route is not None and base is not None and route.stable != base.version:
            drift = (drift + "; " if drift else "") + \
                f"git pins {base.version} but the target serves {route.stable} as stable"
        if route is not None and route.candidate:
            notes.append(f"target: {route.mode} of {route.candidate} at {route.weight}% in progress")
    return ModelPlan(
        env=env, model=model, kind=kind, target_version=target_version,
        target_checked=target is not None,
        old_version=base.version if base else None, new_version=head.version if head else None,
        old_strategy=describe_strategy(base) if base else None,
        new_strategy=describe_strategy(head) if head else None,
        live_version=live_version, alias_moves=tuple(moves), drift=drift, notes=tuple(notes))


def compute_plan(base: EnvSource, head: EnvSource, live: LiveRegistry | None, *,
                 envs: Iterable[str] | None = None, live_label: str | None = None,
                 targets: Mapping[str, TargetStatus | str] | None = None) -> Plan:
    """Base vs head vs live; ``targets`` maps an environment to its target's status (or a note)."""
    wanted = set(envs) if envs else None
    names = sorted(set(base.envs) | set(head.envs))
    if live is not None:
        live.prefetch(m for side in (base, head) for e, spec in side.envs.items()
                      if wanted is None or e in wanted for m in spec.models)
    problems: list[Problem] = []
    plans: list[EnvPlan] = []
    for env in names:
        if wanted is not None and env not in wanted:
            continue
        b: EnvironmentSpec | None = base.envs.get(env)
        h: EnvironmentSpec | None = head.envs.get(env)
        b_models = b.models if b else {}
        h_models = h.models if h else {}
        found = (targets or {}).get(env, "not checked")
        status_of = found if not isinstance(found, str) else None
        models = tuple(
            _plan_model(env, m, b_models.get(m), h_models.get(m), live, head, problems, status_of)
            for m in sorted(set(b_models) | set(h_models)))
        if b is None:
            status = "added"
        elif h is None:
            status = "removed"
        elif b.target != h.target or b.promotion != h.promotion or \
                any(m.kind is not ChangeKind.UNCHANGED for m in models):
            status = "changed"
        else:
            status = "unchanged"
        target = (h or b).target.type if (h or b) is not None else "?"  # type: ignore[union-attr]
        plans.append(EnvPlan(env, status, target, models,
                             "checked" if status_of is not None else str(found), _order(h)))
    if wanted:
        missing = sorted(wanted - set(names))
        problems.extend(Problem(f"environment {e!r} is in neither base nor head "
                                f"(known: {', '.join(names) or 'none'})") for e in missing)
    label = (live_label or "skipped") if live is None else "checked"
    target_label = "not checked"
    if targets:
        notes = sorted({p.target for p in plans})
        target_label = notes[0] if len(notes) == 1 else "; ".join(f"{p.name}: {p.target}" for p in plans)
    order = promotion_order({**base.envs, **head.envs})
    plans.sort(key=lambda p: order.index(p.name))
    return Plan(base=base.label, head=head.label, live=label, environments=tuple(plans),
                problems=tuple(problems), registry_calls=live.calls if live else 0, target=target_label)


def _order(spec: EnvironmentSpec | None) -> tuple[tuple[str, ...], ...]:
    """The waves ``apply`` goes in, when the environment orders its models (else ``()``)."""
    if spec is None or not has_order(spec.models):
        return ()
    return tuple(waves(spec.models))


_SIGN = {ChangeKind.ADDED: "+", ChangeKind.REMOVED: "-", ChangeKind.VERSION: "~",
         ChangeKind.STRATEGY: "~", ChangeKind.UNCHANGED: " "}


def _version_text(m: ModelPlan) -> str:
    if m.kind is ChangeKind.ADDED:
        return f"(new) -> {m.new_version}"
    if m.kind is ChangeKind.REMOVED:
        return f"{m.old_version} -> (removed)"
    if m.kind is ChangeKind.VERSION:
        return f"{m.old_version} -> {m.new_version}"
    return f"{m.new_version}"


def _move_text(mv: AliasMove) -> str:
    return f"alias {mv.alias}: {mv.old or '(none)'} -> {mv.new or '(deleted)'}"


def render_text(plan: Plan) -> str:
    lines = [f"plan: base {plan.base} -> head {plan.head}; live: {plan.live}; target: {plan.target}"]
    for env in plan.environments:
        if not env.changed:
            lines.append(f"environment {env.name}: no change")
            continue
        lines.append(f"environment {env.name} ({env.status}, target {env.strategy_target})")
        if env.order:
            lines.append(f"  order: {describe_order(list(env.order))} (each wave Healthy before the next)")
        for m in env.models:
            if not m.changed and not m.drift:
                continue
            strategy = m.new_strategy or m.old_strategy or ""
            if m.kind is ChangeKind.STRATEGY:
                strategy = f"{m.old_strategy} -> {m.new_strategy}"
            lines.append(f"  {_SIGN[m.kind]} {m.model:<24} {_version_text(m):<24} strategy {strategy}")
            lines.extend(f"      {_move_text(mv)}" for mv in m.alias_moves)
            if m.target_checked and m.target_version != m.new_version:
                lines.append(f"      target: {m.target_version or '(no route)'} -> "
                             f"{m.new_version or '(removed)'}")
            if m.drift:
                lines.append(f"      ! drift: {m.drift}")
            lines.extend(f"      note: {n}" for n in m.notes)
    for p in plan.problems:
        lines.append(f"problem: {p.location}: {p.message}" if p.location else f"problem: {p.message}")
    n_models = sum(1 for e in plan.environments for m in e.models if m.changed)
    lines.append(f"Plan: {n_models} model change(s) in {len(plan.changed_envs)} environment(s), "
                 f"{len(plan.drifts)} drift(s)." if plan.changed else "Plan: no change.")
    return "\n".join(lines)


def render_markdown(plan: Plan) -> str:
    out = ["### mlops-actions plan", "",
           f"Base `{plan.base}` -> head `{plan.head}`. Live state: {plan.live}.", ""]
    if not plan.changed:
        out.append("No change: merging this PR changes no pin, alias or strategy.")
    for env in plan.environments:
        if not env.changed:
            continue
        out += [f"#### `{env.name}` ({env.status})", ""]
        if env.order:
            out += [f"Order: {describe_order([tuple(f'`{m}`' for m in wave) for wave in env.order])} "
                    "(apply waits for each wave to be Healthy before it starts the next)", ""]
        out += ["| | model | version | strategy | alias moves | drift |", "|---|---|---|---|---|---|"]
        for m in env.models:
            if not m.changed and not m.drift:
                continue
            moves = "<br>".join(_move_text(mv) for mv in m.alias_moves) or "-"
            out.append(f"| {_SIGN[m.kind].strip() or '='} | `{m.model}` | {_version_text(m)} | "
                       f"{m.new_strategy or m.old_strategy} | {moves} | {m.drift or '-'} |")
        out.append("")
    if plan.problems:
        out += ["**Problems**", ""]
        out += [f"- `{p.location}`: {p.message}" if p.location else f"- {p.message}"
                for p in plan.problems]
    return "\n".join(out) + "\n"
