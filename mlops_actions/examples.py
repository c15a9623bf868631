"""The example models: train, log to MLflow and register them through the toolkit.

Three datasets that ship with scikit-learn (no downloads):

* ``breast_cancer``: binary classification, a LogisticRegression pipeline;
* ``wine``: multiclass classification;
* ``diabetes``: regression.

Each ``models/<name>/train.py`` calls :func:`train_example`; the demo calls
:func:`train_all`. Variants: ``baseline`` (registered first, 1.0.0),
``candidate`` (a better model with the same signature: a minor bump) and
``broken`` (trained on shuffled labels: near chance, for the demo's failing
promotion and automatic rollback).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from mlops_actions.registry.interface import ModelVersion
    from mlops_actions.registry.mlflow_registry import MlflowRegistry

__all__ = ["EXAMPLES", "VARIANTS", "Example", "main", "train_all", "train_example", "write_data"]

SEED = 42
LABEL = "target"
Variant = Literal["baseline", "candidate", "broken"]
VARIANTS: tuple[Variant, ...] = ("baseline", "candidate", "broken")


@dataclass(frozen=True)
class Example:
    key: str  # directory under models/
    name: str  # registered model name
    task: Literal["binary_classification", "multiclass_classification", "regression"]
    test_size: float
    algorithm: dict[Variant, str]


EXAMPLES: dict[str, Example] = {
    "breast_cancer": Example(
        "breast_cancer", "breast_cancer", "binary_classification", 0.3,
        {"baseline": "StandardScaler + LogisticRegression(C=0.01)",
         "candidate": "StandardScaler + LogisticRegression(C=1.0)",
         "broken": "StandardScaler + LogisticRegression(C=1.0) on shuffled labels"}),
    "wine": Example(
        "wine", "wine", "multiclass_classification", 0.4,
        {"baseline": "StandardScaler + LogisticRegression(C=0.005)",
         "candidate": "StandardScaler + LogisticRegression(C=1.0)",
         "broken": "StandardScaler + LogisticRegression(C=1.0) on shuffled labels"}),
    "diabetes": Example(
        "diabetes", "diabetes", "regression", 0.3,
        {"baseline": "StandardScaler + Ridge(alpha=200)",
         "candidate": "StandardScaler + Ridge(alpha=1.0)",
         "broken": "StandardScaler + Ridge(alpha=1.0) on shuffled targets"}),
}


def _snake(column: str) -> str:
    return column.strip().lower().replace(" ", "_").replace("/", "_")


def load_frame(key: str) -> pd.DataFrame:
    """The dataset as one frame: snake_case feature columns plus ``target``."""
    from sklearn import datasets

    loaders: dict[str, Callable[..., Any]] = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "diabetes": lambda **kw: datasets.load_diabetes(scaled=False, **kw),
    }
    bunch = loaders[key](as_frame=True)
    frame = bunch.frame.rename(columns=_snake)
    if key == "diabetes":
        frame["sex"] = frame["sex"].astype("int64")
        frame["age"] = frame["age"].astype("int64")
    return frame


def write_data(key: str, model_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split deterministically and write ``data/train.csv`` and ``data/test.csv``."""
    from sklearn.model_selection import train_test_split

    example = EXAMPLES[key]
    frame = load_frame(key)
    stratify = frame[LABEL] if example.task != "regression" else None
    train, test = train_test_split(frame, test_size=example.test_size, random_state=SEED,
                                   stratify=stratify)
    data = model_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    train.to_csv(data / "train.csv", index=False)
    test.to_csv(data / "test.csv", index=False)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _estimator(example: Example, variant: Variant) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    strong = variant != "baseline"
    if example.task == "regression":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0 if strong else 200.0))
    weak_c = 0.005 if example.key == "wine" else 0.01
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=1.0 if strong else weak_c, max_iter=5000))


