"""`mlops-actions check` and `mlops-actions schema` through the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from config_helpers import BROKEN, VALID, FakeRegistry, make_registry

from mlops_actions.cli import main
from mlops_actions.commands import check as check_command
from mlops_actions.config.schema import SCHEMA_FILES, SHIPPED_DIR, schema_text
from mlops_actions.config.yamlsafe import parse_yaml


@pytest.fixture
def fake_factory(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, Path]]:
    calls: list[tuple[str | None, Path]] = []

    def factory(tracking_uri: str | None, repo_root: Path) -> FakeRegistry:
        calls.append((tracking_uri, repo_root))
        return make_registry()

    monkeypatch.setattr(check_command, "registry_factory", factory)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    return calls


def test_check_valid_repository_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(VALID), "check", "--offline"]) == 0
    assert capsys.readouterr().out == \
        "ok: 2 model(s), 2 environment(s), 4 pin(s) (offline: pins not resolved)\n"


def test_check_online_resolves_pins_through_the_factory(
        fake_factory: list[tuple[str | None, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(VALID), "check", "--tracking-uri", "sqlite:///x.db"]) == 0
    assert capsys.readouterr().out.endswith("4 pin(s), every pin resolved in the registry\n")
    assert fake_factory == [("sqlite:///x.db", VALID)]


def test_check_online_reports_a_missing_version(repo_dir: Path, fake_factory: list[tuple[str | None, Path]],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copyfile(BROKEN / "env_version_not_in_registry.yaml", repo_dir / "environments" / "staging.yaml")
    assert main(["-C", str(repo_dir), "check"]) == 2
    err = capsys.readouterr().err
    assert 'error: environments/staging.yaml:5:14: models.diabetes.version: version "0.4.0" of registered ' \
           "model `diabetes-regressor` does not exist; versions that exist: 0.3.0, 0.3.1" in err
    # offline, the same repository is fine
    assert main(["-C", str(repo_dir), "check", "--offline"]) == 0


def test_check_registry_down_exits_3_with_one_clear_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # the real MLflow adapter against a port nothing listens on (not a fake echoing its own
    # message): the translation of MLflow's connection error is what is checked
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    assert main(["-C", str(VALID), "check"]) == 3
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot reach MLflow at http://127.0.0.1:9")
    assert "Traceback" not in err and "hint: check MLFLOW_TRACKING_URI" in err


def test_check_without_the_registry_adapter_says_to_go_offline(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import builtins

    real_import = builtins.__import__

    def no_adapter(name: str, *args: object, **kwargs: object) -> object:
        if name == "mlops_actions.registry.mlflow_registry":
            raise ImportError("no adapter in this build")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_adapter)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # a registry is configured
    assert main(["-C", str(VALID), "check"]) == 3
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == \
        ["error: the MLflow registry adapter is not available in this build"]
    # the hint's command is one that works in this very build, and says what it left out
    hint = re.search(r"hint: run `mlops-actions (check --offline)` \(no adapter in this build\)", err)
    assert hint is not None, err
    assert main(["-C", str(VALID), *hint.group(1).split()]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(offline: pins not resolved)")


def test_check_without_any_registry_configured_skips_pins_with_a_note(
        repo_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def factory(tracking_uri: str | None, repo_root: Path) -> FakeRegistry:
        raise AssertionError("no registry should be opened")

    monkeypatch.setattr(check_command, "registry_factory", factory)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["-C", str(repo_dir), "check"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("note: pins not resolved: no --tracking-uri, no MLFLOW_TRACKING_URI and "
                                   f"no embedded registry at {repo_dir / 'mlflow.db'}")
    assert captured.out.endswith("(offline: pins not resolved)\n")
    # once the embedded registry exists, check uses it
    (repo_dir / "mlflow.db").write_bytes(b"")
    monkeypatch.setattr(check_command, "registry_factory", lambda uri, repo_root: make_registry())
    assert main(["-C", str(repo_dir), "check"]) == 0
    assert capsys.readouterr().out.endswith("every pin resolved in the registry\n")


def test_check_lists_every_error_and_annotates_in_actions(
        repo_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copyfile(BROKEN / "model_typo_top_key.yaml", repo_dir / "models" / "diabetes" / "model.yaml")
    shutil.copyfile(BROKEN / "env_weight_150.yaml", repo_dir / "environments" / "staging.yaml")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["-C", str(repo_dir), "check", "--offline"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "error: models/diabetes/model.yaml:2:1: (top level): unknown key `taks`; did you mean `task`?",
        "  hint: valid keys here: data, description, monitoring, name, owners, registered_name, task, "
        "validation",
        "error: environments/staging.yaml:9:23: models.diabetes.strategy.steps[0].set_weight: "
        "expected a value <= 100, got integer 150",
        "2 errors",
    ]
    annotations = captured.out.splitlines()
    assert annotations[0] == ("::error file=models/diabetes/model.yaml,line=2,col=1,title=ConfigError::"
                              "(top level): unknown key `taks`; did you mean `task`?")
    assert annotations[1].startswith("::error file=environments/staging.yaml,line=9,col=23,")
    assert len(annotations) == 2


def test_help_of_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    assert "--offline" in capsys.readouterr().out
    assert main(["schema", "--help"]) == 0
    assert "--out" in capsys.readouterr().out


def test_shipped_schemas_equal_a_fresh_export() -> None:
    for name in SCHEMA_FILES:
        assert (SHIPPED_DIR / name).read_text() == schema_text(name), \
            f"{name} is stale: run `python -m mlops_actions schema --out mlops_actions/schemas`"


def test_schema_command_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(tmp_path), "schema", "--out", "out"]) == 0
    written = capsys.readouterr().out.split()
    out = tmp_path / "out"
    assert written == [str(out / "model.schema.json"), str(out / "environment.schema.json")]
    model = json.loads((tmp_path / "out" / "model.schema.json").read_text())
    assert model["$id"] == "urn:mlops-actions:schema:model:v1"
    assert model["title"] == "mlops-actions model.yaml"
    assert model["additionalProperties"] is False


def test_schema_out_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    assert main(["-C", str(tmp_path), "schema", "--out", "file"]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("path", [*sorted(str(p.relative_to(VALID)) for p in VALID.rglob("*.yaml")),
                                  "../full/model.yaml", "../full/environment.yaml"])
def test_valid_fixtures_validate_against_the_json_schemas(path: str) -> None:
    name = "model.schema.json" if path.startswith("models") or path.endswith("model.yaml") \
        else "environment.schema.json"
    schema = json.loads((SHIPPED_DIR / name).read_text())
    jsonschema.Draft202012Validator(schema).validate(parse_yaml((VALID / path).read_text()).data)


def test_json_schema_rejects_what_the_loader_rejects() -> None:
    schema = json.loads((SHIPPED_DIR / "environment.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for bad in ({"models": {"x": {"version": "1.10"}}},
                {"models": {"x": {"version": "1.2.0", "strategy": {"type": "blue-green"}}}},
                {"modles": {}}):
        assert list(validator.iter_errors(bad)), bad
