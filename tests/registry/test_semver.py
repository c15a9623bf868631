"""Pure semver numbering and signature-compatibility rules (no MLflow)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_actions.registry.semver import (
    ColumnSpec,
    SignatureSummary,
    bump_version,
    latest_version,
    next_version,
    semver_key,
    signature_change,
)


def sig(inputs: list[tuple[str | None, str, bool]], outputs: list[tuple[str | None, str]] | None = None
        ) -> SignatureSummary:
    outs = outputs if outputs is not None else [(None, "long")]
    return SignatureSummary(tuple(ColumnSpec(n, t, r) for n, t, r in inputs),
                            tuple(ColumnSpec(n, t) for n, t in outs))


BASE = sig([("age", "long", True), ("income", "double", True)])


def test_first_version_and_bumps() -> None:
    assert next_version([], bump=None) == "1.0.0"
    assert next_version([], bump="major") == "1.0.0"
    assert next_version(["1.0.0"], bump=None) == "1.1.0"
    assert next_version(["1.0.0", "1.1.0"], bump=None, change="major") == "2.0.0"
    assert next_version(["1.0.0", "1.4.2"], bump="patch") == "1.4.3"
    assert next_version(["2.0.0"], bump="minor", change="major") == "2.1.0"  # bump overrides
    assert bump_version("1.9.9", "major") == "2.0.0"
    with pytest.raises(ValueError, match="unknown bump"):
        bump_version("1.0.0", "huge")  # type: ignore[arg-type]


def test_latest_is_by_semver_not_by_string_or_order() -> None:
    assert latest_version(["1.10.0", "1.9.0", "1.2.0"]) == "1.10.0"
    assert latest_version(["2.0.0-rc.1", "1.5.0"]) == "2.0.0-rc.1"
    assert latest_version(["2.0.0", "2.0.0-rc.1"]) == "2.0.0"  # a release beats its pre-release
    assert latest_version(["not-a-version", "0.0.3"]) == "0.0.3"
    assert latest_version([]) is None
    assert next_version(["1.10.0", "1.9.0"], bump=None) == "1.11.0"


@pytest.mark.parametrize(("new", "expected", "reason"), [
    (sig([("age", "long", True), ("income", "double", True)]), "minor", None),
    (sig([("age", "long", True)]), "major", "input 'income' removed"),
    (sig([("age", "long", True), ("salary", "double", True)]), "major", "input 'income' removed"),
    (sig([("age", "string", True), ("income", "double", True)]), "major", "input 'age' type long -> string"),
    (sig([("age", "double", True), ("income", "double", True)]), "minor", None),  # widening is safe
    (sig([("age", "long", True), ("income", "double", True), ("zip", "string", True)]), "major",
     "new required input 'zip'"),
    (sig([("age", "long", True), ("income", "double", True), ("zip", "string", False)]), "minor", None),
    (sig([("age", "long", True), ("income", "double", True)], [(None, "double")]), "major",
     "output #0 type long -> double"),
    (sig([("age", "long", True), ("income", "double", True)], [(None, "long"), (None, "double")]),
     "minor", None),
    (None, "major", "signature removed"),
])
def test_signature_change(new: SignatureSummary | None, expected: str, reason: str | None) -> None:
    change, reasons = signature_change(BASE, new)
    assert change == expected
    if reason is not None:
        assert any(reason in r for r in reasons), reasons


def test_optional_input_made_required_is_major() -> None:
    old = sig([("age", "long", False)])
    assert signature_change(old, sig([("age", "long", True)]))[0] == "major"
    assert signature_change(sig([("age", "long", True)]), old)[0] == "minor"


def test_no_previous_signature_is_minor() -> None:
    assert signature_change(None, BASE) == ("minor", ["signature added"])
    assert signature_change(None, None) == ("minor", [])


def test_from_mlflow_dict_and_json_round_trip() -> None:
    mlflow_dict = {
        "inputs": json.dumps([{"type": "double", "name": "x1", "required": True},
                              {"type": "string", "name": "city", "required": False}]),
        "outputs": json.dumps([{"type": "long", "required": True}]),
        "params": None,
    }
    summary = SignatureSummary.from_mlflow_dict(mlflow_dict)
    assert summary.inputs == (ColumnSpec("x1", "double", True), ColumnSpec("city", "string", False))
    assert summary.outputs == (ColumnSpec(None, "long", True),)
    assert SignatureSummary.from_json(summary.to_json()) == summary
    tensor = SignatureSummary.from_mlflow_dict({"inputs": json.dumps(
        [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28]}}])})
    assert tensor.inputs[0].type == "tensor:float32:[-1, 28, 28]"


semvers = st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)).map(
    lambda t: f"{t[0]}.{t[1]}.{t[2]}")


@given(st.lists(semvers, max_size=20), st.sampled_from(["major", "minor", "patch"]))
def test_next_version_is_always_new_and_greatest(existing: list[str], bump: str) -> None:
    new = next_version(existing, bump=bump)  # type: ignore[arg-type]
    assert new not in existing
    assert all(semver_key(new) > semver_key(v) for v in existing)
