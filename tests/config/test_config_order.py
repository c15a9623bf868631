"""``depends_on``: unknown names and cycles at file:line:col through `check`; the waves of a valid order."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_actions.cli import main
from mlops_actions.config.loader import load_environment
from mlops_actions.config.order import describe_order, has_order, waves
from mlops_actions.config.specs import ModelPin
from mlops_actions.errors import ConfigError

STAGING = """target: {type: local}
models:
  cancer:
    version: "1.2.0"
    depends_on: [{cancer}]
  diabetes:
    version: "0.3.1"
    depends_on: [{diabetes}]
"""


def staging(repo: Path, cancer: str, diabetes: str) -> Path:
    path = repo / "environments" / "staging.yaml"
    path.write_text(STAGING.replace("{cancer}", cancer).replace("{diabetes}", diabetes))
    return path


def check(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["-C", str(repo), "check", "--offline"])
    return code, capsys.readouterr().err.splitlines()


def test_a_cycle_is_a_check_error_at_the_entry_that_starts_it(
        repo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staging(repo_dir, "diabetes", "cancer")
    assert check(repo_dir, capsys) == (2, [
        "error: environments/staging.yaml:5:18: models.cancer.depends_on[0]: depends_on makes a cycle: "
        "cancer -> diabetes -> cancer (each model waits for the next); expected every chain of "
        "depends_on to end at a model that depends on nothing",
        "  hint: remove `diabetes` from cancer's depends_on, or break the cycle at another of its models",
    ])


def test_an_unknown_name_is_a_check_error_naming_the_models_there_are(
        repo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staging(repo_dir, "diabets", "")
    assert check(repo_dir, capsys) == (2, [
        "error: environments/staging.yaml:5:18: models.cancer.depends_on[0]: `diabets` is not a model of "
        "this environment; expected one of: diabetes; did you mean `diabetes`?",
        "  hint: depends_on names other keys under models: in this file: pin `diabets` here too, or "
        "remove it",
    ])


def test_itself_and_repeats_are_errors_too(repo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staging(repo_dir, "cancer", "cancer, cancer")
    code, lines = check(repo_dir, capsys)
    assert code == 2
    assert [line for line in lines if line.startswith("error:")] == [
        "error: environments/staging.yaml:5:18: models.cancer.depends_on[0]: model `cancer` depends on "
        "itself",
        "error: environments/staging.yaml:8:26: models.diabetes.depends_on[1]: `cancer` is listed twice "
        "(first at depends_on[0])",
    ]


def test_loading_refuses_a_cycle_and_accepts_an_order(repo_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"depends_on makes a cycle") as caught:
        load_environment(staging(repo_dir, "diabetes", "cancer"))
    assert str(caught.value.location).endswith("staging.yaml:5:18")
    spec = load_environment(staging(repo_dir, "diabetes", ""))
    assert spec.models["cancer"].depends_on == ["diabetes"] and has_order(spec.models)
    assert waves(spec.models) == [("diabetes",), ("cancer",)]


def test_waves_put_each_model_as_early_as_its_dependencies_allow() -> None:
    def pin(*deps: str) -> ModelPin:
        return ModelPin(version="1.0.0", depends_on=list(deps))

    models = {"ranker": pin("churn", "search"), "churn": pin("features"), "search": pin(),
              "features": pin(), "iris": pin()}
    order = waves(models)
    assert order == [("search", "features", "iris"), ("churn",), ("ranker",)]
    assert describe_order(order) == "search + features + iris -> churn -> ranker"
    assert not has_order({"iris": pin()}) and waves({"iris": pin()}) == [("iris",)]
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):  # a spec built in code, not loaded
        waves({"a": pin("b"), "b": pin("a")})
