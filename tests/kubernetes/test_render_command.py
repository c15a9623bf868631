"""``mlops-actions render``: files for Argo CD / Flux, resolvers."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlops_actions.cli import main
from mlops_actions.config.loader import load_repo
from mlops_actions.deploy.targets.kubernetes.resolve import alias_resolver, registry_resolver
from mlops_actions.errors import RegistryError
from tests.kubernetes.conftest import REPO, schema_errors


def test_render_writes_one_sorted_file_per_object_and_a_kustomization(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["-C", str(REPO), "render", "--env", "preprod", "--out", str(out), "--no-registry"]) == 0
    assert "rendered 6 object(s)" in capsys.readouterr().out
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert files == ["kustomization.yaml", "ml-preprod/analysistemplate-churn-post-promotion.yaml",
                     "ml-preprod/analysistemplate-churn-pre-promotion.yaml",
                     "ml-preprod/httproute-churn.yaml",
                     "ml-preprod/rollout-churn.yaml", "ml-preprod/service-churn-preview.yaml",
                     "ml-preprod/service-churn.yaml"]
    text = (out / "ml-preprod/rollout-churn.yaml").read_text()
    assert text.startswith("# Rendered by mlops-actions from environments/preprod.yaml")
    rollout = yaml.safe_load(text)
    assert list(rollout) == sorted(rollout) and schema_errors(rollout) == []
    env = {e["name"]: e["value"] for e in rollout["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == "models:/churn@v1-3-0-rc-1"
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization["resources"] == files[1:]
    # rendering again gives the same bytes (stable for git diffs)
    before = {p: p.read_bytes() for p in out.rglob("*.yaml")}
    assert main(["-C", str(REPO), "render", "--env", "preprod", "--out", str(out), "--no-registry"]) == 0
    assert {p: p.read_bytes() for p in out.rglob("*.yaml")} == before


def test_render_removes_its_own_stale_files_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["-C", str(REPO), "render", "--env", "production", "--out", str(out), "--no-registry"]) == 0
    (out / "ml-prod" / "mine.yaml").write_text("# hand-written\nkind: ConfigMap\n")
    stale = out / "ml-prod" / "service-gone.yaml"
    stale.write_text("# Rendered by mlops-actions from environments/production.yaml; do not edit\n")
    assert main(["-C", str(REPO), "render", "--env", "production", "--out", str(out), "--no-registry"]) == 0
    assert not stale.exists() and (out / "ml-prod" / "mine.yaml").exists()


def test_render_gateway_mode_with_previous_version(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["-C", str(REPO), "render", "--env", "edge", "--out", str(out), "--no-registry",
                 "--previous", "churn=1.2.0"]) == 0
    route = yaml.safe_load((out / "ml-edge/httproute-churn.yaml").read_text())
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [80, 20]
    assert main(["-C", str(REPO), "render", "--env", "edge", "--out", str(out), "--no-registry",
                 "--previous", "nope=1.0.0"]) == 2


@dataclass(frozen=True)
class _Version:
    uri: str
    registry_version: str


class _Registry:
    """The slice of the ModelRegistry port the resolver uses."""

    def get(self, name: str, version: str) -> _Version:
        if version != "1.2.0":
            raise RegistryError(f"model {name!r} has no version {version!r}; versions: 1.2.0")
        return _Version(f"models:/{name}/7", "7")


def test_registry_resolver_uses_semver_lookup() -> None:
    spec = load_repo(REPO).models["churn"]
    resolve = registry_resolver(_Registry)
    resolved = resolve("churn", spec, "1.2.0")
    assert (resolved.model_uri, resolved.registry_version) == ("models:/churn/7", "7")
    assert resolved.version == "1.2.0"
    with pytest.raises(RegistryError, match=r"versions: 1\.2\.0"):
        resolve("churn", spec, "9.9.9")
    assert alias_resolver("churn", spec, "1.2.0").model_uri == "models:/churn@v1-2-0"


def test_unknown_environment_lists_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(REPO), "render", "--env", "prod", "--out", str(tmp_path), "--no-registry"]) == 2
    assert "edge, local, preprod, production, staging" in capsys.readouterr().err


@pytest.mark.slow
def test_render_resolves_semver_through_the_embedded_mlflow_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Real MLflow (embedded SQLite under the repo's .mlops/), as users get it by default."""
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mlops_actions.registry.mlflow_registry import get_registry

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo)
    saved = tmp_path / "model"
    mlflow.sklearn.save_model(LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1]),
                              str(saved))
    registry = get_registry(repo_root=repo)
    registry.register("churn", str(saved), version="1.2.0")
    registry.register("task_classifier", str(saved), version="0.3.1")
    out = tmp_path / "out"
    assert main(["-C", str(repo), "render", "--env", "staging", "--out", str(out)]) == 0
    rollout = yaml.safe_load((out / "ml-staging/rollout-churn.yaml").read_text())
    env = {e["name"]: e["value"] for e in rollout["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == "models:/churn/1" and env["MLOPS_MODEL_VERSION"] == "1.2.0"
    # a pin the registry does not have: bad input, naming the versions that exist
    assert main(["-C", str(repo), "render", "--env", "production", "--out", str(out)]) == 2
    assert "no version '1.3.0'; versions that exist: 1.2.0" in capsys.readouterr().err


def test_two_environments_sharing_a_namespace_are_refused_at_render_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo)
    clash = (repo / "environments" / "staging.yaml").read_text().replace("ml-staging", "ml-prod")
    (repo / "environments" / "staging.yaml").write_text(clash)
    code = main(["-C", str(repo), "render", "--env", "staging", "--out", str(tmp_path / "out"),
                 "--no-registry"])
    err = capsys.readouterr().err
    assert code == 2
    assert "staging.yaml:4:3: environments 'staging' and 'production' both deploy churn, " \
           "task_classifier into namespace 'ml-prod'" in err
    assert "hint: give each environment its own target.namespace" in err
    assert not (tmp_path / "out").exists()  # nothing rendered
