"""``mlops-actions conclude``: the A/B test's winner pinned alone in a PR (FakeGitHub), once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlops_actions.cli import main
from mlops_actions.config.specs import EnvironmentSpec
from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_NO_DATA, ConfigError
from mlops_actions.gitops.pins import drop_strategy
from tests.github.fakegithub import FakeGitHub
from tests.gitops.conftest import commit_all, git
from tests.monitoring.test_monitor_command import _log

ASSET_REPO = Path(__file__).parent.parent / "assets" / "monitoring" / "repo"
PATH = "environments/production.yaml"
PRODUCTION = """\
# production: churn is in an A/B test
target: {type: local}
models:
  churn:
    version: "1.2.0"  # A
    strategy:
      type: ab_test
      version_b: "1.3.0"
      traffic_split: 0.5
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gh: FakeGitHub) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ASSET_REPO, root)
    (root / PATH).write_text(PRODUCTION)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.invalid")
    git(root, "config", "user.name", "ci")
    git(root, "config", "commit.gpgsign", "false")
    commit_all(root, "churn A/B test")
    gh.state.refs["main"] = git(root, "rev-parse", "main")
    gh.state.files[("main", PATH)] = PRODUCTION
    for key, value in {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/repo", "GITHUB_API_URL": gh.url,
                       "GITHUB_TOKEN": "ghs_concludeTOKEN", "GITHUB_OUTPUT": str(tmp_path / "output"),
                       "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"), "GITHUB_REF_NAME": "main",
                       "MLOPS_ACTIONS_HTTP_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLOPS_PREDICTION_STORE", raising=False)
    return root


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


def test_a_winner_gets_one_pr_pinning_it_alone_with_the_analysis(repo: Path, gh: FakeGitHub, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _log(repo, shift=False, n=600, version="1.2.0", accuracy=0.85, prefix="a")
    _log(repo, shift=False, n=600, version="1.3.0", accuracy=0.97, prefix="b")
    args = ["-C", str(repo), "conclude", "--env", "production", "--model", "churn"]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("B (1.3.0) beats A (1.2.0) on accuracy: +") and "-    strategy:" in out
    assert gh.state.pulls == []

    assert main(args) == 0
    out = capsys.readouterr().out
    [pr] = gh.state.pulls
    assert f"opened #{pr['number']}" in out
    assert pr["title"] == "Conclude the A/B test of churn in production: keep 1.3.0"
    sentence = out.splitlines()[0]
    assert sentence in pr["body"] and "| accuracy | primary | B | 1.3.0 | 600 |" in pr["body"]
    new = gh.state.files[(pr["head"]["ref"], PATH)]
    assert new == '# production: churn is in an A/B test\ntarget: {type: local}\nmodels:\n  churn:\n' \
                  '    version: "1.3.0"  # A\n'

    pin = EnvironmentSpec.model_validate(yaml.safe_load(new)).models["churn"]
    assert pin.version == "1.3.0" and pin.strategy.type == "full"
    output = (tmp_path / "output").read_text()
    assert "winner=b" in output and "version=1.3.0" in output and f"pr-number={pr['number']}" in output
    assert sentence in (tmp_path / "summary").read_text()

    # clicked twice: still one PR, no second commit
    assert main(args) == 0
    assert f"#{pr['number']} is already open" in capsys.readouterr().out
    assert len(gh.state.pulls) == 1 and len(gh.calls("PUT", "/contents/")) == 1
    assert gh.rejected == []


@pytest.mark.parametrize(("a", "b", "reason"), [
    ((600, 0.9), (600, 0.9), "no significant difference"),
    ((600, 0.85), (400, 0.97), "sample ratio mismatch"),
    ((20, 0.85), (20, 0.97), "too few rows"),
])
def test_no_winner_opens_nothing_and_says_why(repo: Path, gh: FakeGitHub,
                                              capsys: pytest.CaptureFixture[str], a: tuple[int, float],
                                              b: tuple[int, float], reason: str) -> None:
    _log(repo, shift=False, n=a[0], version="1.2.0", accuracy=a[1], prefix="a")
    _log(repo, shift=False, n=b[0], version="1.3.0", accuracy=b[1], prefix="b")
    assert main(["-C", str(repo), "conclude", "--env", "production", "--model", "churn"]) == EXIT_CHECK_FAILED
    out = capsys.readouterr().out
    assert f"no winner ({reason}): no PR opened" in out
    assert gh.state.pulls == [] and gh.calls("POST", "/git/refs") == []


def test_no_rows_and_bad_input(repo: Path, gh: FakeGitHub, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["-C", str(repo), "conclude", "--env", "production", "--model", "churn"]
    assert main(args) == EXIT_NO_DATA
    assert "nothing to conclude" in capsys.readouterr().err
    (repo / PATH).write_text('target: {type: local}\nmodels:\n  churn:\n    version: "1.2.0"\n')
    assert main(args) == 2
    assert "churn is not in an A/B test in production" in capsys.readouterr().err
    assert main([*args[:6], "nope"]) == 2
    assert "not pinned in environment" in capsys.readouterr().err
    assert gh.state.pulls == []


def test_drop_strategy_keeps_everything_else_and_refuses_inline_pins() -> None:
    text = ('models:\n  a:\n    version: "1.0.0"\n    strategy:\n      type: ab_test\n'
            '      version_b: "1.1.0"\n\n    depends_on: [b]  # after b\n  b:\n    version: "2.0.0"\n')
    assert drop_strategy(text, PATH, "a") == ('models:\n  a:\n    version: "1.0.0"\n\n'
                                              '    depends_on: [b]  # after b\n  b:\n    version: "2.0.0"\n')
    assert drop_strategy(text, PATH, "b") == text
    inline = 'models:\n  a: {version: "1.0.0", strategy: {type: ab_test, version_b: "1.1.0"}}\n'
    with pytest.raises(ConfigError, match="written inline"):
        drop_strategy(inline, PATH, "a")
