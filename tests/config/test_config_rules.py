"""Cross-file rules and resolving pins against a registry (the in-memory fake)."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import VALID, DownRegistry, FakeRegistry

from mlops_actions.config.loader import load_repo
from mlops_actions.config.rules import check_registry, check_repo, metrics_for_task
from mlops_actions.errors import RegistryError


def _lines(errors: list) -> list[str]:  # type: ignore[type-arg]
    return [f"{e.location}: {e.message}" for e in errors]


def test_valid_repository_passes_every_rule(registry: FakeRegistry) -> None:
    assert check_repo(load_repo(VALID), registry=registry) == []
    # one list_versions call per registered model, however many pins
    assert sorted(registry.calls) == ["list_versions breast-cancer-classifier",
                                      "list_versions diabetes-regressor"]


def test_metrics_per_task() -> None:
    assert "accuracy" in metrics_for_task("multiclass_classification")
    assert "rmse" in metrics_for_task("regression")
    assert "rmse" not in metrics_for_task("binary_classification")


def test_unknown_registered_model_names_no_versions(repo_dir: Path) -> None:
    registry = FakeRegistry({"diabetes-regressor": ["0.3.1"]})
    errors = check_registry(load_repo(repo_dir), registry)
    assert _lines(errors) == [
        'environments/production.yaml:13:14: models.cancer.version: version "1.1.0" of registered model '
        "`breast-cancer-classifier` does not exist; versions that exist: none",
        'environments/production.yaml:16:18: models.cancer.strategy.version_b: version "1.2.0" of registered '
        "model `breast-cancer-classifier` does not exist; versions that exist: none",
        'environments/staging.yaml:7:14: models.cancer.version: version "1.2.0" of registered model '
        "`breast-cancer-classifier` does not exist; versions that exist: none",
    ]


def test_versions_are_listed_in_semver_order(repo_dir: Path) -> None:
    registry = FakeRegistry({"breast-cancer-classifier": ["1.10.0", "1.9.0", "1.2.0"],
                             "diabetes-regressor": ["0.3.1"]})
    errors = check_registry(load_repo(repo_dir), registry)
    assert [e.message.split("exist: ")[1] for e in errors] == ["1.2.0, 1.9.0, 1.10.0"]


def test_registry_down_raises_its_own_error_once(repo_dir: Path) -> None:
    with pytest.raises(RegistryError, match=r"cannot reach MLflow at http://127\.0\.0\.1:9/"):
        check_repo(load_repo(repo_dir), registry=DownRegistry())


def test_promotion_chain_of_three_with_a_cycle(repo_dir: Path) -> None:
    envs = repo_dir / "environments"
    (envs / "staging.yaml").write_text("promotion: {from: qa}\n")
    (envs / "qa.yaml").write_text("promotion: {from: production}\n")
    errors = check_repo(load_repo(repo_dir))
    assert _lines(errors) == [
        "environments/production.yaml:5:9: promotion.from: promotion order has a cycle: "
        "production -> staging -> qa -> production"]


def test_rules_are_offline_without_a_registry(repo_dir: Path) -> None:
    (repo_dir / "environments" / "staging.yaml").write_text('models: {cancer: {version: "99.0.0"}}\n')
    assert check_repo(load_repo(repo_dir)) == []


# --------------------------------------------------------------------------- one model name (issue 16)


def _declare(repo_dir: Path, line: str) -> None:
    """Replace the diabetes model's `registered_name: diabetes-regressor` line."""
    path = repo_dir / "models" / "diabetes" / "model.yaml"
    path.write_text(path.read_text().replace("registered_name: diabetes-regressor\n", line))


@pytest.mark.parametrize("line", ["", "name: diabetes\n"], ids=["nothing", "deprecated-name"])
def test_registered_name_defaults_to_the_directory(repo_dir: Path, line: str) -> None:
    _declare(repo_dir, line)
    repo = load_repo(repo_dir)
    assert repo.models["diabetes"].name == "diabetes"
    assert check_repo(repo) == []


def test_name_differing_from_the_directory_is_an_error_naming_both(repo_dir: Path) -> None:
    # the case: plan used the directory, monitor the `name:`, so alerts could never fire
    _declare(repo_dir, "name: diabetes-model\n")
    errors = check_repo(load_repo(repo_dir))
    assert _lines(errors) == [
        "models/diabetes/model.yaml:1:7: name: `diabetes-model` differs from the directory models/diabetes/ "
        "that holds models/diabetes/model.yaml; the environments, the gateway and the prediction log know "
        "this model as `diabetes`"]
    assert "registered_name: diabetes-model" in (errors[0].hint or "")


def test_name_and_registered_name_together_is_an_error(repo_dir: Path) -> None:
    path = repo_dir / "models" / "diabetes" / "model.yaml"
    path.write_text("name: diabetes\n" + path.read_text())
    assert _lines(check_repo(load_repo(repo_dir))) == [
        "models/diabetes/model.yaml:1:1: name: both `name` and `registered_name` "
        "(models/diabetes/model.yaml:2:1) are set; `name` is the deprecated spelling of `registered_name`"]


