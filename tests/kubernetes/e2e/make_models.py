"""Save two MLflow (sklearn) model versions under DIR/churn/<semver> for the kind e2e image."""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow.sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression


def main(out: str) -> None:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    for version, c in (("1.0.0", 0.1), ("1.1.0", 1.0)):
        model = LogisticRegression(C=c, max_iter=5000).fit(x, y)
        mlflow.sklearn.save_model(model, str(Path(out) / "churn" / version), input_example=x.head(2))


if __name__ == "__main__":
    main(sys.argv[1])
