"""``mlops-actions validate`` end to end: real MLflow registry, real models, every exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_actions.cli import main
from tests.validation.conftest import Registry, write_model_yaml


def run(repo: Path, *args: str) -> int:
    return main(["-C", str(repo), "validate", *args, "--latency-rows", "5"])


def test_passing_version_exits_0_and_writes_reports(repo: Path, registry: Registry, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = run(repo, "bc", "--version", "1.1.0", "--out", str(out), "--json")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["verdict"] == "passed"
    assert report["metrics"]["accuracy_score"] > 0.9
    assert report["slices"]["eu"]["rows"] > 20
    assert {c["name"] for c in report["checks"]} >= {"accuracy_score", "large-radius: recall_score",
                                                     "determinism", "latency"}
    assert (out / "validation.html").read_text().count("data:image/png;base64,") >= 3
    header = "| metric | candidate | baseline | delta | threshold | verdict |"
    assert header in (out / "validation.md").read_text()
    # logged to MLflow and linked to the version
    from mlflow.tracking import MlflowClient

    client = MlflowClient(registry.tracking_uri, registry.tracking_uri)
    mv = client.get_model_version("bc", "2")
    run_id = mv.tags["mlops.validation.run_id"]
    assert report["mlflow_run_id"] == run_id
    logged = client.get_run(run_id)
    assert logged.data.metrics["accuracy_score"] == pytest.approx(report["metrics"]["accuracy_score"])
    assert logged.data.tags["mlops.verdict"] == "passed"
    assert "slice.eu.accuracy_score" in logged.data.metrics


def test_env_compares_with_live_alias_and_fails_on_regression(repo: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    # production pins 1.1.0 ... but validate the weak 1.0.0 against staging's live 1.1.0
    write_model_yaml(repo, "bc", (repo / "models" / "bc" / "model.yaml").read_text().replace(
        "    accuracy:\n      threshold: 0.85\n",
        "    accuracy:\n      threshold: 0.5\n      min_absolute_change: 0.01\n"))
    md = repo / "comment.md"
    code = run(repo, "bc", "--version", "1.0.0", "--baseline-env", "staging", "--markdown", str(md),
               "--no-log")
    assert code == 1
    text = md.read_text()
    assert "compared with baseline **1.1.0**" in text
    # failing checks come first
    assert text.index("Needs attention") < text.index("### Thresholds")
    assert "accuracy_score" in text.split("### Thresholds")[0]


def test_env_flag_uses_pinned_version_and_alias(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(repo, "bc", "--env", "staging", "--no-log", "--json")
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["version"] == "1.1.0"
    assert report["baseline_version"] == "1.1.0"  # staging's alias points at 1.1.0 itself
    assert report["baseline_metrics"]["accuracy_score"] == report["metrics"]["accuracy_score"]


def test_small_slice_is_inconclusive_not_passed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (repo / "models" / "bc" / "model.yaml").read_text().replace(
        "  behavioural:", "    - name: apac\n      where:\n        - column: region\n          op: in\n"
        "          value: [apac]\n      thresholds:\n        accuracy:\n          threshold: 0.5\n"
        "  behavioural:")
    write_model_yaml(repo, "bc", text)
    assert run(repo, "bc", "--version", "1.1.0", "--no-log", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "inconclusive"
    apac = next(c for c in report["checks"] if c["slice"] == "apac")
    assert apac["verdict"] == "inconclusive" and "min_rows 30" in apac["message"]
    assert run(repo, "bc", "--version", "1.1.0", "--no-log", "--allow-inconclusive") == 0


def test_regression_and_multiclass(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_model_yaml(repo, "reg", """name: reg
task: regression
data: {test: data/test.csv, label: y, features: [x1, x2]}
validation:
  thresholds:
    rmse: {threshold: 1.0}
    r2: {threshold: 0.9}
  slices:
    - name: group0
      where: [{column: group, op: "==", value: 0}]
      thresholds: {mae: {threshold: 1.0}}
  behavioural:
    - {type: directional, column: x1, delta: 0.5, direction: increasing}
    - {type: directional, column: x2, delta: 0.5, direction: increasing}
    - {type: output_range, min: -50, max: 50}
""")
    assert run(repo, "reg", "--version", "2.0.0", "--no-log", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
    assert verdicts["root_mean_squared_error"] == "passed"
    assert verdicts["group0: mean_absolute_error"] == "passed"
    assert verdicts["directional"] == "failed"  # x2's coefficient is negative: one of the two fails
    assert "residuals" in report["curves"]
    write_model_yaml(repo, "iris", """name: iris
task: multiclass_classification
data: {test: data/test.csv, label: species}
validation:
  thresholds:
    f1_score_macro: {threshold: 0.8}
    roc_auc: {threshold: 0.9}
