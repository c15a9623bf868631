"""Loading specs: valid fixtures, every error of every file at once, messages per error kind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from config_helpers import VALID

from mlops_actions.config.loader import (
    load_environment,
    load_model,
    load_repo,
    load_text,
    parse_text,
    scan_repo,
)
from mlops_actions.config.specs import ABTestStrategy, CanaryStrategy, EnvironmentSpec, ModelSpec
from mlops_actions.errors import ConfigError


def _lines(err: ConfigError) -> list[str]:
    return [f"{e.location}: {e.message}" for e in err.errors]


def test_valid_repository_loads_every_field() -> None:
    repo = load_repo(VALID)
    assert sorted(repo.models) == ["cancer", "diabetes"]
    cancer = repo.models["cancer"]
    assert cancer.task == "binary_classification"
    assert cancer.validation.thresholds["roc_auc"].min_absolute_change == 0.01
    assert [s.name for s in cancer.validation.slices] == ["large-tumours", "small-tumours"]
    assert cancer.monitoring.drift.method == "ks"
    staging = repo.environments["staging"]
    assert isinstance(staging.models["cancer"].strategy, CanaryStrategy)
    assert staging.models["cancer"].strategy.steps[1].analysis is not None
    production = repo.environments["production"]
    assert production.promotion.from_ == "staging"
    assert isinstance(production.models["cancer"].strategy, ABTestStrategy)
    assert production.models["cancer"].strategy.version_b == "1.2.0"
    assert production.target.type == "kubernetes"
    assert set(repo.sources) == {"models/cancer/model.yaml", "models/diabetes/model.yaml",
                                 "environments/staging.yaml", "environments/production.yaml"}
    assert str(repo.locate("environments/staging.yaml", ("models", "cancer", "version"))) == \
        "environments/staging.yaml:7:14"


def test_load_model_and_environment_take_a_path() -> None:
    assert load_model(VALID / "models" / "diabetes" / "model.yaml").name == "diabetes-regressor"
    staging = load_environment(str(VALID / "environments" / "staging.yaml"))
    assert staging.models["diabetes"].version == "0.3.1"


def test_load_model_lists_every_problem_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(
        "name: x\n"
        "task: regresion\n"
        "data: {test: t.csv}\n"
        "owners: [no]\n"
        "monitoring:\n"
        "  min_samples: 0\n"
        "  windw: 1h\n")
    with pytest.raises(ConfigError) as info:
        load_model(path)
    assert _lines(info.value) == [
        f"{path}:2:7: task: expected one of binary_classification, multiclass_classification, regression, "
        'got "regresion"; did you mean `regression`?',
        f"{path}:3:1: data: missing required key `label`",
        f"{path}:4:10: owners[0]: unquoted `no` is a YAML 1.1 boolean (false) to some readers and text "
        "to others",
        f"{path}:6:16: monitoring.min_samples: expected a value >= 1, got integer 0",
        f"{path}:7:3: monitoring: unknown key `windw`; did you mean `window`?",
    ]


def test_load_repo_collects_errors_across_files_before_raising(repo_dir: Path) -> None:
    (repo_dir / "models" / "cancer" / "model.yaml").write_text("name: a\nname: b\n")
    (repo_dir / "environments" / "staging.yaml").write_text("models:\n  cancer:\n    version: 1.10\n")
    with pytest.raises(ConfigError) as info:
        load_repo(repo_dir)
    assert _lines(info.value) == [
        "models/cancer/model.yaml:1:1: (top level): missing required key `data`",
        "models/cancer/model.yaml:1:1: (top level): missing required key `task`",
        "models/cancer/model.yaml:2:1: name: duplicate key `name` (first at line 1)",
        "environments/staging.yaml:3:14: models.cancer.version: expected a quoted semantic version like "
        '"1.2.0", got float 1.1 (written `1.10`)',
    ]
    repo, errors = scan_repo(repo_dir)  # what loaded is still there for the cross-file rules
    assert sorted(repo.models) == ["diabetes"] and sorted(repo.environments) == ["production"]
    assert len(errors) == 4


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no models/ or environments/ directory"):
        load_repo(tmp_path)


def test_a_single_error_is_raised_as_itself(repo_dir: Path) -> None:
    (repo_dir / "environments" / "staging.yaml").write_text("target: {type: local, port: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_repo(repo_dir)
    assert info.value.errors == [info.value]
    assert str(info.value) == (
        "environments/staging.yaml:1:23: target: unknown key `port`\n"
        "  hint: valid keys here: token_env, type, url")


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("models: {cancer: {version: \"1.2.0\", strategy: {type: ab_test}}}\n",
     "1:37: models.cancer.strategy: missing required key `version_b`"),
    ("models: {cancer: {version: \"1.2.0\", strategy: {type: ab_test, version_b: 2, traffic_split: 1}}}\n",
     "1:74: models.cancer.strategy.version_b: expected a quoted semantic version like "
     '"1.2.0", got integer 2'),
    ("models: {cancer: {version: \"1.2.0\", strategy: {type: canary, steps: []}}}\n",
     "1:69: models.cancer.strategy.steps: expected at least 1 item(s), got 0"),
    ("target: {type: kubernetes, namespace: Prod}\n",
     "1:39: target.namespace: expected text matching ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, got \"Prod\""),
    ("name: \"bad name\"\n",
     "1:7: name: expected a name of letters, digits, `_`, `.` and `-` (starting with a letter or digit, "
     'at most 128), got "bad name"'),
    ("promotion: {required_approvals: \"2\"}\n",
     '1:33: promotion.required_approvals: expected an integer, got "2"'),
    ("promotion: {allow_downgrade: 1}\n",
     "1:30: promotion.allow_downgrade: expected true or false, got integer 1"),
    ("models: [cancer]\n", "1:9: models: expected a mapping of keys to values, got a list"),
    ("promotion: {required_approvals: 1, approvers: [octo-org/ml-leads/x]}\n",
     '1:48: promotion.approvers[0]: expected a GitHub login or org/team-slug, got "octo-org/ml-leads/x"'),
    ("promotion: {approvers: [alice]}\n",
     "1:12: promotion: approvers is set but required_approvals is 0, so no approval is asked for: "
     "set required_approvals to 1 or more"),
    ("target: local\n", '1:9: target: expected a mapping of keys to values, got "local"'),
])
def test_environment_messages(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_environment(path)
    assert f"{path}:{expected}" in _lines(info.value)


def test_traffic_split_bound_message(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text('models:\n  cancer:\n    version: "1.2.0"\n    strategy:\n      type: ab_test\n'
                    '      version_b: "1.3.0"\n      traffic_split: 1\n')
    with pytest.raises(ConfigError) as info:
        load_environment(path)
    assert _lines(info.value) == [
        f"{path}:7:22: models.cancer.strategy.traffic_split: expected a value < 1, got integer 1"]


def test_wrong_file_names_are_reported(repo_dir: Path) -> None:
    shutil.copy(repo_dir / "environments" / "staging.yaml", repo_dir / "environments" / "qa.yml")
    model_dir = repo_dir / "models" / "diabetes"
    shutil.move(model_dir / "model.yaml", model_dir / "model.yml")
    _, errors = scan_repo(repo_dir)
    assert [f"{e.location}: {e.message}" for e in errors] == [
        "models/diabetes/model.yml:1:1: wrong file name `model.yml`: only model.yaml is read",
        "environments/qa.yml:1:1: wrong extension `.yml`: only environments/*.yaml are read",
    ]


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_model(tmp_path / "missing.yaml")


def test_load_text_for_files_read_from_git() -> None:
    text = (VALID / "environments" / "production.yaml").read_text()
    env = load_text(text, EnvironmentSpec, "environments/production.yaml@base")
    assert env.models["cancer"].version == "1.1.0"
    spec, source, errors = parse_text("models: {cancer: {version: 1.2.0}}\n", EnvironmentSpec,
                                      "prod.yaml@base")
    assert spec is None and source is not None
    assert [str(e) for e in errors] == [
        'prod.yaml@base:1:28: models.cancer.version: write versions quoted, "1.2.0", not 1.2.0\n'
        "  hint: unquoted versions like 1.10 turn into numbers; quotes keep them exact"]
    with pytest.raises(ConfigError, match="anchor &a is not allowed"):
        load_text("a: &a 1\n", ModelSpec, "m.yaml")


FULL = VALID.parent / "full"


def test_every_field_of_model_yaml_loads() -> None:
    spec = load_model(FULL / "model.yaml")
    assert spec.description.endswith("Two lines of description.\n")
    assert spec.data.features == ["alcohol", "magnesium", "color_intensity"]
    assert spec.validation.thresholds["log_loss"].greater_is_better is False
    assert [c.op for c in spec.validation.slices[0].where] == [">=", "in", "is not null"]
    assert [t.type for t in spec.validation.behavioural] == [
        "determinism", "output_schema", "finite_outputs", "output_range", "allowed_classes",
        "invariance", "directional", "latency"]
    assert spec.monitoring.drift.correction == "benjamini_hochberg"
    assert [a.type for a in spec.monitoring.alerts] == ["slack", "pagerduty", "webhook", "webhook",
                                                       "github_issue"]
    # every key written in the file is a field the spec kept (nothing silently dropped)
    dumped = spec.model_dump(by_alias=True, exclude_defaults=True)
    assert set(dumped) == {"registered_name", "task", "description", "owners", "data", "validation",
                           "monitoring"}
    assert dumped["monitoring"]["max_latency_p95_ms"] == 250


def test_every_field_of_an_environment_loads() -> None:
    env = load_environment(FULL / "environment.yaml")
    assert env.target.type == "kubernetes" and env.target.mode == "gateway-api"
    assert env.target.resources["limits"]["cpu"] == 2
    assert env.promotion.from_ == "staging" and env.promotion.allow_downgrade is True
    assert env.promotion.approvers == ["ml-lead", "octo-org/ml-leads"]
    assert {key: pin.strategy.type for key, pin in env.models.items()} == {
        "wine": "canary", "cancer": "blue_green", "diabetes": "ab_test", "fraud": "full"}
    canary = env.models["wine"].strategy
    assert isinstance(canary, CanaryStrategy)
    assert canary.steps[1].pause is not None and canary.steps[1].pause.duration is None
    assert env.models["wine"].version == "2.0.0-rc.1+build.5"
