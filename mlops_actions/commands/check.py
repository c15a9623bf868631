"""``mlops-actions check``: validate models/ and environments/, and the rules between them.

Prints every problem as ``path:line:col: message`` (and, inside GitHub Actions,
as ``::error file=...`` annotations, through the CLI's error handler) and exits
2 when there is any. Online (the default) it also resolves every pin against
the model registry; ``--offline`` skips that, and so does a repository with
no registry configured (no ``--tracking-uri``, no ``MLFLOW_TRACKING_URI``, no
``mlflow.db`` at the root), with a note, since a fresh embedded registry would call
every pin missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mlops_actions.config.loader import Repo, scan_repo
from mlops_actions.config.rules import check_repo, logging_notes
from mlops_actions.errors import ConfigError, ExternalError
from mlops_actions.registry.interface import EMBEDDED_DB, ModelRegistry

ORDER = 10


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check", help="validate models/ and environments/ (exit 2 listing every problem)",
        description="Validate every models/<name>/model.yaml and environments/<env>.yaml, then the rules "
        "between them (pinned models exist, promotion order, data files, metrics per task); online, also "
        "that each pinned version exists in the model registry. Prints every problem as "
        "path:line:col: message and exits 2 when there is any.")
    p.add_argument("--offline", action="store_true",
                   help="do not contact the model registry (pins are not resolved)")
    p.add_argument("--tracking-uri", metavar="URI", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the embedded "
                   "SQLite store under .mlops/)")
    p.set_defaults(func=run)


def no_registry_configured(tracking_uri: str | None, root: Path) -> bool:
    """True when the only registry would be a fresh, empty embedded one (a clone, a fork's CI job).

    Resolving pins there would report every pin as missing; ``check`` says it
    skipped them instead.
    """
    return tracking_uri is None and not os.environ.get("MLFLOW_TRACKING_URI") \
        and not (root / EMBEDDED_DB).is_file()


def registry_factory(tracking_uri: str | None, repo_root: Path) -> ModelRegistry:
    """The MLflow registry adapter, imported lazily (it pulls in MLflow)."""
    try:
        from mlops_actions.registry.mlflow_registry import get_registry
    except ImportError as exc:
        raise ExternalError("the MLflow registry adapter is not available in this build",
                            hint=f"run `mlops-actions check --offline` ({exc})") from None
    registry: ModelRegistry = get_registry(tracking_uri, repo_root=repo_root)
    return registry


def check(root: Path, registry: ModelRegistry | None = None) -> tuple[Repo, list[ConfigError]]:
    """Every problem of the repository at ``root``: per file, then across files (and the registry)."""
    repo, errors = scan_repo(root)
    errors = errors + check_repo(repo, registry=registry)
    return repo, errors


def run(args: argparse.Namespace) -> int:
    root = Path(args.repo)
    repo, errors = scan_repo(root)
    online = not args.offline and any(env.models for env in repo.environments.values())
    skipped = online and no_registry_configured(args.tracking_uri, root)
    if skipped:
        print("note: pins not resolved: no --tracking-uri, no MLFLOW_TRACKING_URI and no embedded "
              f"registry at {root / EMBEDDED_DB} (pass --offline to silence this note)",
              file=sys.stderr)
        online = False
    registry = registry_factory(args.tracking_uri, root) if online else None
    errors += check_repo(repo, registry=registry)
    for note in logging_notes(repo):
        print(f"note: {note}", file=sys.stderr)
    if errors:
        raise ConfigError(f"{len(errors)} problem(s) in {root}", errors=errors)
    pins = sum(len(env.models) for env in repo.environments.values())
    print(f"ok: {len(repo.models)} model(s), {len(repo.environments)} environment(s), {pins} pin(s)"
          + (", every pin resolved in the registry" if online else "")
          + (" (offline: pins not resolved)" if args.offline or skipped else ""))
    return 0
