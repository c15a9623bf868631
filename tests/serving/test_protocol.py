from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_actions.serving.protocol import BadRequest, ParsedInput, parse_request, to_row_outputs


def _parse(payload: object) -> ParsedInput:
    return parse_request(json.dumps(payload).encode(), "application/json")


def test_every_mlflow_format_gives_the_same_rows() -> None:
    expected = ParsedInput(("a", "b"), [[1, 2], [3, 4]])
    assert _parse({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}) == expected
    assert _parse({"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}) == expected
    assert _parse({"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}) == expected
    assert _parse({"inputs": {"a": [1, 3], "b": [2, 4]}}) == expected
    assert parse_request(b"a,b\n1,2\n3,4\n", "text/csv; charset=utf-8") == expected
    assert _parse({"inputs": [[1, 2], [3, 4]]}) == ParsedInput(None, [[1, 2], [3, 4]])


def test_records_with_keys_in_another_order_are_reordered() -> None:
    parsed = _parse({"dataframe_records": [{"a": 1, "b": 2}, {"b": 4, "a": 3}]})
    assert parsed.rows == [[1, 2], [3, 4]]


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"foo": 1}', "exactly one of"),
    (b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', "expected 1"),
    (b'{"dataframe_records": [{"a": 1}, {"b": 2}]}', "has columns"),
    (b'{"dataframe_records": []}', "non-empty"),
    (b'{"inputs": {"a": [1, 2], "b": [1]}}', "different lengths"),
    (b'{"instances": 5}', "non-empty list"),
])
def test_malformed_bodies_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        parse_request(body, "application/json")


def test_unsupported_content_type() -> None:
    with pytest.raises(BadRequest, match="not supported"):
        parse_request(b"x", "application/xml")


def test_outputs_split_per_row_like_mlflow() -> None:
    assert to_row_outputs(np.array([1, 2]), 2) == [1, 2]
    assert to_row_outputs(pd.Series([0.5, 1.5]), 2) == [0.5, 1.5]
    assert to_row_outputs(pd.DataFrame({"p": [0.1, 0.2]}), 2) == [{"p": 0.1}, {"p": 0.2}]
    with pytest.raises(ValueError, match="3 outputs for 2 rows"):
        to_row_outputs([1, 2, 3], 2)


def test_logged_features_are_the_row() -> None:
    assert ParsedInput(("a", "b"), [[1, 2]]).first_features() == {"a": 1, "b": 2}
    assert ParsedInput(("a",), [[1], [2]]).first_features() == {"columns": ["a"], "data": [[1], [2]]}


def test_nan_literals_are_accepted_like_mlflow() -> None:
    parsed = parse_request(b'{"inputs": [[NaN, 1]]}', "application/json")
    assert parsed.rows[0][1] == 1 and parsed.rows[0][0] != parsed.rows[0][0]