def _metrics(example: Example, model: Any, test: pd.DataFrame) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    x, y = test.drop(columns=[LABEL]), test[LABEL]
    pred = model.predict(x)
    if example.task == "regression":
        return {
            "rmse": round(float(np.sqrt(metrics.mean_squared_error(y, pred))), 4),
            "mae": round(float(metrics.mean_absolute_error(y, pred)), 4),
            "r2": round(float(metrics.r2_score(y, pred)), 4),
        }
    average = "binary" if example.task == "binary_classification" else "macro"
    scores = {
        "accuracy": round(float(metrics.accuracy_score(y, pred)), 4),
        "f1_score": round(float(metrics.f1_score(y, pred, average=average)), 4),
    }
    proba = model.predict_proba(x)
    if example.task == "binary_classification":
        scores["roc_auc"] = round(float(metrics.roc_auc_score(y, proba[:, 1])), 4)
    else:
        scores["roc_auc"] = round(float(metrics.roc_auc_score(y, proba, multi_class="ovr")), 4)
    return scores


def train_example(key: str, *, repo_root: str | Path = ".", variant: Variant = "baseline",
                  registry: MlflowRegistry | None = None) -> ModelVersion:
    """Train one example, log it with signature and input example, register it; returns the version."""
    import mlflow
    import numpy as np
    import sklearn
    from mlflow.models import infer_signature

    from mlops_actions.registry.mlflow_registry import get_registry

    if key not in EXAMPLES:
        from mlops_actions.errors import ConfigError

        raise ConfigError(f"unknown example {key!r}: expected one of {', '.join(EXAMPLES)}")
    example = EXAMPLES[key]
    root = Path(repo_root)
    reg = registry or get_registry(repo_root=root)
    train, test = write_data(key, root / "models" / key)
    x_train, y_train = train.drop(columns=[LABEL]), train[LABEL]
    if variant == "broken":
        y_train = y_train.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    model = _estimator(example, variant).fit(x_train, y_train)
    scores = _metrics(example, model, test)
    signature = infer_signature(x_train, np.asarray(model.predict(x_train.head(20))))
    requirements = [f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"]
    with reg.logging_run(run_name=f"{key}-{variant}"):
        mlflow.log_params({"variant": variant, "algorithm": example.algorithm[variant], "seed": SEED})
        mlflow.log_metrics(scores)
        info = mlflow.sklearn.log_model(model, name="model", signature=signature,
                                        input_example=x_train.head(5), pip_requirements=requirements)
    metadata: dict[str, object] = {
        **scores,
        "training_data": f"models/{key}/data/train.csv",
        "algorithm": example.algorithm[variant],
        "variant": variant,
        "n_train": len(train),
    }
    return reg.register(example.name, info.model_uri, metadata=metadata)


def train_all(repo_root: str | Path = ".", *, variant: Variant = "baseline",
              registry: MlflowRegistry | None = None,
              keys: Sequence[str] = tuple(EXAMPLES)) -> dict[str, ModelVersion]:
    """Train and register every example (the demo's first step); key -> registered version."""
    from mlops_actions.registry.mlflow_registry import get_registry

    reg = registry or get_registry(repo_root=repo_root)
    return {key: train_example(key, repo_root=repo_root, variant=variant, registry=reg) for key in keys}


def main(argv: Sequence[str] | None = None, *, key: str | None = None,
         default_repo: str | Path = ".") -> int:
    """Command line of ``models/<key>/train.py`` (and ``python -m mlops_actions.examples``)."""
    parser = argparse.ArgumentParser(description="Train, log and register the example model(s).")
    if key is None:
        parser.add_argument("examples", nargs="*", default=[], metavar="EXAMPLE",
                            help=f"any of {', '.join(EXAMPLES)} (default: all)")
    parser.add_argument("--variant", choices=VARIANTS, default="baseline",
                        help="baseline (1.0.0), candidate (better, same signature), broken (shuffled labels)")
    parser.add_argument("--repo", default=str(default_repo),
                        help=f"repository root (default: {default_repo})")
    args = parser.parse_args(argv)
    keys = [key] if key else (args.examples or list(EXAMPLES))
    unknown = [k for k in keys if k not in EXAMPLES]
    if unknown:
        parser.error(f"unknown example(s) {', '.join(unknown)}: expected any of {', '.join(EXAMPLES)}")
    for k, mv in train_all(args.repo, variant=args.variant, keys=keys).items():
        scores = ", ".join(f"{m}={mv.metadata[m]}" for m in ("accuracy", "f1_score", "roc_auc",
                                                              "rmse", "mae", "r2") if m in mv.metadata)
        print(f"{k}: registered {mv.name} {mv.version} ({args.variant}; {scores})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