def test_pin_of_a_registered_name_instead_of_the_directory_names_both_files(repo_dir: Path) -> None:
    staging = repo_dir / "environments" / "staging.yaml"
    staging.write_text(staging.read_text().replace("  diabetes:\n", "  diabetes-regressor:\n"))
    errors = check_repo(load_repo(repo_dir))
    assert _lines(errors) == [
        "environments/staging.yaml:21:3: models.diabetes-regressor: model `diabetes-regressor` has no "
        "models/diabetes-regressor/model.yaml; `diabetes-regressor` is the registered name declared at "
        "models/diabetes/model.yaml:1:1 (directory models/diabetes/)"]
    assert errors[0].hint == "environments pin a model by its directory: write `diabetes:` here"


# --------------------------------------------------------------------------- min_change_on (issue 18)


def _thresholds(repo_dir: Path, old: str, new: str) -> None:
    path = repo_dir / "models" / "cancer" / "model.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_min_change_on_ci_bound_is_accepted_in_validation(repo_dir: Path) -> None:
    _thresholds(repo_dir, "      min_absolute_change: 0.01\n",
                "      min_absolute_change: 0.01\n      min_change_on: ci_bound\n")
    repo = load_repo(repo_dir)
    assert repo.models["cancer"].validation.thresholds["roc_auc"].min_change_on == "ci_bound"
    assert check_repo(repo) == []


def test_min_change_on_bad_value_names_the_choices(repo_dir: Path) -> None:
    from mlops_actions.errors import ConfigError

    _thresholds(repo_dir, "      min_absolute_change: 0.01\n",
                "      min_absolute_change: 0.01\n      min_change_on: ci_lower\n")
    with pytest.raises(ConfigError) as info:
        load_repo(repo_dir)
    text = str(info.value) + " ".join(str(e) for e in info.value.errors)
    assert "min_change_on" in text and "expected one of estimate, ci_bound" in text


def test_min_change_on_without_a_change_rule_is_an_error(repo_dir: Path) -> None:
    from mlops_actions.errors import ConfigError

    _thresholds(repo_dir, "    accuracy: {threshold: 0.9}\n",
                "    accuracy: {threshold: 0.9, min_change_on: ci_bound}\n")
    with pytest.raises(ConfigError) as info:
        load_repo(repo_dir)
    text = str(info.value) + " ".join(str(e) for e in info.value.errors)
    assert "has no min_absolute_change or min_relative_change" in text


def test_min_change_on_in_monitoring_is_an_error(repo_dir: Path) -> None:
    _thresholds(repo_dir, "    accuracy: {threshold: 0.85}\n",
                "    accuracy: {threshold: 0.85, min_absolute_change: 0.0, min_change_on: ci_bound}\n")
    errors = check_repo(load_repo(repo_dir))
    lines = (repo_dir / "models" / "cancer" / "model.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "min_change_on: ci_bound" in text)
    assert len(errors) == 1
    assert _lines(errors)[0].startswith(f"models/cancer/model.yaml:{line}:")
    assert "monitoring.performance.accuracy.min_change_on: min_change_on applies to validation only" \
        in _lines(errors)[0]


CANARY_WITH_ACCURACY = """models:
  cancer:
    version: "1.2.0"
    prediction_log: {LOG}
    strategy:
      type: canary
      steps:
        - set_weight: 20
        - analysis:
            metrics: [{name: error_rate, max: 0.05}, {name: accuracy, min: 0.8}]
"""


def test_analysis_reading_logged_rows_needs_logging_on(repo_dir: Path, capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    from mlops_actions.cli import main
    from mlops_actions.config.rules import logging_notes

    staging = repo_dir / "environments" / "staging.yaml"
    staging.write_text(CANARY_WITH_ACCURACY.replace("{LOG}", "{enabled: false}"))
    lines = _lines(check_repo(load_repo(repo_dir)))
    assert lines == ["environments/staging.yaml:10:61: "
                     "models.cancer.strategy.steps[1].analysis.metrics[1].name: analysis metric "
                     "'accuracy' reads logged predictions, but prediction_log of 'cancer' is off "
                     "(enabled: false), so it could never measure"]
    assert main(["-C", str(repo_dir), "check", "--offline"]) == 2
    assert "turn logging on" in capsys.readouterr().err

    staging.write_text(CANARY_WITH_ACCURACY.replace("{LOG}", "{sample_rate: 0.25}"))
    assert check_repo(load_repo(repo_dir)) == []
    assert logging_notes(load_repo(repo_dir)) == [
        "environments/staging.yaml: cancer logs 25% of its requests; its analysis (accuracy) needs about 4x "
        "the traffic to reach min_samples logged rows, so verdicts come later"]
    assert main(["-C", str(repo_dir), "check", "--offline"]) == 0
    assert "note: environments/staging.yaml: cancer logs 25%" in capsys.readouterr().err


@pytest.mark.parametrize(("log", "message"), [
    ("{sample_rate: 0}", "sample_rate 0 is not in (0, 1]"),
    ("{sample_rate: 1.5}", "sample_rate 1.5 is not in (0, 1]"),
    ("{sample_rate: lots}", "sample_rate"),
    ("{enable: false}", "enable"),
])
def test_bad_prediction_log_settings_are_clear_errors(repo_dir: Path, capsys: pytest.CaptureFixture[str],
                                                      log: str, message: str) -> None:
    from mlops_actions.cli import main

    (repo_dir / "environments" / "staging.yaml").write_text(
        CANARY_WITH_ACCURACY.replace("{LOG}", log))
    assert main(["-C", str(repo_dir), "check", "--offline"]) == 2
    err = capsys.readouterr().err
    assert "environments/staging.yaml:4" in err and message in err and "Traceback" not in err
