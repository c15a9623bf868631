#!/usr/bin/env python
"""Train, log to MLflow and register the breast_cancer example through mlops-actions.

    python models/breast_cancer/train.py                      # baseline -> 1.0.0 on a fresh registry
    python models/breast_cancer/train.py --variant candidate  # a better model, same signature -> minor bump
    python models/breast_cancer/train.py --variant broken     # shuffled labels: fails validation (demo)

Deterministic (seed 42). Writes data/train.csv and data/test.csv next to this file.
MLflow: MLFLOW_TRACKING_URI, else the embedded SQLite under <repo>/.mlops/.
The code lives in mlops_actions/examples.py (shared by the three examples and the demo).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

try:
    from mlops_actions.examples import main
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(REPO))
    from mlops_actions.examples import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], key="breast_cancer", default_repo=REPO))
