"""plan: git base vs head vs live, text/JSON/Markdown, exit codes, call budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_actions.cli import main
from mlops_actions.errors import ConfigError
from mlops_actions.gitops.live import LiveRegistry
from mlops_actions.gitops.plan import ChangeKind, compute_plan, render_text
from mlops_actions.gitops.sources import read_git, read_source
from tests.gitops.conftest import FakeRegistry, commit_all, git, promote_in_production, write


def test_no_change_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(repo), "plan", "--base", "main", "--no-live"]) == 0
    assert "Plan: no change." in capsys.readouterr().out


def test_version_change_between_refs(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    promote_in_production(repo, "1.2.0")
    code = main(["-C", str(repo), "plan", "--base", "main", "--head", "pr", "--no-live", "--json"])
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["changed_environments"] == ["production"]
    prod = next(e for e in data["environments"] if e["name"] == "production")
    fraud = next(m for m in prod["models"] if m["model"] == "fraud")
    assert (fraud["kind"], fraud["old_version"], fraud["new_version"]) == ("version", "1.1.0", "1.2.0")
    assert fraud["new_strategy"] == "canary 10% -> 100%"


def test_working_tree_vs_head_and_directories(repo: Path, tmp_path: Path) -> None:
    write(repo, "environments/staging.yaml",
          (repo / "environments/staging.yaml").read_text() + "  newmodel:\n    version: \"0.1.0\"\n")
    write(repo, "environments/qa.yaml", "models: {}\n")
    plan = compute_plan(read_source(repo, "HEAD"), read_source(repo, None), None)
    staging = next(e for e in plan.environments if e.name == "staging")
    assert [m.kind for m in staging.models if m.changed] == [ChangeKind.ADDED]
    assert next(e for e in plan.environments if e.name == "qa").status == "added"
    # an empty directory as base: every environment is new (apply.yml's manual re-apply)
    empty = tmp_path / "empty"
    empty.mkdir()
    everything = compute_plan(read_source(repo, str(empty)), read_source(repo, None), None)
    assert {e.status for e in everything.environments} == {"added"} and everything.changed
    # two plain directories (e.g. two checkouts)
    plan2 = compute_plan(read_source(repo, str(repo)), read_source(repo, str(repo)), None)
    assert not plan2.changed


def test_live_alias_moves_and_drift(repo: Path, registry: FakeRegistry) -> None:
    promote_in_production(repo, "1.2.0")
    registry.versions["churn"].insert(0, "0.2.0")
    registry.models["churn"]["production"] = "0.2.0"  # changed by hand, outside git
    registry.models["fraud"]["production-canary"] = "1.2.0"  # a rollout left behind
    live = LiveRegistry(registry)
    plan = compute_plan(read_git(repo, "main"), read_git(repo, "pr"), live)
    prod = {m.model: m for e in plan.environments if e.name == "production" for m in e.models}
    fraud, churn = prod["fraud"], prod["churn"]
    moves = {(mv.alias, mv.old, mv.new) for mv in fraud.alias_moves}
    assert moves == {("production", "1.1.0", "1.2.0"), ("production-canary", "1.2.0", None)}
    assert any("rollout is in progress" in n for n in fraud.notes)
    assert churn.kind is ChangeKind.UNCHANGED and churn.drift and "0.2.0" in churn.drift
    assert churn.changed  # apply would restore the alias
    assert plan.problems == ()
    # budget: one port call per model (2 HTTP calls with MLflow), shared by every environment
    assert registry.calls == 2
    assert plan.registry_calls == registry.calls


def test_pin_to_missing_version_is_located(repo: Path, registry: FakeRegistry) -> None:
    promote_in_production(repo, "9.9.9")
    plan = compute_plan(read_git(repo, "main"), read_git(repo, "pr"), LiveRegistry(registry))
    assert len(plan.problems) == 1
    problem = plan.problems[0]
    assert "9.9.9 does not exist" in problem.message and "1.2.0" in problem.message
    assert str(problem.location) == "pr:environments/production.yaml:6:14"


def test_unregistered_model_is_a_problem(repo: Path, registry: FakeRegistry) -> None:
    del registry.models["churn"]
    del registry.versions["churn"]
    plan = compute_plan(read_git(repo, "main"), read_source(repo, None), LiveRegistry(registry))
    assert any("not registered" in p.message for p in plan.problems)


def test_broken_yaml_at_head_exits_2_with_location(repo: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    git(repo, "checkout", "-q", "-b", "broken")
    write(repo, "environments/staging.yaml", "models:\n  fraud:\n    version: 1.2\n")
    commit_all(repo, "bad pin")
    assert main(["-C", str(repo), "plan", "--base", "main", "--head", "broken", "--no-live"]) == 2
    err = capsys.readouterr().err
    assert "broken:environments/staging.yaml" in err and "/tmp" not in err.replace(str(repo), "")
    with pytest.raises(ConfigError, match="failed"):
        read_git(repo, "no-such-ref")


def test_unknown_env_and_outputs_in_actions(repo: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    promote_in_production(repo, "1.2.0")
    out, summary, md = tmp_path / "out", tmp_path / "summary", tmp_path / "plan.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["-C", str(repo), "plan", "--base", "main", "--no-live", "--markdown", str(md)]) == 1
    assert "changed=true" in out.read_text() and "environments=production" in out.read_text()
    assert 'environments-json=["production"]' in out.read_text()
    assert "changes=production fraud 1.2.0\n" in out.read_text()
    assert "| ~ | `fraud` | 1.1.0 -> 1.2.0 |" in md.read_text()
    assert "mlops-actions plan" in summary.read_text()
    assert main(["-C", str(repo), "plan", "--base", "main", "--env", "nope", "--no-live"]) == 2
    assert "neither base nor head" in capsys.readouterr().err


def test_no_registry_configured_is_said_not_faked(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["-C", str(repo), "plan", "--base", "main"]) == 0
    assert "skipped: no registry configured" in capsys.readouterr().out
    assert not (repo / ".mlops").exists()


def test_registry_unreachable(repo: Path, registry: FakeRegistry) -> None:
    registry.versions["broken"] = []
    git(repo, "checkout", "-q", "-b", "pr")
    write(repo, "environments/staging.yaml", "models:\n  broken:\n    version: \"1.0.0\"\n")
    plan = compute_plan(read_git(repo, "main"), read_source(repo, None), LiveRegistry(registry))
    assert any("unreachable" in p.message for p in plan.problems)


def test_target_status_drift_and_moves(repo: Path, registry: FakeRegistry) -> None:
    from mlops_actions.deploy.interface import Route
    from mlops_actions.deploy.targets.interface import TargetStatus

    promote_in_production(repo, "1.2.0")
    status = TargetStatus("production", routes={
        "fraud": Route("fraud", "1.1.0", "models:/fraud/2", candidate="1.2.0",
                       candidate_uri="models:/fraud/3", mode="canary", weight=10),
        "churn": Route("churn", "0.2.0", "models:/churn/1"),
    }, rollouts={})
    plan = compute_plan(read_git(repo, "main"), read_git(repo, "pr"), LiveRegistry(registry),
                        targets={"production": status, "staging": "unreachable: connection refused"})
    prod = {m.model: m for e in plan.environments if e.name == "production" for m in e.models}
    assert prod["fraud"].target_version == "1.1.0" and prod["fraud"].drift is None
    assert any("canary of 1.2.0 at 10%" in n for n in prod["fraud"].notes)
    churn = prod["churn"]
    assert churn.changed and churn.drift and "target serves 0.2.0" in churn.drift
    staging = next(e for e in plan.environments if e.name == "staging")
    assert staging.target == "unreachable: connection refused" and not staging.changed
    assert "production: checked" in plan.target
    text = render_text(plan)
    assert "target: 0.2.0 -> 0.3.0" in text


def test_unreachable_gateway_is_a_note(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_actions.gitops.live import read_target
    from mlops_actions.gitops.sources import read_dir
    from tests.conftest import free_port

    port = free_port()
    write(repo, "environments/staging.yaml",
          f"target: {{type: local, url: \"http://127.0.0.1:{port}\"}}\nmodels: {{}}\n")
    spec = read_dir(repo).envs["staging"]
    monkeypatch.delenv("MLOPS_GATEWAY_TOKEN", raising=False)
    assert read_target(repo, "staging", spec).startswith("not checked: no admin token")  # type: ignore[union-attr]
    monkeypatch.setenv("MLOPS_GATEWAY_TOKEN", "t0ken")
    note = read_target(repo, "staging", spec)
    assert isinstance(note, str) and note.startswith("unreachable:")


def test_plan_reads_the_registry_under_the_models_registered_name(
        repo: Path, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # issue 16: with another MLflow name in model.yaml, plan looked up the directory: "not registered"
    from mlops_actions.commands import plan as plan_command

    registry.models["fraud-detector"] = registry.models.pop("fraud")
    registry.versions["fraud-detector"] = registry.versions.pop("fraud")
    write(repo, "models/fraud/model.yaml",
          "registered_name: fraud-detector\ntask: binary_classification\n"
          "data: {test: test.csv, label: y}\n")
    monkeypatch.setattr(plan_command, "open_registry", lambda _repo: registry)
    monkeypatch.setattr(plan_command, "read_target", lambda *_: "not checked")
    assert main(["-C", str(repo), "plan", "--base", "main", "--live", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["problems"] == []
    production = next(e for e in data["environments"] if e["name"] == "production")
    fraud = next(m for m in production["models"] if m["model"] == "fraud")
    assert fraud["live_version"] == "1.1.0"


def test_plan_shows_the_order_of_models_with_depends_on(repo: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    git(repo, "checkout", "-q", "-b", "ordered")
    write(repo, "environments/staging.yaml",
          'models:\n  fraud:\n    version: "1.3.0"\n    depends_on: [churn]\n'
          '  churn:\n    version: "0.3.0"\n    depends_on: [features]\n'
          '  features:\n    version: "0.1.0"\n  iris:\n    version: "2.0.0"\n')
    commit_all(repo, "fraud after churn after features")
    markdown = tmp_path / "plan.md"
    assert main(["-C", str(repo), "plan", "--base", "main", "--head", "ordered", "--no-live",
                 "--markdown", str(markdown)]) == 1
    out = capsys.readouterr().out.splitlines()
    staging = out.index("environment staging (changed, target local)")
    assert out[staging + 1] == \
        "  order: features + iris -> churn -> fraud (each wave Healthy before the next)"
    assert "Order: `features` + `iris` -> `churn` -> `fraud` (apply waits for each wave to be Healthy " \
        "before it starts the next)" in markdown.read_text()
    plan = compute_plan(read_git(repo, "main"), read_git(repo, "ordered"), None)
    by_name = {e.name: e for e in plan.environments}
    assert by_name["staging"].order == (("features", "iris"), ("churn",), ("fraud",))
    assert by_name["production"].order == ()  # no depends_on: no order line
    assert "order:" not in render_text(compute_plan(read_git(repo, "main"), read_git(repo, "main"), None))
