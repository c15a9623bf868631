"""``mlops-actions version``: print the toolkit's and its main dependencies' versions."""

from __future__ import annotations

import argparse
import importlib.metadata
from typing import Any

from mlops_actions import __version__

ORDER = 999


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "version", help="print versions of mlops-actions and its main dependencies",
        description="Print versions of mlops-actions and its main dependencies.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"mlops-actions {__version__}")
    for dist in ("mlflow", "pydantic", "pandas", "scikit-learn", "scipy", "starlette"):
        try:
            print(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            print(f"{dist} (not installed)")
    return 0
