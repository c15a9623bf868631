"""Load MLflow models as pyfunc backends, one cached instance per URI."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

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
    from mlflow.utils.file_utils import local_file_uri_to_path

    repository = ModelsArtifactRepository if uri.startswith("models:/") else RunsArtifactRepository
    underlying_of = cast(Callable[[str], str], repository.get_underlying_uri)  # untyped in MLflow
    underlying = underlying_of(uri)
    if urlsplit(underlying).scheme not in ("", "file"):
        return None
    return Path(cast(Callable[[str], str], local_file_uri_to_path)(underlying))


def load_pyfunc(uri: str) -> Backend:
    """Load a registry URI (``models:/name/3``, ``models:/name@alias``, ``runs:/...``) with ``mlflow.pyfunc``.

    Loading runs the model's code (pickles), so the URI must pass
    :func:`~mlops_actions.registry.uris.check_model_uri` (never a path or ``file:``), and a
    local artifact directory must hold no symlink leading out of it.
    """
    import mlflow.pyfunc

    check_model_uri(uri)
    try:
        local = local_artifacts(uri)
    except Exception as exc:
        raise ServingError(f"could not resolve model {uri}: {type(exc).__name__}: {exc}",
                           hint="check the registry (MLFLOW_TRACKING_URI) and that the version exists") \
            from None
    if local is not None and local.exists():
        check_artifact_tree(local, uri=uri)
    try:
        return PyfuncBackend(uri, mlflow.pyfunc.load_model(uri))
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
