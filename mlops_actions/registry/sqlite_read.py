"""Read-only answers from an MLflow registry kept in SQLite, with the standard library's ``sqlite3``.

Why: ``serve --env`` must answer its first request within seconds (issue 19). On the embedded
default (``sqlite:///mlflow.db``) MLflow answers one version lookup only after building its
stores: importing SQLAlchemy models of every tracking table, creating the engines and inspecting
the tables, 1-1.5 s of CPU (3-8 s of wall time on the loaded 2-core machine) before the model
itself starts loading. The
questions start-up asks are a few indexed SELECTs: which MLflow version carries a semantic
version (a pin, :meth:`~mlops_actions.registry.mlflow_registry.MlflowRegistry.get`), and where
``models:/NAME/N`` or ``models:/NAME@ALIAS`` keeps its artifacts (the gateway's loader).

Every answer is read fresh from the database (nothing is cached), so a moved alias or a new
version is seen as MLflow would see it. What MLflow's queries filter, these filter too:
versions deleted (``current_stage = 'Deleted_Internal'``) are invisible, and rows belong to
the ``default`` workspace (MLflow's single-tenant mode). Anything else returns ``None`` and
the caller asks MLflow, which gives its own answer or error: a database file that does not
exist or lacks MLflow's tables (MLflow creates them), an unknown name or version (MLflow's
"not found" lists what exists), workspaces enabled (``MLFLOW_ENABLE_WORKSPACES``), the
``latest`` alias, a URI with a query string or an in-memory database. Nothing here writes;
the database is opened read-only.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

__all__ = ["VersionRow", "find_semver", "sqlite_path", "version_location"]

STAGE_DELETED_INTERNAL = "Deleted_Internal"  # mlflow.entities.model_registry.model_version_stages
DEFAULT_WORKSPACE = "default"  # mlflow.utils.workspace_utils.DEFAULT_WORKSPACE_NAME
BUSY_TIMEOUT_S = 20.0  # MLflow's sessions set PRAGMA busy_timeout = 20000 (mlflow.store.db.utils)
_TABLES = ("registered_models", "model_versions", "model_version_tags", "registered_model_aliases")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI (SQLAlchemy's form: four slashes for an
    absolute path, three for one relative to the working directory), or None for anything else."""
    if not uri.startswith("sqlite:///") or "?" in uri or "#" in uri:
        return None
    path = unquote(uri[len("sqlite:///"):])
    if not path or path == ":memory:":
        return None
    return Path(path).absolute()


def _workspaces_enabled() -> bool:
    return os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").strip().lower() in ("true", "1")


