"""Contract: plan and policy read live state from a real MLflow registry (SQLite store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_actions.cli import main
from tests.gitops.conftest import git, promote_in_production

pytestmark = pytest.mark.slow


def _populate(uri: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name, versions, aliases in (
        ("fraud", ("1.0.0", "1.1.0", "1.2.0"), {"production": "1.1.0", "staging": "1.2.0"}),
        ("churn", ("0.3.0",), {"production": "0.3.0", "staging": "0.3.0"}),
    ):
        client.create_registered_model(name)
        for semver in versions:
            mv = client.create_model_version(name, f"file:///tmp/{name}/{semver}",
                                             tags={"mlops.semver": semver})
            for alias, target in aliases.items():
                if target == semver:
                    client.set_registered_model_alias(name, alias, mv.version)


def test_plan_and_policy_against_real_mlflow(repo: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    _populate(uri)
    promote_in_production(repo, "1.2.0")
    git(repo, "checkout", "-q", "main")
    assert main(["-C", str(repo), "plan", "--base", "main", "--head", "pr", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["live"] == "checked" and data["registry_calls"] == 2
    prod = next(e for e in data["environments"] if e["name"] == "production")
    fraud = next(m for m in prod["models"] if m["model"] == "fraud")
    assert fraud["live_version"] == "1.1.0"
    assert fraud["alias_moves"] == [{"alias": "production", "old": "1.1.0", "new": "1.2.0"}]
    assert main(["-C", str(repo), "policy", "--base", "main", "--head", "pr", "--pr", "7"]) == 0
    out = capsys.readouterr().out
    assert "PASSED       promotion-order  production/fraud" in out
    # a pin to a version that is not registered: exit 2, located
    git(repo, "checkout", "-q", "pr")
    text = (repo / "environments/production.yaml").read_text()
    (repo / "environments/production.yaml").write_text(text.replace('"1.2.0"', '"7.0.0"', 1))
    assert main(["-C", str(repo), "plan", "--base", "main"]) == 2
    err = capsys.readouterr().err
    assert "environments/production.yaml:6:14" in err and "7.0.0 does not exist" in err
