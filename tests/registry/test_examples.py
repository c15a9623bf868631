"""The examples train, log and register for real (embedded MLflow), and their YAML is valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlops_actions.config.loader import load_repo
from mlops_actions.examples import EXAMPLES, main, train_all
from mlops_actions.registry.mlflow_registry import get_registry
from tests.registry.conftest import copy_examples

ROOT = Path(__file__).resolve().parents[2]


def test_example_yaml_is_valid_and_pins_every_model() -> None:
    repo = load_repo(ROOT)
    assert set(repo.models) == set(EXAMPLES)
    assert {spec.name for spec in repo.models.values()} == {e.name for e in EXAMPLES.values()}
    assert set(repo.environments) == {"staging", "production"}
    for env in repo.environments.values():
        assert {k: pin.version for k, pin in env.models.items()} == dict.fromkeys(EXAMPLES, "1.0.0")
    staging, production = repo.environments["staging"], repo.environments["production"]
    assert staging.models["breast_cancer"].strategy.type == "canary"
    assert {s for step in staging.models["breast_cancer"].strategy.steps  # type: ignore[union-attr]
            for s in ("set_weight", "pause", "analysis") if getattr(step, s) is not None} == \
        {"set_weight", "pause", "analysis"}
    assert staging.models["wine"].strategy.type == "blue_green"
    assert production.promotion.from_ == "staging" and production.promotion.required_approvals == 1
    for key, spec in repo.models.items():
        assert (ROOT / "models" / key / spec.data.test).is_file()
        assert len(spec.validation.slices) >= 2 and spec.validation.behavioural
        first = (ROOT / "models" / key / "model.yaml").read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../mlops_actions/schemas/model.schema.json"


def test_train_all_registers_the_three_examples(repo_dir: Path) -> None:
    copy_examples(repo_dir)
    committed = {k: pd.read_csv(repo_dir / "models" / k / "data" / "test.csv") for k in EXAMPLES}
    versions = train_all(repo_dir)
    assert {k: mv.version for k, mv in versions.items()} == dict.fromkeys(EXAMPLES, "1.0.0")
    for key in EXAMPLES:  # deterministic: the CSVs written equal the committed ones
        pd.testing.assert_frame_equal(pd.read_csv(repo_dir / "models" / key / "data" / "test.csv"),
                                      committed[key])
    bc = versions["breast_cancer"]
    assert float(bc.metadata["accuracy"]) > 0.9 and bc.metadata["variant"] == "baseline"
    assert bc.metadata["training_data"] == "models/breast_cancer/data/train.csv"
    assert "mlops.signature" in bc.tags  # logged with a signature and an input example
    assert float(versions["diabetes"].metadata["r2"]) > 0.35

    # later variants: a better candidate is a minor bump; a broken one scores near chance
    assert main(["--variant", "candidate", "--repo", str(repo_dir)], key="wine") == 0
    assert main(["--variant", "broken", "--repo", str(repo_dir)], key="wine") == 0
    wine = {mv.version: mv for mv in get_registry(repo_root=repo_dir).list_versions("wine")}
    assert sorted(wine) == ["1.0.0", "1.1.0", "1.2.0"]
    assert float(wine["1.1.0"].metadata["accuracy"]) > float(wine["1.0.0"].metadata["accuracy"])
    assert float(wine["1.2.0"].metadata["accuracy"]) < 0.6


@pytest.mark.slow
def test_train_script_runs_as_a_program(repo_dir: Path) -> None:
    copy_examples(repo_dir)
    done = subprocess.run([sys.executable, str(repo_dir / "models" / "diabetes" / "train.py")],
                          capture_output=True, text=True, timeout=240, cwd=repo_dir,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("diabetes: registered diabetes 1.0.0 (baseline; rmse=")
    assert (repo_dir / "mlflow.db").is_file()
