"""The gateway in-process (ASGI calls, fake backends): HTTP codes, headers, logging, admin auth."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_actions.deploy.interface import Route
from mlops_actions.monitoring.store import MemoryStore
from mlops_actions.serving.gateway import GatewayConfig
from mlops_actions.serving.local_plane import host_of, local_gateway
from tests.serving._support import FakeLoader, asgi_call

TOKEN = "tok"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Harness:
    def __init__(self, tmp: Path, routes: dict[str, Route], **config: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.loader = FakeLoader()
        self.store = MemoryStore()
        self.gw = local_gateway(GatewayConfig(environment="prod", state_dir=tmp / ".mlops", token=TOKEN,
                                        store=self.store, initial_routes=routes, loader=self.loader,
                                        **config))
        self.loop.run_until_complete(self.gw.start())

    def call(self, method: str, path: str, body: Any = b"", headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str], Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, hdrs, out = self.loop.run_until_complete(asgi_call(self.gw, method, path, raw, headers))
        try:
            return status, hdrs, json.loads(out)
        except ValueError:
            return status, hdrs, out.decode()

    def close(self) -> None:
        self.loop.run_until_complete(self.gw.stop())
        self.loop.close()


@pytest.fixture()
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path, {"m": Route(model="m", stable="1.0.0", stable_uri="fake://v1")},
                      max_body_bytes=2000)
    yield harness
    harness.close()


def split(rows: list[list[Any]], columns: tuple[str, ...] = ("a", "b")) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(columns), "data": rows}}


def test_scoring_answers_like_mlflow_with_version_headers(h: Harness) -> None:
    status, headers, body = h.call("POST", "/invocations", split([[1, 2], [3, 4]]),
                                   {"content-type": "application/json", "x-request-id": "r1"})
    assert (status, body) == (200, {"predictions": [3, 7]})
    assert headers["x-model-version"] == "1.0.0"
    assert headers["x-variant"] == "stable"
    assert headers["x-request-id"] == "r1"
    status, _, body = h.call("POST", "/models/m/invocations", b"a,b\n5,5\n", {"content-type": "text/csv"})
    assert (status, body) == (200, {"predictions": [10]})


def test_predictions_are_logged_and_feedback_joins_by_request_id(h: Harness) -> None:
    h.call("POST", "/invocations", split([[1, 1]]), {"x-request-id": "abc"})
    status, _, body = h.call("POST", "/feedback", {"request_id": "abc", "actual": 2})
    assert (status, body["received"], body["matched"]) == (200, 1, 1)
    status, _, body = h.call("POST", "/feedback", {"actuals": {"not-yet-logged": 1}})
    assert (status, body["matched"], body["unknown"]) == (200, 0, 1)  # kept pending by the store
    rows = h.store.query("m")
    assert rows.iloc[0]["request_id"] == "abc" and rows.iloc[0]["actual"] == 2
    assert rows.iloc[0]["features"] == {"a": 1, "b": 1} and rows.iloc[0]["output"] == 2
    assert h.call("POST", "/feedback", {"nope": 1})[0] == 400


def test_bad_input_codes(h: Harness) -> None:
    assert h.call("POST", "/invocations", b"{oops")[0] == 400
    status, _, body = h.call("POST", "/invocations", split([[1, 2]], ("a", "c")))
    assert status == 400 and "missing columns ['b']" in body["message"]
    assert h.call("POST", "/invocations", split([[1, 2]] * 300))[0] == 413
    assert h.call("POST", "/models/nope/invocations", split([[1, 2]]))[0] == 404
    status, _, body = h.call("POST", "/invocations", split([[1, 2, 1]], ("a", "b", "boom")))
    assert status == 500 and "row asked to fail" in body["message"]
    assert h.call("POST", "/invocations", split([[1, 2]]))[0] == 200  # one bad request fails alone
    _, _, metrics = h.call("GET", "/metrics")
    assert 'mlops_request_errors_total{environment="prod",model="m",variant="stable",version="1.0.0"} 1.0' \
        in metrics


def test_admin_needs_the_token(h: Harness) -> None:
    assert h.call("GET", "/admin/status")[0] == 401
    assert h.call("GET", "/admin/status", headers={"Authorization": "Bearer wrong"})[0] == 401
    status, _, body = h.call("GET", "/admin/status", headers=AUTH)
    assert status == 200 and body["routes"]["m"]["stable"] == "1.0.0"


def test_a_full_queue_or_too_many_requests_answer_503_with_retry_after_and_count(tmp_path: Path) -> None:
    harness = Harness(tmp_path, {"m": Route(model="m", stable="1.0.0", stable_uri="fake://v1")},
                      max_inflight=2, log_timeout=0.5)
    assert harness.gw.logger is not None
    harness.gw.logger._queue.maxsize = 1
    harness.gw.logger._stop.set()  # the writer stops taking: the queue fills, nothing commits
    harness.gw.logger._thread.join(5)
    body = json.dumps(split([[1, 2]])).encode()

    async def burst() -> list[tuple[int, dict[str, str], bytes]]:
        first = asyncio.ensure_future(asgi_call(harness.gw, "POST", "/invocations", body))
        await asyncio.sleep(0.05)  # queued, waiting for its commit
        second = await asgi_call(harness.gw, "POST", "/invocations", body)  # queue full
        third = asyncio.ensure_future(asgi_call(harness.gw, "POST", "/invocations", body))
        await asyncio.sleep(0.05)
        fourth = await asgi_call(harness.gw, "POST", "/invocations", body)  # 2 in flight: over the limit
        return [await first, second, await third, fourth]

    results = harness.loop.run_until_complete(burst())
    codes = [(status, json.loads(out)["error_code"]) for status, _, out in results]
    # never acknowledged without a commit: the first waits for it and gives up after log_timeout
    assert codes == [(503, "STORE_UNAVAILABLE"), (503, "OVERLOADED"), (503, "OVERLOADED"),
                     (503, "OVERLOADED")]
    assert all(hdrs["retry-after"] == "1" for _, hdrs, _ in results)
    metrics = harness.call("GET", "/metrics")[2]
    assert 'mlops_predictions_rejected_total{environment="prod",model="m"} 4.0' in metrics
    assert harness.store.count() == 0
    harness.close()


class FlakyStore(MemoryStore):
    """A memory store whose writes fail while ``broken`` (a disk that is full)."""

    broken = False

    def write(self, records: Any) -> int:
        if self.broken:
            raise OSError("database or disk is full")
        return super().write(records)

    def probe(self) -> None:
        if self.broken:
            raise OSError("database or disk is full")


def test_a_failing_store_answers_503_degrades_readyz_and_recovers_by_itself(tmp_path: Path) -> None:
    store = FlakyStore()
    loop = asyncio.new_event_loop()
    gw = local_gateway(GatewayConfig(environment="prod", state_dir=tmp_path / ".mlops", token=TOKEN,
                                     store=store, initial_routes={"m": Route(model="m", stable="1.0.0", stable_uri="fake://v1")},
                               loader=FakeLoader()))
    loop.run_until_complete(gw.start())
    assert gw.logger is not None
    gw.logger._probe_interval = 0.05
    body = json.dumps(split([[1, 2]])).encode()

    def call(path: str = "/invocations", method: str = "POST") -> tuple[int, dict[str, str], Any]:
        status, hdrs, out = loop.run_until_complete(
            asgi_call(gw, method, path, body if method == "POST" else b""))
        return status, hdrs, json.loads(out)

    assert call()[0] == 200 and store.count() == 1
    store.broken = True
    status, hdrs, out = call()
    assert (status, out["error_code"], hdrs["retry-after"]) == (503, "STORE_UNAVAILABLE", "1")
    assert "disk is full" in out["message"]
    status, _, ready = call("/readyz", "GET")
    assert status == 503 and ready["degraded"] and "disk is full" in ready["reason"]
    assert call()[0] == 503  # refused at once while degraded
    assert store.count() == 1  # nothing unacknowledged was stored, nothing acknowledged was lost
    metrics = loop.run_until_complete(asgi_call(gw, "GET", "/metrics"))[2].decode()
    assert 'mlops_prediction_store_up{environment="prod"} 0.0' in metrics
    assert 'mlops_prediction_store_failures_total{environment="prod"} 1.0' in metrics
    assert 'mlops_predictions_rejected_total{environment="prod",model="m"} 2.0' in metrics
    store.broken = False  # space is back: the probe notices without any traffic
    deadline = time.monotonic() + 5
    while call("/readyz", "GET")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert call("/readyz", "GET")[0] == 200
    assert call()[0] == 200 and store.count() == 2
    loop.run_until_complete(gw.stop())
    loop.close()


def test_concurrent_requests_are_micro_batched_with_identical_predictions(h: Harness) -> None:
    async def many() -> list[tuple[int, dict[str, str], bytes]]:
        return await asyncio.gather(*[
            asyncio.ensure_future(asgi_call(h.gw, "POST", "/invocations",
                                            json.dumps(split([[i, i]])).encode()))
            for i in range(50)])
    results = h.loop.run_until_complete(many())
    assert [json.loads(b)["predictions"] for _, _, b in results] == [[2 * i] for i in range(50)]
    backend = h.loader.backends["fake://v1"]
    assert backend.calls < 50  # fewer predict calls than requests


def test_declare_is_idempotent_and_full_rollout_switches(h: Harness) -> None:
    body = {"model": "m", "version": "1.1.0", "uri": "fake://v2", "strategy": {"type": "full"}}
    assert h.call("POST", "/admin/rollouts", body, AUTH)[0] == 201
    h.loop.run_until_complete(host_of(h.gw).tick())
    status, _, again = h.call("POST", "/admin/rollouts", body, AUTH)
    assert status == 200 and again["changed"] is False
    _, headers, out = h.call("POST", "/invocations", split([[1, 2]]))
    assert headers["x-model-version"] == "1.1.0" and out == {"predictions": [6]}
    bad = h.call("POST", "/admin/rollouts", {"model": "m", "version": "2", "uri": "x",
                                             "strategy": {"type": "nope"}}, AUTH)
    assert bad[0] == 400


def test_chunked_body_over_the_limit_is_413(h: Harness) -> None:
    chunks = [b"x" * 1500, b"y" * 1500]

    async def call() -> int:
        sent: list[dict[str, Any]] = [{"type": "http.request", "body": c, "more_body": i == 0}
                                      for i, c in enumerate(chunks)]
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return sent.pop(0) if sent else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await h.gw({"type": "http", "method": "POST", "path": "/invocations", "headers": []}, receive, send)
        return status[0]

    assert h.loop.run_until_complete(call()) == 413
