"""Load MLflow models as pyfunc backends, one cached instance per URI."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from mlops_actions.registry.sqlite_read import sqlite_path, version_location
from mlops_actions.registry.uris import check_artifact_tree, check_model_uri
from mlops_actions.serving.fastpath import FastPath, compile_fast_path
from mlops_actions.serving.interface import Backend, ServingError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BackendCache", "PyfuncBackend", "load_pyfunc"]


class PyfuncBackend:
    """An ``mlflow.pyfunc`` model and the columns its signature requires."""

    def __init__(self, uri: str, model: Any) -> None:
        self.uri = uri
        self._model = model
        self.input_columns: tuple[str, ...] | None = None
        try:
            schema = model.metadata.get_input_schema()
        except Exception:  # no metadata: accept whatever comes
            schema = None
        if schema is not None and schema.has_input_names() and not schema.is_tensor_spec():
            self.input_columns = tuple(
                str(spec.name) for spec in schema.inputs if not getattr(spec, "optional", False))
        #: the signature compiled once and the flavour's own predict (:mod:`.fastpath`); None:
        #: every request goes through ``pyfunc.predict``
        self.fast: FastPath | None = compile_fast_path(model)
        # no signature: pyfunc hands the frame to the model unchanged, so the model may take it
        self._predict = self.fast.predict if self.fast is not None and self.fast.names is None \
            else model.predict

    def predict(self, frame: pd.DataFrame) -> Any:
        return self._predict(frame)


def local_artifacts(uri: str) -> Path | None:
    """The local directory a registry URI resolves to (a file artifact store), else None."""
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    repository = ModelsArtifactRepository if uri.startswith("models:/") else RunsArtifactRepository
    underlying_of = cast(Callable[[str], str], repository.get_underlying_uri)  # untyped in MLflow
    return _local_path(underlying_of(uri))


def _local_path(location: str) -> Path | None:
    """``location`` (an artifact URI or path) as a local directory, or None when it is remote."""
    from mlflow.utils.file_utils import local_file_uri_to_path

    if urlsplit(location).scheme not in ("", "file"):
        return None
    return Path(cast(Callable[[str], str], local_file_uri_to_path)(location))


def sqlite_registry_artifacts(uri: str, registry_uri: str) -> Path | None:
    """Where ``models:/NAME/N`` or ``models:/NAME@ALIAS`` keeps its artifacts when the registry is
    SQLite and they are on this machine, read with ``sqlite3`` (:mod:`~mlops_actions.registry.sqlite_read`);
    None otherwise (MLflow resolves it then).

    Why: MLflow resolves a ``models:/`` URI through a client whose stores take seconds to build
    (issue 19: the first answer of ``serve --env`` on the embedded default). The answer is read at
    each load, so a moved alias loads the version it points at now, as with MLflow.
    """
    db = sqlite_path(registry_uri)
    if db is None:
        return None
    location = version_location(db, uri)
    if location is None:
        return None
    local = _local_path(location)
    return local if local is not None and local.is_absolute() and local.is_dir() else None


def load_pyfunc(uri: str) -> Backend:
    """Load a registry URI (``models:/name/3``, ``models:/name@alias``, ``runs:/...``) with ``mlflow.pyfunc``.

    Loading runs the model's code (pickles), so the URI must pass
    :func:`~mlops_actions.registry.uris.check_model_uri` (never a path or ``file:``), and a
    local artifact directory must hold no symlink leading out of it. On a SQLite registry with
    local artifacts, the directory the registry names is loaded (:func:`sqlite_registry_artifacts`),
    what MLflow would load for the URI, without building MLflow's stores.
    """
    import mlflow.pyfunc

    check_model_uri(uri)
    try:
        direct = sqlite_registry_artifacts(uri, mlflow.get_registry_uri())
        local = direct if direct is not None else local_artifacts(uri)
    except Exception as exc:
        raise ServingError(f"could not resolve model {uri}: {type(exc).__name__}: {exc}",
                           hint="check the registry (MLFLOW_TRACKING_URI) and that the version exists") \
            from None
    if local is not None and local.exists():
        check_artifact_tree(local, uri=uri)
    try:
        return PyfuncBackend(uri, mlflow.pyfunc.load_model(str(direct) if direct is not None else uri))
    except Exception as exc:
        raise ServingError(f"could not load model {uri}: {type(exc).__name__}: {exc}",
                           hint="check the registry (MLFLOW_TRACKING_URI) and that the version exists") \
            from None


class BackendCache:
    """Loaded backends by URI; a version is loaded once and shared."""

    def __init__(self, loader: Any = load_pyfunc) -> None:
        self._loader = loader
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()

    def get(self, uri: str) -> Backend:
        with self._lock:
            backend = self._backends.get(uri)
        if backend is None:
            backend = self._loader(uri)
            with self._lock:
                backend = self._backends.setdefault(uri, backend)
        return backend

    def loaded(self, uri: str) -> Backend | None:
        return self._backends.get(uri)

    def evict(self, keep: set[str]) -> None:
        with self._lock:
            for uri in [u for u in self._backends if u not in keep]:
                del self._backends[uri]
