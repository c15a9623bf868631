"""Slice conditions are vectorised comparisons, never code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_actions.config.specs import Condition, SliceSpec
from mlops_actions.errors import Location, ValidationError
from mlops_actions.validation.slices import condition_mask, describe, slice_mask

FRAME = pd.DataFrame({
    "age": [10, 40, 65, 80, np.nan],
    "region": ["eu", "us", "eu", None, "apac"],
    "score": [0.1, 0.5, 0.9, 0.3, 0.7],
})


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("==", 65, [0, 0, 1, 0, 0]),
    ("!=", 65, [1, 1, 0, 1, 0]),
    ("<", 65, [1, 1, 0, 0, 0]),
    ("<=", 65, [1, 1, 1, 0, 0]),
    (">", 40, [0, 0, 1, 1, 0]),
    (">=", 40, [0, 1, 1, 1, 0]),
    ("in", [10, 80], [1, 0, 0, 1, 0]),
    ("not in", [10, 80], [0, 1, 1, 0, 0]),
    ("is null", None, [0, 0, 0, 0, 1]),
    ("is not null", None, [1, 1, 1, 1, 0]),
])
def test_numeric_ops(op: str, value: object, expected: list[int]) -> None:
    mask = condition_mask(FRAME, Condition(column="age", op=op, value=value))  # type: ignore[arg-type]
    assert mask.tolist() == [bool(x) for x in expected]


def test_text_ops_and_and() -> None:
    spec = SliceSpec(name="eu-old", where=[Condition(column="region", op="==", value="eu"),
                                           Condition(column="age", op=">=", value=60)])
    assert slice_mask(FRAME, spec).tolist() == [False, False, True, False, False]
    assert condition_mask(FRAME, Condition(column="region", op="not in", value=["eu"])).tolist() == \
        [False, True, False, False, True]
    assert describe(spec.where) == "region == eu and age >= 60"


def test_code_in_a_value_is_just_text() -> None:
    evil = "__import__('os').system('touch /tmp/pwned') or True"
    mask = condition_mask(FRAME, Condition(column="region", op="==", value=evil))
    assert not mask.any()


def test_unknown_column_and_type_mismatch_are_bad_input() -> None:
    loc = Location("models/m/model.yaml", 12, 19)
    with pytest.raises(ValidationError) as e:
        condition_mask(FRAME, Condition(column="country", op="==", value="eu"), location=loc)
    assert "unknown column 'country'" in str(e.value) and "model.yaml:12:19" in str(e.value)
    assert "region" in str(e.value)  # names the columns that exist
    with pytest.raises(ValidationError, match="compares numeric column 'age' with 'old'"):
        condition_mask(FRAME, Condition(column="age", op=">", value="old"))
    with pytest.raises(ValidationError, match="orders column 'region'"):
        condition_mask(FRAME, Condition(column="region", op=">", value=3))
