"""`serve --model-uri`: one model version per process (the Kubernetes pod's mode)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mlops_actions.errors import ConfigError
from mlops_actions.serving.local_plane import build_single_model_gateway, model_key_from_uri
from tests.serving._support import FakeLoader, asgi_call


def test_names_come_from_the_pod_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_MODEL", "churn")
    monkeypatch.setenv("MLOPS_MODEL_VERSION", "1.2.0")
    monkeypatch.setenv("MLOPS_ENVIRONMENT", "production")
    monkeypatch.delenv("MLOPS_GATEWAY_TOKEN", raising=False)
    gw = build_single_model_gateway("fake://v1", store_url="memory://", state_dir=tmp_path)
    gw.cache._loader = FakeLoader()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(gw.start())
    body = json.dumps({"inputs": [{"a": 1, "b": 2}]}).encode()
    status, headers, out = loop.run_until_complete(asgi_call(gw, "POST", "/invocations", body))
    assert status == 200 and json.loads(out) == {"predictions": [3]}
    assert headers["x-model-version"] == "1.2.0"
    _, _, metrics = loop.run_until_complete(asgi_call(gw, "GET", "/metrics"))
    assert 'environment="production",model="churn"' in metrics.decode()
    assert (tmp_path / "gateway.token").stat().st_mode & 0o777 == 0o600
    loop.run_until_complete(gw.stop())
    loop.close()


def test_model_key_from_uri_and_empty_uri() -> None:
    assert model_key_from_uri("models:/churn/3") == "churn"
    assert model_key_from_uri("models:/churn@v1-2-0") == "churn"
    assert model_key_from_uri("runs:/abc/model") == "model"
    with pytest.raises(ConfigError, match="empty"):
        build_single_model_gateway("")
