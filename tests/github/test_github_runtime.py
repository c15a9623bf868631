"""The Actions runtime: outputs, step summary cap, annotation limits, masking, event payloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_actions.errors import ConfigError
from mlops_actions.github import actions
from mlops_actions.github.event import load_event, parse_event

WEBHOOKS = Path(__file__).parent.parent / "assets" / "github" / "webhooks"


def _parse_output_file(text: str) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT the way the runner does (name=value and name<<DELIM heredocs)."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            j = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1: j])
            i = j + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
            i += 1
        else:
            i += 1
    return out


def test_outputs_single_and_multiline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    actions.set_output("changed", "true")
    actions.set_output("envs", "staging\nproduction\nEOF\nx=y")
    parsed = _parse_output_file(out.read_text())
    assert parsed == {"changed": "true", "envs": "staging\nproduction\nEOF\nx=y"}
    with pytest.raises(ValueError):
        actions.set_output("bad\nname", "x")


def test_summary_stays_under_one_mebibyte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    line = "| model | 1.2.0 | 1.3.0 |\n"
    assert actions.append_summary(line * 30000)  # ~780 KB
    assert actions.append_summary(line * 30000)  # would overflow
    size = summary.stat().st_size
    assert size < 1024 * 1024
    assert "summary truncated" in summary.read_text()
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert not actions.append_summary("x")


def test_annotation_limit_and_mask(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    actions.reset_annotation_counts()
    for i in range(12):
        actions.annotate_limited("error", f"problem {i}")
    actions.annotate_limited("warning", "w")
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("::error") for line in out) == 10
    assert "error: problem 11" in out
    assert actions.annotations_dropped()["error"] == 2
    assert sum(line.startswith("::warning") for line in out) == 1
    actions.reset_annotation_counts()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    actions.add_mask("s3cr3t\nline2")
    assert capsys.readouterr().out.splitlines() == ["::add-mask::s3cr3t", "::add-mask::line2"]


def _env(name: str, file: str) -> dict[str, str]:
    return {"GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(WEBHOOKS / file)}


def test_real_payloads() -> None:
    ev = load_event(_env("pull_request", "pull_request.opened.0.json"))
    assert ev is not None and ev.pull_request is not None
    assert ev.pull_request.number == 2 and ev.pull_request.base_ref == "master"
    assert len(ev.pull_request.head_sha) == 40 and not ev.pull_request.from_fork
    assert ev.repository == "Codertocat/Hello-World"

    review = load_event(_env("pull_request_review", "pull_request_review.submitted.0.json"))
    assert review is not None and review.review is not None and review.review.state == "commented"
    assert review.pull_request is not None

    push = load_event(_env("push", "push.event.0.json"))
    assert push is not None and push.push is not None
    assert push.push.created and push.push.branch is None  # a tag push

    dispatch = load_event(_env("workflow_dispatch", "workflow_dispatch.event.0.json"))
    assert dispatch is not None and dispatch.inputs == {} and dispatch.repository == "octo-org/octo-repo"

    comment = load_event(_env("issue_comment", "issue_comment.created.0.json"))
    assert comment is not None and comment.comment is not None and comment.comment.body

    fork = json.loads((WEBHOOKS / "pull_request.opened.0.json").read_text())
    fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    forked = parse_event("pull_request", fork)
    assert forked.pull_request is not None and forked.pull_request.from_fork

    closed = load_event(_env("pull_request", "pull_request.closed.3.json"))
    assert closed is not None and closed.pull_request is not None
    assert load_event({}) is None


def test_bad_payload_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError) as err:
        load_event({"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(bad)})
    assert "event.json:1:2" in str(err.value)
    with pytest.raises(ConfigError):
        load_event({"GITHUB_EVENT_PATH": str(tmp_path / "missing.json")})
    bad.write_text(json.dumps([1]))
    with pytest.raises(ConfigError):
        load_event({"GITHUB_EVENT_PATH": str(bad)})


def test_a_generated_or_file_gateway_token_is_masked_in_actions(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """GitHub masks the secrets it passes in; a token the gateway generated into .mlops/ (or
    that apply reads from there) must be masked by us, or the next log line could show it.
    The masking is the CLI edge's job (``serve``), not the serving layer's (issue 17)."""
    from types import SimpleNamespace

    from mlops_actions import masking
    from mlops_actions.cli import main
    from mlops_actions.deploy.targets.local import read_token
    from mlops_actions.github import actions
    from mlops_actions.serving import local_plane, server
    from mlops_actions.serving.auth import load_or_create_token

    monkeypatch.delenv("MLOPS_GATEWAY_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    token = load_or_create_token(tmp_path)
    assert capsys.readouterr().out == ""  # the serving layer prints nothing
    assert read_token("MLOPS_GATEWAY_TOKEN", tmp_path) == token
    assert capsys.readouterr().out == ""  # the adapter announces it; only the CLI edge prints
    with masking.sink(actions.add_mask):  # what cli.main registers
        assert read_token("MLOPS_GATEWAY_TOKEN", tmp_path) == token
    assert capsys.readouterr().out == f"::add-mask::{token}\n"
    served: list[object] = []
    monkeypatch.setattr(local_plane, "build_single_model_gateway", lambda *a, **k: SimpleNamespace(
        config=SimpleNamespace(token=read_token("MLOPS_GATEWAY_TOKEN", tmp_path))))
    monkeypatch.setattr(server, "run", lambda gateway, host, port: served.append(gateway))
    assert main(["serve", "--model-uri", "models:/churn/1"]) == 0 and served
    # masked before the server starts: once as the adapter read it (main's sink), once by serve
    assert capsys.readouterr().out == f"::add-mask::{token}\n" * 2
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert main(["serve", "--model-uri", "models:/churn/1"]) == 0
    assert capsys.readouterr().out == ""  # outside Actions
