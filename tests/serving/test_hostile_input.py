"""Hostile scoring requests (issue 16): NaN and Infinity, deep or nested JSON, wrong types.

Each is the client's fault: 400 with a message, never a 500, and never counted as an error
of the version that answered (a canary's analysis would roll it back for someone else's
bad request). The backend here behaves like a scikit-learn model without a signature: it
converts the frame to floats and refuses NaN and Infinity, as sklearn's ``check_array`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_actions.deploy.interface import Route
from mlops_actions.serving.protocol import MAX_DEPTH
from tests.serving.test_gateway import Harness


class SklearnLikeBackend:
    """``float(x)`` of every cell, then refuses non-finite input, like sklearn's estimators."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.input_columns: tuple[str, ...] | None = None

    def predict(self, frame: Any) -> Any:
        values = np.asarray(frame.to_numpy(), dtype=float)  # ValueError/TypeError on text, lists
        if not np.isfinite(values).all():
            raise ValueError("Input X contains NaN or infinity.")
        return values.sum(axis=1)


def _serve(h: Harness, version: str, uri: str, loader: Any) -> None:
    """Serve ``version`` of m from a backend ``loader`` builds (in place of the harness's fakes)."""
    h.gw.cache._loader = loader
    h.gw.cache.evict(set())
    h.gw._batchers.pop(uri, None)
    h.loop.run_until_complete(h.gw.ensure_loaded(uri))
    h.gw.set_route(Route(model="m", stable=version, stable_uri=uri))


@pytest.fixture()
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path, {"m": Route(model="m", stable="1.0.0", stable_uri="sk://v1")})
    _serve(harness, "1.0.0", "sk://v1", SklearnLikeBackend)
    yield harness
    harness.close()


def _errors_counted(h: Harness) -> int:
    return h.gw.stats.window("m", "1.0.0", 0.0).errors


def _post(h: Harness, body: bytes) -> tuple[int, Any]:
    status, _, out = h.call("POST", "/invocations", body, {"content-type": "application/json"})
    return status, out


@pytest.mark.parametrize(("body", "message"), [
    (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[NaN, 1]]}}',
     "row 0, column 'a': nan is not a finite number"),
    (b'{"dataframe_records": [{"a": 1, "b": Infinity}]}', "row 0, column 'b': inf is not a finite number"),
    (b'{"inputs": [[1, -Infinity]]}', "row 0: -inf is not a finite number"),
    (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[[1, 2], 3]]}}',
     "row 0, column 'a': a list where a single value is expected"),
    (b'{"dataframe_records": [{"a": {"x": 1}, "b": 2}]}',
     "row 0, column 'a': an object where a single value is expected"),
    (b'{"dataframe_split": {"columns": ["a", "b"], "data": [["one", 2], [1, 2]]}}',
     "column 'a' mixes text and numbers"),
    (b'{"inputs": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}", f"at most {MAX_DEPTH} levels"),
    (b'{"inputs": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}", f"at most {MAX_DEPTH} levels"),
])
def test_bad_values_are_400_with_a_message_and_not_counted(h: Harness, body: bytes, message: str) -> None:
    # before: NaN/Infinity and nested values were 500 MODEL_ERROR (counted against the version),
    # and 5000 levels of nesting a 500 with a RecursionError in the log
    status, out = _post(h, body)
    assert status == 400, out
    assert out["error_code"] == "BAD_REQUEST" and message in out["message"], out["message"]
    assert _errors_counted(h) == 0
    assert _post(h, b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}') == \
        (200, {"predictions": [3.0]})


def test_a_broken_model_is_still_a_500(h: Harness) -> None:
    # a well-formed request the model fails on is the model's fault: counted, as before
    _serve(h, "2.0.0", "sk://broken", lambda uri: type("Broken", (), {
        "uri": uri, "input_columns": None, "predict": lambda self, frame: 1 / 0})())
    status, out = _post(h, b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}')
    assert status == 500 and out["error_code"] == "MODEL_ERROR"
    assert h.gw.stats.window("m", "2.0.0", 0.0).errors == 1


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))
_CELLS = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)), max_leaves=12)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["split", "records", "inputs", "instances", "deep", "any"]))
    rows = draw(st.lists(st.lists(_CELLS, min_size=2, max_size=2), min_size=1, max_size=4))
    if kind == "split":
        doc: Any = {"dataframe_split": {"columns": ["a", "b"], "data": rows}}
    elif kind == "records":
        doc = {"dataframe_records": [{"a": r[0], "b": r[1]} for r in rows]}
    elif kind in ("inputs", "instances"):
        doc = {kind: rows}
    elif kind == "deep":
        depth = draw(st.integers(10, 3000))
        return b'{"inputs": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
    else:
        doc = draw(_CELLS)
    return json.dumps(doc, allow_nan=True).encode()  # NaN and Infinity as MLflow clients send them


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies())
def test_fuzzed_requests_never_get_a_5xx_nor_count_as_errors(h: Harness, body: bytes) -> None:
    status, out = _post(h, body)
    assert status < 500, (body[:300], out)
    if status != 200:
        assert out["error_code"] and out["message"], out
    else:
        assert all(p is None or math.isfinite(p) for p in out["predictions"])
    assert _errors_counted(h) == 0
