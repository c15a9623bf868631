"""Prediction stores: SQLite (WAL, default), PostgreSQL, in-memory; :func:`open_store` picks one.

URLs
----
``None``                       SQLite at ``<repo_root>/.mlops/predictions.db`` (or
                               ``$MLOPS_PREDICTION_STORE`` when set)
``sqlite:///relative/path.db``  relative to ``repo_root``
``sqlite:////abs/path.db``      absolute path
``postgresql://user@host:5432/db`` (also ``postgres://``)
``memory://``                   in-memory, for tests
"""

from __future__ import annotations

import os
from pathlib import Path

from mlops_actions.errors import ConfigError
from mlops_actions.monitoring.store.batch import BatchWriter
from mlops_actions.monitoring.store.interface import (
    ActualsResult,
    MonitoringStore,
    PredictionRecord,
    PredictionStore,
    StoreError,
    features_frame,
    new_request_id,
)
from mlops_actions.monitoring.store.memory import MemoryStore

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "SCHEMES",
    "ActualsResult",
    "BatchWriter",
    "MemoryStore",
    "MonitoringStore",
    "PredictionRecord",
    "PredictionStore",
    "StoreError",
    "features_frame",
    "new_request_id",
    "open_store",
]

DEFAULT_PATH = ".mlops/predictions.db"
ENV_VAR = "MLOPS_PREDICTION_STORE"
SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "memory://")


def open_store(url: str | None = None, *, repo_root: str | Path = ".") -> MonitoringStore:
    """Open the prediction store a URL names; see the module docstring for the forms."""
    if url is None:
        url = os.environ.get(ENV_VAR) or None
    if url is None:
        from mlops_actions.monitoring.store.sqlite import SQLiteStore

        return SQLiteStore(Path(repo_root) / DEFAULT_PATH)
    if url.startswith("sqlite:///"):
        from mlops_actions.monitoring.store.sqlite import SQLiteStore

        raw = url[len("sqlite:///"):]
        if raw == ":memory:":
            return SQLiteStore(":memory:")
        if not raw:
            raise ConfigError(f"prediction store URL {url!r} names no file",
                              hint="use sqlite:///.mlops/predictions.db (relative) or "
                                   "sqlite:////abs/path.db")
        path = Path(raw)
        return SQLiteStore(path if path.is_absolute() else Path(repo_root) / path)
    if url.startswith(("postgresql://", "postgres://")):
        from mlops_actions.monitoring.store.postgres import PostgresStore

        return PostgresStore(url)
    if url.rstrip("/") == "memory:":
        return MemoryStore()
    raise ConfigError(f"unknown prediction store URL {url!r}",
                      hint=f"valid schemes: {', '.join(SCHEMES)} (or nothing for the default "
                           f"SQLite file {DEFAULT_PATH})")
