"""``mlops-actions init``: what it writes, where its pin comes from, and that running it again
changes nothing and never overwrites a file of yours without --force."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlops_actions.cli import main
from mlops_actions.errors import EXIT_BAD_INPUT, ConfigError
from mlops_actions.gitops import scaffold
from mlops_actions.gitops.scaffold import github_repository, installed_pin, resolve_pin

SHA = "0123456789abcdef0123456789abcdef01234567"
PIN = ["--toolkit-repository", "octo-org/mlops-actions", "--ref", SHA]


def init(root: Path, *args: str) -> int:
    return main(["-C", str(root), "init", *args])


@pytest.mark.parametrize(("url", "repo"), [
    ("https://github.com/octo-org/mlops-actions", "octo-org/mlops-actions"),
    ("https://github.com/octo-org/mlops-actions.git", "octo-org/mlops-actions"),
    ("git+https://github.com/octo-org/mlops-actions.git", "octo-org/mlops-actions"),
    ("git@github.com:octo-org/mlops-actions.git", "octo-org/mlops-actions"),
    ("ssh://git@github.com/octo-org/mlops.actions", "octo-org/mlops.actions"),
    ("https://gitlab.com/octo-org/mlops-actions", None),
    ("/srv/git/mlops-actions", None),
])
def test_github_repository_of_a_remote_url(url: str, repo: str | None) -> None:
    assert github_repository(url) == repo


def _installed(monkeypatch: pytest.MonkeyPatch, record: dict[str, Any] | None) -> None:
    """mlops-actions as installed with this direct_url.json (other distributions unchanged)."""
    real = importlib.metadata.distribution
    monkeypatch.setattr(scaffold.importlib.metadata, "distribution",
                        lambda name: _Dist(record) if name == scaffold.DISTRIBUTION else real(name))


class _Dist:
    def __init__(self, record: dict[str, Any] | None) -> None:
        self.record = record

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return json.dumps(self.record) if self.record is not None else None


def test_pin_from_pip_install_of_a_git_url(monkeypatch: pytest.MonkeyPatch) -> None:
    record = {"url": "https://github.com/octo-org/mlops-actions",
              "vcs_info": {"vcs": "git", "commit_id": SHA, "requested_revision": SHA}}
    _installed(monkeypatch, record)
    assert installed_pin() == ("octo-org/mlops-actions", SHA)


def test_pin_from_an_editable_install_of_a_git_checkout(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    checkout = tmp_path / "mlops actions"  # a space: the file URL is percent-encoded
    checkout.mkdir()
    for args in (["init", "-q"], ["remote", "add", "origin", "git@github.com:octo-org/mlops-actions.git"],
                 ["-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=checkout, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, check=True, capture_output=True,
                          text=True).stdout.strip()
    record = {"url": checkout.as_uri(), "dir_info": {"editable": True}}
    _installed(monkeypatch, record)
    assert installed_pin() == ("octo-org/mlops-actions", head)


def test_no_way_to_know_the_pin_is_exit_2_naming_the_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    record = {"url": "https://files.example.org/mlops_actions-0.1.0.whl", "archive_info": {}}
    _installed(monkeypatch, record)
    assert init(tmp_path, "--model", "churn") == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--toolkit-repository OWNER/REPO and --ref SHA" in err
    assert list(tmp_path.iterdir()) == []
    # half known: only the missing one is asked for
    with pytest.raises(ConfigError, match="cannot tell") as caught:
        resolve_pin("octo-org/mlops-actions", None)
    assert caught.value.hint is not None and "--ref SHA" in caught.value.hint
    assert "--toolkit-repository" not in caught.value.hint


@pytest.mark.parametrize(("repository", "ref", "wrong"), [
    ("octo-org/mlops-actions", "v1.2.0", "not a full commit SHA"),
    ("octo-org/mlops-actions", SHA[:12], "not a full commit SHA"),
    ("mlops-actions", SHA, "not OWNER/REPO"),
    ("octo-org/mlops-actions@v1", SHA, "not OWNER/REPO"),
])
def test_a_pin_is_a_repository_and_a_full_sha(repository: str, ref: str, wrong: str) -> None:
    with pytest.raises(ConfigError, match=wrong):
        resolve_pin(repository, ref)


def test_init_writes_the_files_then_changes_nothing(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert init(tmp_path, "--model", "churn", *PIN) == 0
    first = capsys.readouterr().out
    expected = ["environments/staging.yaml", "environments/production.yaml", "models/churn/model.yaml",
                *(f".github/workflows/{w}" for w in scaffold.TRIGGER_WORKFLOWS), ".gitignore"]
    assert [line.split(": ", 1)[1] for line in first.splitlines() if line.startswith("wrote: ")] == expected
    for needed in ("MLFLOW_TRACKING_URI", "MLOPS_GATEWAY_TOKEN", "MLOPS_PREDICTION_STORE", "all-checks",
                   "mlops-actions/policy", "required reviewers", "MLOPS_ALERT_WEBHOOK_URL"):
        assert needed in first
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert init(tmp_path, "--model", "churn", *PIN) == 0
    again = capsys.readouterr().out
    assert [line for line in again.splitlines() if line.startswith("unchanged: ")] == \
        [f"unchanged: {rel}" for rel in expected]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == snapshot
    assert (tmp_path / ".gitignore").read_text() == ".mlops/\nmlflow.db\nmlruns/\n"
    pr = (tmp_path / ".github/workflows/pr.yml").read_text()
    assert f"uses: octo-org/mlops-actions/.github/workflows/validate.yml@{SHA}" in pr
    assert f"toolkit-ref: {SHA}" in pr and "toolkit-repository: octo-org/mlops-actions" in pr


def test_a_file_of_yours_is_kept_unless_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staging = tmp_path / "environments" / "staging.yaml"
    staging.parent.mkdir()
    staging.write_text("target: {type: local}\nmodels: {}\n")
    (tmp_path / ".gitignore").write_text("node_modules/\n.mlops\nmlflow.db")  # no final newline
    assert init(tmp_path, *PIN) == 0
    out = capsys.readouterr().out
    assert "kept yours (differs): environments/staging.yaml; --force to overwrite" in out
    assert staging.read_text() == "target: {type: local}\nmodels: {}\n"
    assert "appended: .gitignore" in out
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n.mlops\nmlflow.db\nmlruns/\n"
    assert init(tmp_path, "--force", *PIN) == 0
    assert "overwritten: environments/staging.yaml" in capsys.readouterr().out
    assert "http://127.0.0.1:8080" in staging.read_text()


@pytest.mark.parametrize("task", ["binary_classification", "multiclass_classification", "regression"])
def test_what_init_writes_passes_check_once_the_data_exists(tmp_path: Path, task: str) -> None:
    assert init(tmp_path, "--model", "churn", "--task", task, *PIN) == 0
    data = tmp_path / "models" / "churn" / "data"
    data.mkdir()
    for name in ("train.csv", "test.csv"):
        (data / name).write_text("x,target\n1,0\n2,1\n")
    assert main(["-C", str(tmp_path), "check", "--offline"]) == 0
    production = (tmp_path / "environments" / "production.yaml").read_text()
    assert "from: staging" in production and "required_approvals: 1" in production
    assert "http://127.0.0.1:8081" in production


def test_a_bad_model_name_is_refused(tmp_path: Path) -> None:
    assert init(tmp_path, "--model", "../escape", *PIN) == EXIT_BAD_INPUT
    assert not (tmp_path / "models").exists()


def test_the_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    """`pip install "git+https://github.com/OWNER/REPO@SHA"` builds a wheel: init's templates
    must be in it as package data, not only in a checkout."""
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(root)], capture_output=True, text=True, check=False,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("mlops_actions-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {str(p.relative_to(root)) for p in (root / "mlops_actions" / "templates").rglob("*.y*ml")}
    assert templates and templates <= names