""")
    assert run(repo, "iris", "--version", "0.1.0", "--no-log", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["confusion_matrix"]) == 3


# ------------------------------------------------------------------ bad input: exit 2, a clear message


def _edit(repo: Path, old: str, new: str) -> None:
    path = repo / "models" / "bc" / "model.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_missing_label_column(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo, "label: target", "label: diagnosis")
    assert run(repo, "bc", "--version", "1.1.0", "--no-log") == 2
    err = capsys.readouterr().err
    assert "label column 'diagnosis' is missing" in err and "1.1.0" in err
    assert "error: models/bc/model.yaml:7:3: " in err
    assert "Traceback" not in err


def test_columns_not_matching_signature(repo: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    registry.bc_test.drop(columns=["mean_area"]).to_csv(repo / "models/bc/data/test.csv", index=False)
    assert run(repo, "bc", "--version", "1.1.0", "--no-log") == 2
    err = capsys.readouterr().err
    assert "does not match the signature of version 1.1.0" in err and "'mean_area'" in err


def test_empty_test_set(repo: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    registry.bc_test.iloc[:0].to_csv(repo / "models/bc/data/test.csv", index=False)
    assert run(repo, "bc", "--version", "1.1.0", "--no-log") == 2
    assert "is empty (0 rows)" in capsys.readouterr().err


def test_slice_on_unknown_column_names_the_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo, "column: region", "column: country")
    assert run(repo, "bc", "--version", "1.1.0", "--no-log") == 2
    err = capsys.readouterr().err
    assert "slice 'eu': slice condition names unknown column 'country'" in err
    assert "error: models/bc/model.yaml:28:11: " in err


def test_threshold_on_metric_that_does_not_apply(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo, "    log_loss:\n", "    rmse:\n")
    assert run(repo, "bc", "--version", "1.1.0", "--no-log") == 2
    err = capsys.readouterr().err
    assert "threshold on 'rmse', which does not apply to task binary_classification" in err
    assert "error: models/bc/model.yaml:14:5: " in err


def test_non_numeric_value_in_numeric_column(repo: Path, registry: Registry,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = registry.bc_test.astype({"mean_smoothness": object})
    bad.loc[3, "mean_smoothness"] = "n/a?"
    bad.to_csv(repo / "models/bc/data/test.csv", index=False)
    assert run(repo, "bc", "--version", "1.1.0", "--no-log") == 2
    err = capsys.readouterr().err
    assert "column 'mean_smoothness' must be numeric" in err and "row 4" in err and "'n/a?'" in err


def test_model_that_raises_on_predict_exits_1(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(repo, "bc", "--version", "1.2.0", "--no-log") == 1
    err = capsys.readouterr().err
    assert "version 1.2.0 raised on predict" in err and "boom: feature store unavailable" in err
    assert "error: models/bc/model.yaml: " in err and "Traceback" not in err


def test_unknown_model_and_missing_flag(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(repo, "nope", "--version", "1.0.0") == 2
    assert "models in" in capsys.readouterr().err
    assert main(["-C", str(repo), "validate", "bc"]) == 2


def test_versions_load_from_the_registry_in_use_not_the_process_default(
        repo: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded store (.mlops/) is not MLflow's default: models:/ must resolve against it."""
    import mlflow

    from mlops_actions.config.loader import load_model
    from mlops_actions.errors import RegistryError
    from mlops_actions.registry.interface import ModelVersion
    from mlops_actions.validation.validator import ValidationOptions, validate_version

    spec = load_model(repo / "models/bc/model.yaml")
    version = ModelVersion(name="bc", version="1.1.0", registry_version="2", source="")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    old = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri((tmp_path / "elsewhere").as_uri())
    try:
        with pytest.raises(RegistryError, match=r"cannot load model version 1\.1\.0"):
            validate_version(spec, repo / "models/bc/model.yaml", version, None,
                             ValidationOptions(latency_rows=0))
        result = validate_version(spec, repo / "models/bc/model.yaml", version, None,
                                  ValidationOptions(latency_rows=0, tracking_uri=registry.tracking_uri))
        assert result.verdict.value == "passed"
        assert mlflow.get_tracking_uri() == (tmp_path / "elsewhere").as_uri()  # restored
    finally:
        mlflow.set_tracking_uri(old)


def test_failed_checks_become_annotations_in_actions(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = repo / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _edit(repo, "    accuracy:\n      threshold: 0.85\n", "    accuracy:\n      threshold: 0.999\n")
    assert run(repo, "bc", "--version", "1.1.0", "--no-log") == 1
    out = capsys.readouterr().out
    expected = ("::error file=models/bc/model.yaml,line=10,col=5,"
                "title=validate bc 1.1.0%3A accuracy_score failed::")
    assert expected in out
    assert summary.read_text().startswith("## ❌ Validation of `bc` 1.1.0")