@contextmanager
def _connect(db: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection, or None when the file or MLflow's tables are missing."""
    if _workspaces_enabled() or not db.is_file():
        yield None
        return
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        yield None
        return
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        yield conn if names.issuperset(_TABLES) else None
    finally:
        conn.close()


def _scope(conn: sqlite3.Connection, table: str) -> tuple[str, tuple[str, ...]]:
    """`` AND workspace = ?`` when the table has MLflow 3's workspace column (it filters every query
    on the active workspace, ``default`` in single-tenant mode)."""
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    return (" AND workspace = ?", (DEFAULT_WORKSPACE,)) if "workspace" in columns else ("", ())


@dataclass(frozen=True)
class VersionRow:
    """One live (not deleted) model version as MLflow's registry stores it."""

    name: str
    version: str
    source: str
    storage_location: str
    run_id: str
    creation_time: int
    description: str
    tags: dict[str, str]
    aliases: tuple[str, ...]

    @property
    def download_uri(self) -> str:
        """What ``MlflowClient.get_model_version_download_uri`` answers: the storage location, else
        the source."""
        return self.storage_location or self.source


def _version(conn: sqlite3.Connection, name: str, version: str) -> VersionRow | None:
    where, args = _scope(conn, "model_versions")
    row = conn.execute(
        "SELECT source, storage_location, run_id, creation_time, description FROM model_versions "
        f"WHERE name = ? AND version = ? AND current_stage != ?{where}",
        (name, int(version), STAGE_DELETED_INTERNAL, *args)).fetchone()
    if row is None:
        return None
    tag_where, tag_args = _scope(conn, "model_version_tags")
    tags = dict(conn.execute(f"SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?"
                             f"{tag_where}", (name, int(version), *tag_args)).fetchall())
    alias_where, alias_args = _scope(conn, "registered_model_aliases")
    aliases = tuple(sorted(a for (a,) in conn.execute(
        f"SELECT alias FROM registered_model_aliases WHERE name = ? AND version = ?{alias_where}",
        (name, int(version), *alias_args))))
    source, storage, run_id, created, description = row
    return VersionRow(name=name, version=str(int(version)), source=source or "",
                      storage_location=storage or "", run_id=run_id or "", creation_time=created or 0,
                      description=description or "", tags={str(k): str(v) for k, v in tags.items()},
                      aliases=aliases)


def _live_versions(conn: sqlite3.Connection, name: str) -> list[int]:
    where, args = _scope(conn, "model_versions")
    return sorted(v for (v,) in conn.execute(
        f"SELECT version FROM model_versions WHERE name = ? AND current_stage != ?{where}",
        (name, STAGE_DELETED_INTERNAL, *args)))


def find_semver(db: Path, name: str, semver: str, semver_tag: str) -> VersionRow | None:
    """The version of ``name`` carrying tag ``semver_tag`` = ``semver`` (the lowest MLflow version
    when several do, as :meth:`MlflowRegistry._find` picks), else a version registered before
    the tag existed that ``0.0.N`` names; None when there is none (the caller asks MLflow)."""
    try:
        with _connect(db) as conn:
            return None if conn is None else _find_semver(conn, name, semver, semver_tag)
    except sqlite3.Error:
        return None


def _find_semver(conn: sqlite3.Connection, name: str, semver: str, semver_tag: str) -> VersionRow | None:
    where, args = _scope(conn, "model_version_tags")
    tagged = {v for (v,) in conn.execute(
        f"SELECT version FROM model_version_tags WHERE name = ? AND key = ? AND value = ?{where}",
        (name, semver_tag, semver, *args))}
    live = _live_versions(conn, name)
    hits = [v for v in live if v in tagged]
    if hits:
        return _version(conn, name, str(hits[0]))
    legacy = re.fullmatch(r"0\.0\.(\d+)", semver)
    if legacy and legacy.group(1) in {str(v) for v in live}:  # MlflowRegistry._find compares strings
        row = _version(conn, name, legacy.group(1))
        if row is not None and semver_tag not in row.tags:
            return row
    return None


_MODELS_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>[0-9]+)|@(?P<alias>[^/@]+))")


def version_location(db: Path, uri: str) -> str | None:
    """Where ``models:/NAME/N`` or ``models:/NAME@ALIAS`` keeps its artifacts (what MLflow's
    ``ModelsArtifactRepository`` resolves it to), read now; None for other URIs, the ``latest``
    alias (MLflow computes it), an unset alias or a missing version."""
    match = _MODELS_URI.fullmatch(uri)
    if match is None:
        return None
    name, version, alias = match.group("name"), match.group("version"), match.group("alias")
    try:
        with _connect(db) as conn:
            return None if conn is None else _location(conn, name, version, alias)
    except sqlite3.Error:
        return None


def _location(conn: sqlite3.Connection, name: str, version: str | None, alias: str | None) -> str | None:
    if alias is not None:
        if alias.lower() == "latest":
            return None
        where, args = _scope(conn, "registered_model_aliases")
        row = conn.execute(f"SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
                           f"{where}", (name, alias, *args)).fetchone()
        if row is None:
            return None
        version = str(row[0])
    if version is None:
        return None
    found = _version(conn, name, version)
    return found.download_uri if found is not None and found.download_uri else None
