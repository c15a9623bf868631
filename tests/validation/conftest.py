"""Fixtures for validation tests: a real MLflow registry (SQLite in a temp dir) holding tiny
scikit-learn models, and a repository (models/, environments/) that uses them.

The session fixture trains and registers once (MLflow's SQLite store takes a few seconds to
create); tests copy the repository template and edit model.yaml as they need.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ASSETS

TEMPLATE = ASSETS / "validation" / "repo"


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    root: Path
    bc_test: pd.DataFrame  # breast cancer test rows, with the extra "region" column
    reg_test: pd.DataFrame  # regression test rows
    iris_test: pd.DataFrame


class Raising:
    """A pyfunc model that fails on every predict, like a broken model version would."""


def _bc_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    rng = np.random.default_rng(7)
    frame["region"] = rng.choice(["eu", "us", "apac"], size=len(frame), p=[0.45, 0.5, 0.05])
    train = frame.sample(frac=0.5, random_state=1)
    test = frame.drop(train.index).reset_index(drop=True)
    return train.reset_index(drop=True), test


def _register(client: object, name: str, model: object, X: pd.DataFrame, semver: str,
              alias: str | None = None, flavour: str = "sklearn") -> None:
    import mlflow
    from mlflow.models import infer_signature

    with mlflow.start_run():
        if flavour == "sklearn":
            sig = infer_signature(X, model.predict(X))  # type: ignore[attr-defined]
            info = mlflow.sklearn.log_model(model, name="model", signature=sig, registered_model_name=name,
                                            pip_requirements=["scikit-learn"])
        else:
            sig = infer_signature(X, np.zeros(len(X), dtype=np.int64))
            info = mlflow.pyfunc.log_model(name="model", python_model=model, signature=sig,
                                           registered_model_name=name, pip_requirements=["mlflow"])
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, "mlops.semver", semver)  # type: ignore[attr-defined]
    if alias:
        client.set_registered_model_alias(name, alias, version)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    import mlflow
    from mlflow.pyfunc import PythonModel
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    class RaisingModel(PythonModel):
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom: feature store unavailable")

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri, uri)
    exp_id = client.create_experiment("tests", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp_id)  # never MLflow's default ./mlruns in the worktree

    train, test = _bc_frames()
    features = [c for c in train.columns if c not in ("target", "region")]
    X, y = train[features], train["target"]
    weak = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200))
    weak.fit(X[features[:2]].assign(**{c: 0.0 for c in features[2:]})[features], y)
    strong = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    _register(client, "bc", weak, X, "1.0.0", alias="production")
    _register(client, "bc", strong, X, "1.1.0", alias="staging")
    _register(client, "bc", RaisingModel(), X, "1.2.0", flavour="pyfunc")

    rng = np.random.default_rng(3)
    Xr = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400),
                       "group": rng.integers(0, 3, 400)})
    yr = 3.0 * Xr["x1"] - 1.5 * Xr["x2"] + 10 + rng.normal(scale=0.5, size=400)
    lin = LinearRegression().fit(Xr[["x1", "x2"]], yr)
    _register(client, "reg", lin, Xr[["x1", "x2"]], "2.0.0")
    reg_test = Xr.iloc[200:].assign(y=yr.iloc[200:]).reset_index(drop=True)

    iris = load_iris(as_frame=True).frame
    iris.columns = ["sl", "sw", "pl", "pw", "species"]
    it = iris.sample(frac=0.5, random_state=0)
    lr3 = LogisticRegression(max_iter=1000).fit(it[["sl", "sw", "pl", "pw"]], it["species"])
    _register(client, "iris", lr3, it[["sl", "sw", "pl", "pw"]], "0.1.0")
    iris_test = iris.drop(it.index).reset_index(drop=True)

    yield Registry(tracking_uri=uri, root=root, bc_test=test, reg_test=reg_test, iris_test=iris_test)
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture
def repo(tmp_path: Path, registry: Registry) -> Path:
    """A copy of tests/assets/validation/repo with test data for bc, reg and iris."""
    dest = tmp_path / "repo"
    shutil.copytree(TEMPLATE, dest)
    (dest / "models" / "bc" / "data").mkdir()
    registry.bc_test.to_csv(dest / "models" / "bc" / "data" / "test.csv", index=False)
    for name, frame in (("reg", registry.reg_test), ("iris", registry.iris_test)):
        d = dest / "models" / name / "data"
        d.mkdir(parents=True)
        frame.to_csv(d / "test.csv", index=False)
    return dest


def write_model_yaml(repo: Path, key: str, text: str) -> Path:
    path = repo / "models" / key / "model.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
