"""``mlops-actions serve --env``: where it listens, and what it says when it cannot (issue 16)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mlops_actions.errors import ConfigError
from mlops_actions.serving.server import listen_address
from tests.conftest import free_port
from tests.serving._support import ROOT, TOKEN


def test_listen_address_is_target_urls_host_and_port() -> None:
    assert listen_address("http://127.0.0.1:8081") == ("127.0.0.1", 8081)
    assert listen_address("http://localhost") == ("localhost", 80)
    assert listen_address("https://10.0.0.5") == ("10.0.0.5", 443)
    assert listen_address("http://[::1]:9000") == ("::1", 9000)
    assert listen_address("http://gateway.internal:8081", host="0.0.0.0") == ("0.0.0.0", 8081)
    assert listen_address("http://127.0.0.1:8081", port=9999) == ("127.0.0.1", 9999)
    with pytest.raises(ConfigError, match=r"names the host .gateway\.internal."):
        listen_address("http://gateway.internal:8081")


def _serve(repo: Path, env: str, port: int) -> subprocess.Popen[bytes]:
    (repo / "environments").mkdir(exist_ok=True)
    (repo / "environments" / f"{env}.yaml").write_text(
        f"target: {{type: local, url: 'http://127.0.0.1:{port}'}}\nmodels: {{}}\n")
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_actions", "-C", str(repo), "serve", "--env", env, "--store", "memory://"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MLOPS_GATEWAY_TOKEN": TOKEN,
             "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"})


@pytest.mark.slow
def test_serve_env_listens_on_the_port_of_target_url(tmp_path: Path) -> None:
    # before: --port defaulted to 8080 whatever target.url said, so apply could not reach the gateway
    port = free_port()
    proc = _serve(tmp_path, "production", port)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/admin/status", timeout=2,
                                      headers={"Authorization": f"Bearer {TOKEN}"})
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.3)
        else:
            raise AssertionError("the gateway never listened on target.url's port")
        assert status.status_code == 200 and status.json()["environment"] == "production"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_a_taken_port_fails_before_ready_is_logged(tmp_path: Path) -> None:
    # before: "ready" was logged (the app started), then uvicorn failed to bind
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = _serve(tmp_path, "staging", port)
        out, _ = proc.communicate(timeout=120)
    text = out.decode()
    assert proc.returncode == 3, text
    assert f"cannot listen on 127.0.0.1:{port}" in text and "another process (another gateway?)" in text
    assert "ready:" not in text and "gateway for staging on" not in text


def test_health_answers_while_models_load_and_a_failed_load_stops_serve(tmp_path: Path) -> None:
    """/health answers before the models are loaded; /readyz and scoring follow the loading; a
    model that cannot load stops `serve` with exit 3 and the reason."""
    import asyncio

    from mlops_actions.deploy.interface import Route
    from mlops_actions.serving.gateway import GatewayConfig
    from mlops_actions.serving.local_plane import local_gateway
    from tests.serving._support import FakeLoader, asgi_call

    release = asyncio.Event()
    fake = FakeLoader()

    class SlowLoader:
        def __call__(self, uri: str) -> object:
            while not release.is_set():
                time.sleep(0.01)
            return fake(uri)

    # the rollout host beside the gateway loads the routes (what `serve` builds)
    gw = local_gateway(GatewayConfig(environment="dev", state_dir=tmp_path / "s", token="t",
                                     initial_routes={"m": Route(model="m", stable="1.0.0",
                                                                stable_uri="fake://v1")},
                                     loader=SlowLoader()), tick=False)
    body = b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}'

    async def scenario() -> list[int]:
        seen = []
        async with gw.app.router.lifespan_context(gw.app):
            await asyncio.sleep(0.05)
            for path, method, payload in (("/health", "GET", b""), ("/readyz", "GET", b""),
                                          ("/invocations", "POST", body)):
                seen.append((await asgi_call(gw, method, path, payload))[0])
            release.set()
            for _ in range(200):
                if gw.ready:
                    break
                await asyncio.sleep(0.02)
            for path, method, payload in (("/readyz", "GET", b""), ("/invocations", "POST", body)):
                seen.append((await asgi_call(gw, method, path, payload))[0])
        return seen

    assert asyncio.run(scenario()) == [200, 503, 503, 200, 200]

    from mlops_actions.errors import TargetError
    from mlops_actions.serving.server import run

    broken = local_gateway(GatewayConfig(environment="dev", state_dir=tmp_path / "b", token="t",
                                         initial_routes={"m": Route(model="m", stable="1.0.0",
                                                                    stable_uri="fake://missing")},
                                         loader=fake), tick=False)
    with pytest.raises(TargetError, match="did not start: ServingError: could not load fake://missing"):
        run(broken, "127.0.0.1", free_port())


def test_the_gateway_hands_the_gil_over_within_a_millisecond_while_it_serves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer thread of the prediction log waits at most SWITCH_INTERVAL for the GIL while the
    gateway serves (CPython's 5 ms default stalled every request of a commit); the interval is
    put back when serving ends, so an embedding process keeps its own."""
    import uvicorn

    from mlops_actions.deploy.interface import Route
    from mlops_actions.serving.gateway import GatewayConfig
    from mlops_actions.serving.local_plane import local_gateway
    from mlops_actions.serving.server import SWITCH_INTERVAL, run
    from tests.serving._support import FakeLoader

    seen: list[float] = []
    monkeypatch.setattr(uvicorn.Server, "run",
                        lambda self, sockets=None: seen.append(sys.getswitchinterval()))
    gateway = local_gateway(GatewayConfig(environment="dev", state_dir=tmp_path, token="t",
                                          initial_routes={"m": Route(model="m", stable="1.0.0",
                                                                     stable_uri="fake://v1")},
                                          loader=FakeLoader()), tick=False)
    before = sys.getswitchinterval()
    run(gateway, "127.0.0.1", free_port())
    assert seen == [SWITCH_INTERVAL] and before > SWITCH_INTERVAL
    assert sys.getswitchinterval() == before
