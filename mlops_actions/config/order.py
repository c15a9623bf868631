"""Cross-model ordering inside one environment: ``depends_on`` and the waves it makes.

A model entry may name other models of the same environment that must be
Healthy before it is rolled out (``depends_on: [features]``). The models fall
into *waves*, like Argo CD's sync waves: wave 1 holds every model without
dependencies, wave *n* every model whose deepest dependency is in wave *n - 1*.
``apply`` declares a wave, waits until every rollout of it is Healthy, then goes
on; ``plan`` shows the waves. Within a wave, models keep the file's order.

Pure functions over the specs: :func:`order_problems` says what is wrong (the
loader turns each problem into a file:line:col error), :func:`waves` computes
the order of a valid environment.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlops_actions.config.specs import ModelPin
from mlops_actions.config.yamlsafe import PathKey, format_path
from mlops_actions.errors import ConfigError

__all__ = ["OrderProblem", "describe_order", "has_order", "order_problems", "waves"]

Waves = list[tuple[str, ...]]


@dataclass(frozen=True)
class OrderProblem:
    """One wrong ``depends_on`` entry: where it is in the environment file, what, what to do."""

    path: PathKey  # ("models", key, "depends_on", index)
    message: str
    hint: str


def has_order(models: Mapping[str, ModelPin]) -> bool:
    """True when some model of the environment declares ``depends_on``."""
    return any(pin.depends_on for pin in models.values())


def _edges(models: Mapping[str, ModelPin]) -> dict[str, list[str]]:
    """Model -> the models it depends on that exist, itself and repeats left out."""
    return {key: list(dict.fromkeys(d for d in pin.depends_on if d in models and d != key))
            for key, pin in models.items()}


def order_problems(models: Mapping[str, ModelPin]) -> list[OrderProblem]:
    """Unknown names, a model depending on itself, repeats, and cycles, each at its entry."""
    problems: list[OrderProblem] = []
    known = list(models)
    for key, pin in models.items():
        for index, name in enumerate(pin.depends_on):
            path: PathKey = ("models", key, "depends_on", index)
            where = format_path(path)
            if name == key:
                problems.append(OrderProblem(path, f"{where}: model `{key}` depends on itself",
                                             f"remove `{key}` from its own depends_on"))
            elif name not in models:
                others = [k for k in known if k != key]
                close = difflib.get_close_matches(name, others, n=1)
                message = (f"{where}: `{name}` is not a model of this environment; expected one of: "
                           f"{', '.join(others) or '(no other model)'}")
                if close:
                    message += f"; did you mean `{close[0]}`?"
                problems.append(OrderProblem(path, message, f"depends_on names other keys under models: "
                                             f"in this file: pin `{name}` here too, or remove it"))
            elif name in pin.depends_on[:index]:
                first = pin.depends_on.index(name)
                problems.append(OrderProblem(path, f"{where}: `{name}` is listed twice (first at "
                                             f"depends_on[{first}])", "remove the repeat"))
    problems += _cycle_problems(models)
    return problems


def _cycle_problems(models: Mapping[str, ModelPin]) -> list[OrderProblem]:
    """One problem per cycle, at the entry of its alphabetically first model that starts it."""
    edges = _edges(models)
    problems: list[OrderProblem] = []
    reported: set[frozenset[str]] = set()
    finished: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        stack.append(node)
        for dep in edges[node]:
            if dep in stack:
                cycle = stack[stack.index(dep):]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    problems.append(_cycle_problem(models, cycle))
            elif dep not in finished:
                visit(dep, stack)
        stack.pop()
        finished.add(node)

    for key in models:
        if key not in finished:
            visit(key, [])
    return problems


def _cycle_problem(models: Mapping[str, ModelPin], cycle: Sequence[str]) -> OrderProblem:
    start = cycle.index(min(cycle))
    ring = [*cycle[start:], *cycle[:start]]  # ring[i] depends on ring[i + 1]
    first, second = ring[0], ring[1 % len(ring)]
    path: PathKey = ("models", first, "depends_on", models[first].depends_on.index(second))
    shown = " -> ".join([*ring, first])
    return OrderProblem(
        path, f"{format_path(path)}: depends_on makes a cycle: {shown} (each model waits for the next); "
        "expected every chain of depends_on to end at a model that depends on nothing",
        f"remove `{second}` from {first}'s depends_on, or break the cycle at another of its models")


def waves(models: Mapping[str, ModelPin]) -> Waves:
    """The models in waves: every model after all the models it depends on, as early as it can.

    Raises ConfigError when ``depends_on`` is wrong (the loader reports those at
    file:line:col first, so only specs built in code get here).
    """
    problems = order_problems(models)
    if problems:
        raise ConfigError(problems[0].message, hint=problems[0].hint)
    edges = _edges(models)
    level: dict[str, int] = {}

    def depth(key: str) -> int:
        if key not in level:
            level[key] = 1 + max((depth(d) for d in edges[key]), default=-1)
        return level[key]

    count = max((depth(key) for key in models), default=-1) + 1
    return [tuple(k for k in models if level[k] == n) for n in range(count)]


def describe_order(order: Waves) -> str:
    """``features -> churn + search -> ranker``: waves in order, ``+`` between models of one wave."""
    return " -> ".join(" + ".join(wave) for wave in order)
