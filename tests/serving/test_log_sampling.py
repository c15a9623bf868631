"""Prediction logging per model: a sampling rate by request-id hash, and an off switch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_actions.config.specs import EnvironmentSpec
from mlops_actions.deploy.interface import Route
from mlops_actions.serving.predlog import LogSampling, sample_point
from tests.serving.test_gateway import Harness, split


def test_sample_point_is_stable_uniform_and_ignores_the_shadow_suffix() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    points = [sample_point(i) for i in ids]
    assert points == [sample_point(i) for i in ids]  # same id, same answer (no salted hash())
    assert all(0 <= p < 1 for p in points)
    share = sum(p < 0.25 for p in points) / len(points)
    assert share == pytest.approx(0.25, abs=0.015)
    assert sample_point("abc.shadow") == sample_point("abc")
    # a known value: the hash is BLAKE2b, the same on every machine and in every process
    assert sample_point("abc") == int.from_bytes(
        __import__("hashlib").blake2b(b"abc", digest_size=8).digest(), "big") / 2.0**64


def test_log_sampling_per_model() -> None:
    s = LogSampling({"half": 0.5, "off": 0.0, "all": 1.0})
    assert s.rates == {"half": 0.5, "off": 0.0} and bool(s)
    ids = [f"r{i}" for i in range(4000)]
    kept = [i for i in ids if s.keeps("half", i)]
    assert 0.45 < len(kept) / len(ids) < 0.55
    assert kept == [i for i in ids if s.keeps("half", i)]  # deterministic
    assert not any(s.keeps("off", i) for i in ids)
    assert all(s.keeps("all", i) and s.keeps("unnamed", i) for i in ids)
    assert not LogSampling()


def test_environment_config_sets_the_rates() -> None:
    env = EnvironmentSpec.model_validate({"models": {
        "a": {"version": "1.0.0", "prediction_log": {"sample_rate": 0.1}},
        "b": {"version": "1.0.0", "prediction_log": {"enabled": False}},
        "c": {"version": "1.0.0"}}})
    assert LogSampling.from_environment(env).rates == {"a": 0.1, "b": 0.0}


@pytest.fixture()
def sampled(tmp_path: Path) -> Iterator[Harness]:
    routes = {m: Route(model=m, stable="1.0.0", stable_uri="fake://v1") for m in ("half", "off", "all")}
    harness = Harness(tmp_path, routes, log_sampling=LogSampling({"half": 0.5, "off": 0.0}))
    yield harness
    harness.close()


def test_gateway_logs_the_sampled_share_and_late_labels_join(sampled: Harness) -> None:
    n = 60
    for i in range(n):
        for model in ("half", "off", "all"):
            rid = f"{model}-{i}"
            status, headers, body = sampled.call("POST", f"/models/{model}/invocations", split([[1, 1]]),
                                                 {"x-request-id": rid})
            assert (status, body) == (200, {"predictions": [2]})  # answered whether logged or not
            assert headers["x-request-id"] == rid
    assert sampled.gw.logger is not None and sampled.gw.logger.flush()
    assert sampled.store.count("off") == 0  # off: nothing logged
    assert sampled.store.count("all") == n
    expected = [f"half-{i}" for i in range(n) if sample_point(f"half-{i}") < 0.5]
    assert 0 < len(expected) < n
    half = sampled.store.query("half")
    assert sorted(half["request_id"]) == sorted(expected)
    # a late label of a logged request joins its row
    status, _, body = sampled.call("POST", "/feedback", {"request_id": expected[0], "actual": 2})
    assert (status, body["matched"]) == (200, 1)
    rows = sampled.store.query("half")
    assert rows.loc[rows["request_id"] == expected[0], "actual"].tolist() == [2]
    _, _, status_body = sampled.call("GET", "/admin/status", headers={"Authorization": "Bearer tok"})
    log = status_body["prediction_log"]
    assert log["sampled_out"] == n + (n - len(expected))
    assert log["sample_rates"] == {"half": 0.5, "off": 0.0}


def test_memory_store_with_logging_off_logs_nothing(tmp_path: Path) -> None:
    """serve --env with `prediction_log: {enabled: false}` on a memory:// store."""
    from mlops_actions.serving.local_plane import build_gateway
    from tests.serving._support import FakeLoader

    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text(
        "models:\n  m:\n    version: \"1.0.0\"\n    prediction_log:\n      enabled: false\n")

    class Registry:
        def get(self, name: str, version: str) -> object:
            return type("MV", (), {"uri": "fake://v1"})()

    gw = build_gateway(tmp_path, "dev", "memory://", registry=Registry())  # type: ignore[arg-type]
    gw.cache._loader = FakeLoader()
    import asyncio

    from tests.serving._support import asgi_call

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(gw.start())
        for i in range(10):
            status, _, _ = loop.run_until_complete(asgi_call(
                gw, "POST", "/invocations", b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
                {"x-request-id": f"r{i}"}))
            assert status == 200
        assert gw.logger is not None and gw.logger.flush()
        time.sleep(0.1)
        assert gw.store is not None and gw.store.count() == 0
        assert gw.logger.sampled_out == 10 and gw.logger.written == 0
    finally:
        loop.run_until_complete(gw.stop())
        loop.close()
