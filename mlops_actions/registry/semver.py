"""Pure semantic-version logic shared by every registry implementation.

No MLflow import here: the in-memory registry and the MLflow adapter both call
:func:`next_version` and :func:`signature_change`, so they number versions the
same way.

Rules
-----
* The first version of a model is ``1.0.0``.
* ``bump`` given (``major``/``minor``/``patch``): it wins.
* Otherwise: ``major`` when the model signature changed incompatibly (an input
  or output column removed or renamed, a type changed, a new required input,
  an optional input made required, the signature dropped), ``minor`` for
  anything else (retrained weights, a new optional input, a new output).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_actions.config.specs import parse_semver
from mlops_actions.registry.interface import Bump

__all__ = [
    "ColumnSpec",
    "SignatureSummary",
    "bump_version",
    "latest_version",
    "next_version",
    "semver_key",
    "signature_change",
]

FIRST_VERSION = "1.0.0"

# Input type changes that MLflow's schema enforcement accepts without loss: old -> new.
_SAFE_INPUT_WIDENING = {
    ("integer", "long"), ("integer", "float"), ("integer", "double"),
    ("long", "double"), ("float", "double"),
}


@dataclass(frozen=True)
class ColumnSpec:
    name: str | None
    type: str
    required: bool = True

    def label(self, index: int) -> str:
        return repr(self.name) if self.name is not None else f"#{index}"


@dataclass(frozen=True)
class SignatureSummary:
    """The parts of an MLflow ``ModelSignature`` that decide compatibility."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...]

    @classmethod
    def from_mlflow_dict(cls, data: Mapping[str, Any]) -> SignatureSummary:
        """From ``ModelSignature.to_dict()`` (inputs/outputs are JSON strings)."""
        return cls(inputs=_columns(data.get("inputs")), outputs=_columns(data.get("outputs")))

    def to_json(self) -> str:
        def enc(cols: tuple[ColumnSpec, ...]) -> list[list[object]]:
            return [[c.name, c.type, c.required] for c in cols]

        return json.dumps({"i": enc(self.inputs), "o": enc(self.outputs)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SignatureSummary:
        data = json.loads(text)

        def dec(rows: list[list[Any]]) -> tuple[ColumnSpec, ...]:
            return tuple(ColumnSpec(r[0], str(r[1]), bool(r[2])) for r in rows)

        return cls(inputs=dec(data["i"]), outputs=dec(data["o"]))


def _columns(raw: object) -> tuple[ColumnSpec, ...]:
    if raw is None:
        return ()
    items = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(items, list):
        return ()
    cols = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = str(item.get("type"))
        if kind == "tensor":
            spec = item.get("tensor-spec", {})
            kind = f"tensor:{spec.get('dtype')}:{spec.get('shape')}"
        elif kind in ("array", "object", "map"):
            kind = json.dumps({k: v for k, v in item.items() if k not in ("name", "required")},
                              sort_keys=True)
        name = item.get("name")
        cols.append(ColumnSpec(name=None if name is None else str(name), type=kind,
                               required=bool(item.get("required", True))))
    return tuple(cols)


def semver_key(version: str) -> tuple[int, int, int, int, str]:
    """Sort key: a release sorts after its pre-releases."""
    major, minor, patch, pre = parse_semver(version)
    return major, minor, patch, 0 if pre else 1, pre


def latest_version(versions: Iterable[str]) -> str | None:
    valid = []
    for v in versions:
        try:
            valid.append((semver_key(v), v))
        except ValueError:
            continue
    return max(valid)[1] if valid else None


def bump_version(version: str, bump: Bump) -> str:
    major, minor, patch, _ = parse_semver(version)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise ValueError(f"unknown bump {bump!r}: expected one of major, minor, patch")


def next_version(existing: Sequence[str], *, bump: Bump | None, change: Bump = "minor") -> str:
    """The version a new registration gets, given the versions that exist."""
    current = latest_version(existing)
    if current is None:
        return FIRST_VERSION
    return bump_version(current, bump or change)


def _diff(kind: str, old: tuple[ColumnSpec, ...], new: tuple[ColumnSpec, ...],
          widening: set[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(breaking reasons, compatible notes) for one side of a signature."""
    breaking: list[str] = []
    notes: list[str] = []
    named = all(c.name is not None for c in old + new)
    if named:
        old_by = {c.name: (i, c) for i, c in enumerate(old)}
        new_by = {c.name: (i, c) for i, c in enumerate(new)}
        pairs = [(old_by[n][1], new_by[n][1], old_by[n][0]) for n in old_by if n in new_by]
        removed = [c.label(i) for n, (i, c) in old_by.items() if n not in new_by]
        added = [(c.label(i), c) for n, (i, c) in new_by.items() if n not in old_by]
    else:
        pairs = [(o, n, i) for i, (o, n) in enumerate(zip(old, new, strict=False))]
        removed = [c.label(i) for i, c in enumerate(old) if i >= len(new)]
        added = [(c.label(i), c) for i, c in enumerate(new) if i >= len(old)]
    for label in removed:
        breaking.append(f"{kind} {label} removed")
    for o, n, i in pairs:
        if o.type != n.type and (o.type, n.type) not in widening:
            breaking.append(f"{kind} {o.label(i)} type {o.type} -> {n.type}")
        elif o.type != n.type:
            notes.append(f"{kind} {o.label(i)} widened {o.type} -> {n.type}")
        if kind == "input" and n.required and not o.required:
            breaking.append(f"{kind} {o.label(i)} is now required")
    for label, col in added:
        if kind == "input" and col.required:
            breaking.append(f"new required {kind} {label}")
        else:
            notes.append(f"new {kind} {label}")
    return breaking, notes


def signature_change(old: SignatureSummary | None,
                     new: SignatureSummary | None) -> tuple[Bump, list[str]]:
    """``("major", reasons)`` when ``new`` breaks callers of ``old``; else ``("minor", notes)``."""
    if old is None:
        return "minor", ([] if new is None else ["signature added"])
    if new is None:
        return "major", ["signature removed: the new model declares no inputs/outputs"]
    in_break, in_notes = _diff("input", old.inputs, new.inputs, _SAFE_INPUT_WIDENING)
    out_break, out_notes = _diff("output", old.outputs, new.outputs, set())
    breaking = in_break + out_break
    if breaking:
        return "major", breaking
    return "minor", in_notes + out_notes
