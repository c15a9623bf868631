"""The commands as workflow steps run them: real event payloads, a strict loopback GitHub,
a real local git repository."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_actions.cli import main
from mlops_actions.errors import ConfigError
from mlops_actions.github.rest import marker
from mlops_actions.gitops.pins import last_good_version, set_pin
from tests.github.fakegithub import FakeGitHub
from tests.gitops.conftest import (
    PRODUCTION,
    WEBHOOKS,
    adapt_pr_event,
    commit_all,
    git,
    promote_in_production,
    write,
)

TOKEN = "ghs_stepTOKENabcdef123456"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def step_env(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHub, tmp_path: Path) -> Path:
    """The environment a workflow step sees; returns the GITHUB_OUTPUT file."""
    out = tmp_path / "github_output"
    for key, value in {
        "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/repo", "GITHUB_API_URL": gh.url,
        "GITHUB_TOKEN": TOKEN, "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"), "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "42", "MLOPS_ACTIONS_HTTP_BACKOFF": "0.01",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return out


def test_pr_run_plan_then_sticky_comment(repo: Path, tmp_path: Path, gh: FakeGitHub, step_env: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    base = git(repo, "rev-parse", "main")
    head = promote_in_production(repo, "1.2.0")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(adapt_pr_event(tmp_path, base_sha=base, head_sha=head)))
    gh.state.comments[7] = []
    md = tmp_path / "plan.md"
    for _ in range(2):  # a second push to the PR re-runs the workflow
        assert main(["-C", str(repo), "plan", "--markdown", str(md)]) == 1
        assert main(["-C", str(repo), "comment", "--kind", "plan", "--env", "all",
                     "--body-file", str(md)]) == 0
    comments = gh.state.comments[7]
    assert len(comments) == 1 and marker("plan", "all") in comments[0]["body"]
    assert "1.1.0 -> 1.2.0" in comments[0]["body"]
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    assert "comment-url=https://github.com/octo/repo/pull/7#issuecomment-" in step_env.read_text()
    assert gh.rejected == []


def test_comment_never_fails_the_job(repo: Path, tmp_path: Path, gh: FakeGitHub, step_env: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "b.md"
    body.write_text("hello")
    # the PR was deleted: 404
    assert main(["comment", "--kind", "plan", "--env", "staging", "--body-file", str(body),
                 "--pr", "999"]) == 0
    err = capsys.readouterr().err
    assert "could not post" in err and "not found" in err
    # GitHub down: bounded retries, then a warning
    gh.state.comments[3] = []
    gh.fault("GET", r"/issues/3/comments", 502, times=50)
    assert main(["comment", "--kind", "plan", "--env", "staging", "--body-file", str(body),
                 "--pr", "3"]) == 0
    assert "after 5 tries" in capsys.readouterr().err
    assert main(["comment", "--kind", "plan", "--env", "staging", "--body-file", str(body),
                 "--pr", "3", "--strict"]) == 3
    # a fork PR: no token at all
    monkeypatch.delenv("GITHUB_TOKEN")
    assert main(["comment", "--kind", "plan", "--env", "staging", "--body-file", str(body),
                 "--pr", "3"]) == 0
    assert "skipped: no credentials" in capsys.readouterr().err
    assert main(["comment", "--kind", "plan", "--env", "x", "--body-file", str(tmp_path / "no")]) == 2


def test_apply_step_reports_deploy_on_merged_pr(repo: Path, tmp_path: Path, gh: FakeGitHub,
                                                step_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    merge_sha = "1" * 40
    push = json.loads((WEBHOOKS / "push.event.0.json").read_text())
    push.update(ref="refs/heads/main", before="0" * 39 + "1", after=merge_sha)
    event = tmp_path / "push.json"
    event.write_text(json.dumps(push))
    monkeypatch.setenv("GITHUB_EVENT_NAME", "push")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_SHA", merge_sha)
    gh.state.commit_pulls[merge_sha] = [{"number": 7, "merge_commit_sha": merge_sha}]
    gh.state.comments[7] = [{"id": 1, "body": "unrelated"}]
    report = tmp_path / "apply.md"
    report.write_text("fraud 1.2.0: canary 10% -> 100%, analysis passed")
    assert main(["report-deploy", "--env", "production", "--state", "success",
                 "--body-file", str(report)]) == 0
    assert main(["report-deploy", "--env", "production", "--state", "failure"]) == 0
    assert [s["state"] for s in gh.state.deployment_statuses] == ["success", "failure"]
    assert gh.state.deployments[0]["ref"] == merge_sha
    sticky = [c for c in gh.state.comments[7] if marker("deploy", "production") in c["body"]]
    assert len(sticky) == 1 and "failure" in sticky[0]["body"]
    assert "deployment-id=" in step_env.read_text()
    # GitHub rate-limits everything: the deploy step still exits 0
    gh.fault("POST", r"/deployments$", 403, times=50, headers={"Retry-After": "0"},
             message="You have exceeded a secondary rate limit")
    gh.fault("GET", r"/commits/", 404, times=50)
    assert main(["report-deploy", "--env", "production", "--state", "success"]) == 0
    err = capsys.readouterr().err
    assert "could not record the Deployment" in err and "could not comment" in err
    assert gh.rejected == []


def test_promote_opens_a_pr(repo: Path, tmp_path: Path, gh: FakeGitHub, step_env: Path,
                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    dispatch = json.loads((WEBHOOKS / "workflow_dispatch.event.0.json").read_text())
    dispatch["inputs"] = {"model": "fraud", "version": "1.2.0", "from": "staging", "to": "production"}
    monkeypatch.setenv("GITHUB_EVENT_NAME", "workflow_dispatch")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "d.json"))
    (tmp_path / "d.json").write_text(json.dumps(dispatch))
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    gh.state.refs["main"] = git(repo, "rev-parse", "main")
    gh.state.files[("main", "environments/production.yaml")] = PRODUCTION
    args = ["-C", str(repo), "promote", "--model", "fraud", "--version", "1.2.0",
            "--from", "staging", "--to", "production"]
    assert main([*args, "--dry-run"]) == 0
    assert '-    version: "1.1.0"\n+    version: "1.2.0"' in capsys.readouterr().out
    assert main(args) == 0
    new = gh.state.files[("mlops/promote-fraud-1.2.0-production", "environments/production.yaml")]
    assert new == PRODUCTION.replace('"1.1.0"', '"1.2.0"', 1)
    assert gh.state.pulls[0]["title"] == "Promote fraud 1.2.0 from staging to production"
    assert "pr-number=100" in step_env.read_text() and gh.rejected == []
    # a version that is not the one in staging
    assert main([*args[:6], "1.9.0", *args[7:]]) == 2
    assert "not the version pinned in staging" in capsys.readouterr().err
    assert main(["-C", str(repo), "promote", "--model", "fraud", "--from", "staging", "--to", "qa"]) == 2


def test_rollback_pr_from_git_history(repo: Path, tmp_path: Path, gh: FakeGitHub, step_env: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for version in ("1.2.0", "1.3.0"):
        text = (repo / "environments/production.yaml").read_text()
        current = text.split('version: "', 1)[1].split('"', 1)[0]
        write(repo, "environments/production.yaml", text.replace(f'"{current}"', f'"{version}"', 1))
        commit_all(repo, f"promote fraud {version}")
    write(repo, "environments/production.yaml",
          (repo / "environments/production.yaml").read_text() + "# a comment\n")
    commit_all(repo, "touch the file without changing fraud")
    entry = last_good_version(repo, "production", "fraud")
    assert entry.version == "1.2.0" and entry.subject == "promote fraud 1.2.0"
    gh.state.refs["main"] = git(repo, "rev-parse", "main")
    current = (repo / "environments/production.yaml").read_text()
    gh.state.files[("main", "environments/production.yaml")] = current
    assert main(["-C", str(repo), "rollback-pr", "--model", "fraud", "--env", "production",
                 "--reason", "accuracy dropped", "--base", "main"]) == 0
    pr = gh.state.pulls[0]
    assert pr["title"] == "Roll back fraud in production to 1.2.0"
    assert "1.3.0 -> 1.2.0" in pr["body"] and "accuracy dropped" in pr["body"]
    text = gh.state.files[("mlops/rollback-fraud-1.2.0-production", "environments/production.yaml")]
    assert '"1.2.0"' in text and text.endswith("# a comment\n")
    assert "version=1.2.0" in step_env.read_text()
    # only one version in history (e.g. a shallow clone): a clear error
    assert main(["-C", str(repo), "rollback-pr", "--model", "churn", "--env", "production"]) == 2
    assert "fetch-depth: 0" in capsys.readouterr().err


def test_last_good_skips_rolled_back_versions(repo: Path) -> None:
    def pin(version: str, subject: str) -> None:
        text = (repo / "environments/production.yaml").read_text()
        current = text.split('version: "', 1)[1].split('"', 1)[0]
        write(repo, "environments/production.yaml", text.replace(f'"{current}"', f'"{version}"', 1))
        commit_all(repo, subject)

    pin("1.2.0", "promote fraud 1.2.0")  # history: 1.1.0, 1.2.0
    pin("1.1.0", "Roll back fraud in production to 1.1.0 (#12)")  # 1.2.0 was bad
    pin("1.3.0", "promote fraud 1.3.0")
    entry = last_good_version(repo, "production", "fraud")
    assert entry.version == "1.1.0"  # not 1.2.0, which was rolled back


def test_set_pin_keeps_layout() -> None:
    text = ("# prod\nmodels:\n  fraud:\n    version: '1.0.0'   # pinned by PR #3\n"
            "  churn: {version: \"0.1.0\"}\n")
    new = set_pin(text, "environments/p.yaml", "fraud", "1.1.0")
    assert new == text.replace("'1.0.0'", '"1.1.0"')
    new = set_pin(new, "environments/p.yaml", "churn", "0.2.0")
    # only the pin's value changes: comments, quoting style of the rest, and order byte for byte
    assert new == ("# prod\nmodels:\n  fraud:\n    version: \"1.1.0\"   # pinned by PR #3\n"
                   "  churn: {version: \"0.2.0\"}\n")
    with pytest.raises(ConfigError, match="semantic version"):
        set_pin(text, "environments/p.yaml", "fraud", "latest")


def test_set_pin_adds_the_first_pin_of_a_model() -> None:
    """The first promotion to an environment (init writes ``models: {}``): a new pin with the
    default strategy, the rest byte for byte (it said "add it by hand first")."""
    path = "environments/production.yaml"
    empty = "target: {type: local}\n# pins come by PR\nmodels: {}\n"
    assert set_pin(empty, path, "iris", "1.1.0") == \
        'target: {type: local}\n# pins come by PR\nmodels:\n  iris:\n    version: "1.1.0"\n'
    block = ('models:\n  fraud:\n    version: "1.0.0"\n    strategy:\n      type: canary\n      steps:\n'
             '        - set_weight: 20\n\n# the end\n')
    assert set_pin(block, path, "iris", "1.1.0") == block.replace(
        "        - set_weight: 20\n", '        - set_weight: 20\n  iris:\n    version: "1.1.0"\n')
    assert set_pin("target: {type: local}", path, "iris", "1.1.0") == \
        'target: {type: local}\nmodels:\n  iris:\n    version: "1.1.0"\n'
    with pytest.raises(ConfigError, match="not pinned"):
        set_pin('models: {fraud: {version: "1.0.0"}}\n', path, "iris", "1.0.0")


def test_staging_check_says_not_available(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # never a fake pass: without the gateway the check errors (exit 3, output `not-available`)
    # and nothing is served; a knowingly skipped check says so (output `skipped`) and serves
    # nothing either. The real check is tests/gitops/test_gitops_staging.py.
    from mlops_actions.gitops import staging

    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    served: list[str] = []
    monkeypatch.setattr(staging, "run_staging_check", lambda *a, **k: served.append("ran") or [])
    monkeypatch.setattr("mlops_actions.commands.staging_check.GATEWAY_MODULE", "no_such_gateway_module")
    assert main(["-C", str(repo), "staging-check", "--env", "production"]) == 3
    err = capsys.readouterr().err
    assert "error: staging-check production: not available yet: the gateway (no_such_gateway_module)" in err
    assert outputs.read_text() == "result=not-available\n" and served == []
    write(repo, "environments/dev.yaml", "promotion:\n  require_staging_check: false\nmodels: {}\n")
    outputs.write_text("")
    assert main(["-C", str(repo), "staging-check", "--env", "dev"]) == 0
    assert "staging-check dev: skipped: promotion.require_staging_check is false" in capsys.readouterr().out
    assert outputs.read_text() == "result=skipped\n" and served == []
    assert main(["-C", str(repo), "staging-check", "--env", "nope"]) == 2


def test_comment_on_the_pr_that_merged_a_pin(repo: Path, tmp_path: Path, gh: FakeGitHub, step_env: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The scheduled monitor's A/B comment: on the PR whose merge set the model's pin as it is,
    not on a later PR that touched the same environment file (another pin, a comment)."""
    path = "environments/production.yaml"
    promote_in_production(repo, "1.2.0", branch="ab")  # the PR that started the test
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge pull request #9 from octo/ab", "ab")
    merge_sha = git(repo, "rev-parse", "HEAD")
    write(repo, path, (repo / path).read_text().replace('"0.3.0"', '"0.4.0"'))  # churn, not fraud
    later = commit_all(repo, "promote churn 0.4.0 (#10)")
    write(repo, path, (repo / path).read_text() + "# on call: ml-platform\n")
    commit_all(repo, "a comment (#11)")
    gh.state.commit_pulls[merge_sha] = [{"number": 9, "merge_commit_sha": merge_sha}]
    gh.state.commit_pulls[later] = [{"number": 10, "merge_commit_sha": later}]
    gh.state.comments.update({9: [{"id": 1, "body": "unrelated"}], 10: []})
    body = tmp_path / "ab.md"
    args = ["-C", str(repo), "comment", "--kind", "ab-test:fraud", "--env", "production", "--pin", "fraud",
            "--body-file", str(body)]
    for run in ("first", "second"):  # the schedule runs again: the comment is updated, not repeated
        body.write_text(f"fraud A/B test: no winner yet ({run} look)")
        assert main(args) == 0
        sticky = [c for c in gh.state.comments[9] if marker("ab-test:fraud", "production") in c["body"]]
        bodies = [c["body"].split("\n", 1)[1] for c in sticky]
        assert bodies == [f"fraud A/B test: no winner yet ({run} look)"]
    assert gh.state.comments[10] == [] and len(gh.state.comments[9]) == 2
    assert "updated comment" in capsys.readouterr().out
    assert len(gh.calls("PATCH", "/issues/comments/")) == 1
    # churn's pin is PR #10's
    assert main([a.replace("fraud", "churn") for a in args]) == 0
    assert [c["body"] for c in gh.state.comments[10]] == [f"{marker('ab-test:churn', 'production')}\n"
                                                          "fraud A/B test: no winner yet (second look)"]
    # staging's pins came from a commit no PR merged (pushed directly): a note, exit 0, no comment
    capsys.readouterr()
    assert main([a.replace("production", "staging") for a in args]) == 0
    assert "no pull request merged" in capsys.readouterr().out
    # a model the environment does not pin: a note, exit 0
    assert main([a.replace("fraud", "nope") for a in args]) == 0
    assert "nope is not pinned in environments/production.yaml" in capsys.readouterr().out
    # --pin finds the PR itself
    assert main([*args, "--pr", "9"]) == 2
    assert gh.rejected == []
