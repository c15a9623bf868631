"""Registry fixtures: every backend the contract suite runs against.

* ``memory``: the in-memory fake (``registry/memory.py``);
* ``embedded``: MLflow on SQLite in a temp dir (the default users get);
* ``server_sqlite``: ``mlflow server`` on 127.0.0.1 with a SQLite backend;
* ``server_postgres``: ``mlflow server`` on 127.0.0.1 with a PostgreSQL backend
  (a database created for the session; skipped, with the reason, when PostgreSQL
  is not reachable on 127.0.0.1:5432).

Starting ``mlflow server`` is slow on a loaded machine (10-60 s), so both servers
are launched together, once per session, the first time either is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlops_actions.registry.interface import ModelRegistry
from mlops_actions.registry.memory import MemoryRegistry
from mlops_actions.registry.semver import ColumnSpec, SignatureSummary
from tests.conftest import free_port

SERVER_START_TIMEOUT = 150.0  # seconds; a loaded 2-core machine needs up to ~60 s
PG_DSN = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
BACKENDS = [
    "memory",
    "embedded",
    pytest.param("server_sqlite", marks=[pytest.mark.mlflow_server, pytest.mark.slow]),
    pytest.param("server_postgres", marks=[pytest.mark.mlflow_server, pytest.mark.postgres,
                                           pytest.mark.slow]),
]


@dataclass
class Backend:
    """A registry under test plus model sources it can register.

    ``sources``: ``base`` (inputs x1, x2: double; output long), ``retrained``
    (same signature, other weights), ``renamed`` (inputs x1, x3: a breaking change).
    """

    kind: str
    registry: ModelRegistry
    sources: dict[str, str]
    uri: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def unique(prefix: str = "m") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# ----------------------------------------------------------------------------- small real models


def fit_model(columns: tuple[str, str], c: float = 1.0) -> tuple[object, object]:
    """A tiny LogisticRegression on a DataFrame with ``columns``; returns (model, X)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(60, 2)), columns=list(columns))
    y = (x.iloc[:, 0] + 0.5 * x.iloc[:, 1] > 0).astype("int64")
    return LogisticRegression(C=c).fit(x, y), x


def log_sources(registry: object) -> dict[str, str]:
    """Log the three models of :class:`Backend` into an MLflow registry; name -> model URI."""
    import mlflow
    from mlflow.models import infer_signature

    sources = {}
    for key, columns, c in (("base", ("x1", "x2"), 1.0), ("retrained", ("x1", "x2"), 0.1),
                            ("renamed", ("x1", "x3"), 1.0)):
        model, x = fit_model(columns, c)
        signature = infer_signature(x, model.predict(x))  # type: ignore[attr-defined]
        with registry.logging_run(run_name=key):  # type: ignore[attr-defined]
            info = mlflow.sklearn.log_model(model, name="model", signature=signature,
                                            pip_requirements=["scikit-learn"])
        sources[key] = info.model_uri
    return sources


def memory_backend() -> Backend:
    def cols(*names: str) -> tuple[ColumnSpec, ...]:
        return tuple(ColumnSpec(n, "double") for n in names)

    out = (ColumnSpec(None, "long"),)
    signatures = {
        "mem://base": SignatureSummary(cols("x1", "x2"), out),
        "mem://retrained": SignatureSummary(cols("x1", "x2"), out),
        "mem://renamed": SignatureSummary(cols("x1", "x3"), out),
    }
    registry = MemoryRegistry(signature_of=signatures.get)
    return Backend("memory", registry, {k.removeprefix("mem://"): k for k in signatures}, "memory://")


# ----------------------------------------------------------------------------- mlflow servers


class MlflowServer:
    def __init__(self, backend_uri: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend_uri = backend_uri
        self.log_path = workdir / "server.log"
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
             "--artifacts-destination", str(workdir / "artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True)
        self.ready = False

    def wait(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        self.ready = True
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server on {self.url} not ready within {SERVER_START_TIMEOUT} s; "
                           f"log: {self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def _postgres_db() -> tuple[str | None, str, Callable[[], None]]:
    """(backend URI or None, skip reason, cleanup)."""
    try:
        import psycopg2
    except ImportError:
        return None, "psycopg2 is not installed", lambda: None
    name = f"mlops_registry_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG_DSN)
    except Exception as exc:
        return None, f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}", lambda: None
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()

    def drop() -> None:
        conn = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG_DSN)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", "", drop


class _Servers:
    """The session's servers: launched as soon as collection shows a test needs them, so their
    (slow) start-up overlaps the memory and embedded tests; stopped at session end."""

    def __init__(self) -> None:
        self.servers: dict[str, MlflowServer | str] = {}
        self._drop: Callable[[], None] = lambda: None
        self._dirs: list[Path] = []

    def launch(self) -> dict[str, MlflowServer | str]:
        if not self.servers:
            base = Path(tempfile.mkdtemp(prefix="mlops-registry-servers-"))
            self._dirs.append(base)
            (base / "sqlite").mkdir()
            (base / "pg").mkdir()
            self.servers["server_sqlite"] = MlflowServer(f"sqlite:///{base / 'sqlite' / 'mlflow.db'}",
                                                         base / "sqlite")
            pg_uri, reason, self._drop = _postgres_db()
            self.servers["server_postgres"] = reason if pg_uri is None else MlflowServer(pg_uri, base / "pg")
        return self.servers

    def stop(self) -> None:
        for server in self.servers.values():
            if isinstance(server, MlflowServer):
                server.stop()
        self._drop()
        for d in self._dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.servers.clear()


_SERVERS = _Servers()


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(item.get_closest_marker("mlflow_server") for item in session.items):
        _SERVERS.launch()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SERVERS.stop()


@pytest.fixture(scope="session")
def mlflow_servers() -> dict[str, MlflowServer | str]:
    """Both servers; a value that is a str is the reason that one is skipped."""
    return _SERVERS.launch()


# ----------------------------------------------------------------------------- the backends


@pytest.fixture(scope="session")
def _backends() -> dict[str, Backend]:
    return {}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, _backends: dict[str, Backend],
            tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """One registry per backend kind for the whole session; tests use unique model names."""
    kind: str = request.param
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    if kind in _backends:
        return _backends[kind]
    if kind == "memory":
        _backends[kind] = memory_backend()
        return _backends[kind]
    from mlops_actions.registry.mlflow_registry import get_registry

    if kind == "embedded":
        root = tmp_path_factory.mktemp("embedded_repo")
        registry = get_registry(repo_root=root)
        uri = registry.tracking_uri
    else:
        servers = request.getfixturevalue("mlflow_servers")
        server = servers[kind]
        if isinstance(server, str):
            pytest.skip(server)
        if not server.ready:
            server.wait(time.monotonic() + SERVER_START_TIMEOUT)
        registry = get_registry(server.url, repo_root=tmp_path_factory.mktemp(kind))
        uri = server.url
    _backends[kind] = Backend(kind, registry, log_sources(registry), uri)
    return _backends[kind]


@pytest.fixture
def repo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty repository dir with no MLFLOW_* pointing elsewhere (embedded default)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return tmp_path


def copy_examples(dest: Path) -> None:
    """models/ and environments/ of this repository into ``dest`` (for tests that train)."""
    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "models", dest / "models", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "environments", dest / "environments")
