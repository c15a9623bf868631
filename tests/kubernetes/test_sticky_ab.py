"""A/B stickiness on Kubernetes: two real single-model gateways (the pods of variant A and B) on
loopback, requests landing on either at random as the HTTPRoute's per-request split would send
them; each key must always get the same variant, chosen by the local gateway's own function."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn

from mlops_actions.config.loader import load_repo
from mlops_actions.deploy.interface import Route
from mlops_actions.deploy.targets.kubernetes.render import render_environment
from mlops_actions.serving.gateway import Gateway
from mlops_actions.serving.local_plane import build_single_model_gateway
from mlops_actions.serving.routing import WeightedCounter, ab_variant, choose
from mlops_actions.serving.server import uvicorn_config
from mlops_actions.serving.sticky import AB_ENV, sticky_from_env
from tests.conftest import free_port
from tests.kubernetes.conftest import REPO, fake_resolve, schema_errors
from tests.serving._support import FakeLoader

WEIGHT = 25  # percent of keys to B
BODY = json.dumps({"inputs": [{"a": 1, "b": 2}]}).encode()


def test_assignment_is_deterministic_matches_the_local_gateway_and_the_weight() -> None:
    ids = [f"user-{i}" for i in range(20_000)]
    route = Route(model="m", stable="2.0.0", stable_uri="a", candidate="2.1.0", candidate_uri="b",
                  mode="ab_test", weight=WEIGHT, sticky_header="X-User-Id")
    counter = WeightedCounter()
    for weight in (10, WEIGHT, 50):
        first = [ab_variant(i, weight) for i in ids]
        assert first == [ab_variant(i, weight) for i in ids]  # same key, same variant, always
        share = first.count("b") / len(ids)
        assert abs(share - weight / 100) < 0.01, (weight, share)  # 3 sigma is 0.9 points at n=20,000
    local = ["b" if choose(route, {"x-user-id": i}, counter).variant == "b" else "a" for i in ids[:2000]]
    assert local == [ab_variant(i, WEIGHT) for i in ids[:2000]]  # the same function on both targets


def test_both_variants_pods_get_the_sticky_environment_and_validate() -> None:
    repo = load_repo(REPO)
    for env_name, a_url, b_url in (
            ("production", "http://task-classifier.ml-prod.svc:80", "http://task-classifier-canary.ml-prod.svc:80"),
            ("edge", "http://task-classifier-v2-0-0.ml-edge.svc:80", "http://task-classifier-v2-1-0.ml-edge.svc:80")):
        env = repo.environments[env_name]
        manifests = render_environment(env_name, env, repo.models, fake_resolve)
        pods = [m for m in manifests if m["kind"] in ("Rollout", "Deployment")
                and m["metadata"]["labels"]["app.kubernetes.io/name"] == "task-classifier"]
        assert pods
        for m in pods:
            assert schema_errors(m) == []
            env_vars = {e["name"]: e["value"] for e in m["spec"]["template"]["spec"]["containers"][0]["env"]}
            sticky = sticky_from_env(env_vars)
            assert sticky is not None and sticky.header == "X-User-Id"
            assert (sticky.variant, sticky.peer_url) in (("a", b_url), ("b", a_url))


class Pod:
    """One variant's single-model gateway under uvicorn on 127.0.0.1."""

    def __init__(self, version: str, uri: str, port: int, tmp: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.gateway: Gateway = build_single_model_gateway(uri, model="task_classifier", version=version,
                                                           environment="production", store_url="memory://",
                                                           state_dir=tmp / version)
        self.gateway.cache._loader = FakeLoader()
        self.server = uvicorn.Server(uvicorn_config(self.gateway, "127.0.0.1", port))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        pytest.fail(f"pod {self.url} not ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture()
def pods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Pod]]:
    a_port, b_port = free_port(), free_port()
    env = dict(zip(AB_ENV, ("X-User-Id", str(WEIGHT), "2.0.0", "2.1.0", f"http://127.0.0.1:{a_port}",
                            f"http://127.0.0.1:{b_port}"), strict=True))
    for name, value in env.items():  # what the renderer puts in both variants' pod templates
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLOPS_GATEWAY_TOKEN", raising=False)
    a, b = Pod("2.0.0", "fake://v1", a_port, tmp_path), Pod("2.1.0", "fake://v2", b_port, tmp_path)
    for pod in (a, b):
        pod.start()
    try:
        yield {"a": a, "b": b}
    finally:
        for pod in (a, b):
            pod.stop()


def test_every_key_gets_one_variant_wherever_its_requests_land(pods: dict[str, Pod]) -> None:
    rnd = random.Random(11)
    users = [f"user-{i}" for i in range(300)]
    seen: dict[str, set[str]] = {}
    landed: Counter[str] = Counter()
    session = requests.Session()
    for _ in range(900):
        user = rnd.choice(users)
        pod = "b" if rnd.random() < WEIGHT / 100 else "a"  # the HTTPRoute's per-request split
        landed[pod] += 1
        resp = session.post(pods[pod].url + "/invocations", data=BODY, timeout=10,
                            headers={"Content-Type": "application/json", "X-User-Id": user})
        assert resp.status_code == 200, resp.text
        seen.setdefault(user, set()).add(resp.headers["x-model-version"])
    assert landed["a"] > 0 and landed["b"] > 0
    assert all(len(versions) == 1 for versions in seen.values())  # sticky
    on_b = {u for u, versions in seen.items() if versions == {"2.1.0"}}
    assert on_b == {u for u in seen if ab_variant(u, WEIGHT) == "b"}  # the shared function decided
    assert abs(len(on_b) / len(seen) - WEIGHT / 100) < 0.08  # 300 keys: about 2.5 points of noise
    # the answer is B's own: fake://v2 answers (a + b) * 2, fake://v1 (A) would answer 3
    one = session.post(pods["a"].url + "/invocations", data=BODY, timeout=10,
                       headers={"Content-Type": "application/json", "X-User-Id": next(iter(on_b))})
    assert one.json() == {"predictions": [6]} and one.headers["x-mlops-sticky"] == "forwarded-to-b"


def test_routed_and_keyless_requests_are_served_where_they_land(pods: dict[str, Pod]) -> None:
    b_user = next(u for u in (f"user-{i}" for i in range(100)) if ab_variant(u, WEIGHT) == "b")
    for headers, version in (({}, "2.0.0"), ({"X-Mlops-Variant": "b", "X-User-Id": b_user}, "2.0.0")):
        resp = requests.post(pods["a"].url + "/invocations", data=BODY, timeout=10,
                             headers={"Content-Type": "application/json", **headers})
        assert resp.status_code == 200 and resp.headers["x-model-version"] == version
        assert "x-mlops-sticky" not in resp.headers  # never forwarded twice, keyless not at all


def test_a_peer_that_is_down_does_not_fail_the_request(pods: dict[str, Pod]) -> None:
    pods["b"].stop()
    b_user = next(u for u in (f"user-{i}" for i in range(100)) if ab_variant(u, WEIGHT) == "b")
    resp = requests.post(pods["a"].url + "/invocations", data=BODY, timeout=10,
                         headers={"Content-Type": "application/json", "X-User-Id": b_user})
    assert resp.status_code == 200 and resp.headers["x-model-version"] == "2.0.0"  # availability first
