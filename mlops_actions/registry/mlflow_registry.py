"""The MLflow adapter of the ModelRegistry port, and the factory :func:`get_registry`.

* Embedded default: with no argument and no ``MLFLOW_TRACKING_URI``, MLflow runs
  in-process on SQLite at ``<repo_root>/mlflow.db`` with artifacts under
  ``<repo_root>/mlruns``: no server to start, and the store MLflow 3 itself uses by
  default (``sqlite:///mlflow.db``, ``./mlruns``), so a training script run from the
  repository root logs to the registry this toolkit reads. (Before 0.2 the default was
  ``.mlops/mlflow.db``; a registry found only there is an error saying how to move it.)
* Otherwise any MLflow tracking URI: ``http(s)://`` (``mlflow server``),
  ``sqlite:///``, ``postgresql://``, ``mysql://``, ``databricks``.
* Waits are bounded: ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (2),
  ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (8 s), ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` (1)
  are set unless the user set them, and every MLflow failure becomes one
  :class:`~mlops_actions.errors.RegistryError` line naming the URI.

Only ``MlflowClient`` talks to the registry; the fluent API is used (inside
:meth:`MlflowRegistry._fluent`) just to log a pickled model and read a model's
signature, which MLflow offers no client method for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from mlops_actions.config.specs import parse_semver
from mlops_actions.errors import RegistryError, RegistryInputError, scrub_credentials
from mlops_actions.registry.interface import (
    ARCHIVED_TAG,
    EMBEDDED_ARTIFACTS,
    EMBEDDED_DB,
    SEMVER_TAG,
    SIGNATURE_TAG,
    STAGE_TAG,
    Bump,
    ModelVersion,
    RegistryNotFound,
    check_alias,
    duplicate_version,
    model_not_found,
    version_not_found,
)
from mlops_actions.registry.memory import describe, meta_tags
from mlops_actions.registry.semver import (
    SignatureSummary,
    latest_version,
    next_version,
    semver_key,
    signature_change,
)
from mlops_actions.registry.sqlite_read import find_semver, sqlite_path
from mlops_actions.registry.uris import check_model_uri
from mlops_actions.retry import RetryPolicy, TryAgain

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion

__all__ = [
    "EMBEDDED_ARTIFACTS",
    "EMBEDDED_DB",
    "EXPERIMENT_NAME",
    "HTTP_DEFAULTS",
    "REGISTRATION_TAG",
    "SUPPORTED_SCHEMES",
    "MlflowRegistry",
    "bound_http_waits",
    "embedded_artifacts",
    "embedded_tracking_uri",
    "get_registry",
    "redact",
]

T = TypeVar("T")

EXPERIMENT_NAME = "mlops-actions"
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "8",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    # urllib3 sleeps whatever a 503's Retry-After says, uncapped (an hour if a proxy says so):
    # the exponential backoff above keeps the wait bounded instead.
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
}
REGISTRATION_TAG = "mlops.registration"  # one random id per register() call: finds our own retries
SUPPORTED_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks", "file")
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_MAX_SIGNATURE_TAG = 4500  # MLflow caps tag values; bigger signatures are read from the model
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
_ALREADY_EXISTS_CODES = {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}
_PAGE = 1000
_FLUENT_LOCK = threading.RLock()
#: what MLflow's client gives a 5xx status (mlflow.exceptions.get_error_code; 502 -> INTERNAL_ERROR)
_SERVER_ERROR_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "DEADLINE_EXCEEDED"}


def _network_failure(exc: BaseException) -> bool:
    """MLflow's REST client wraps a failed request in an ``MlflowException`` raised inside its
    ``except`` (``mlflow.utils.rest_utils.http_request``): the requests / urllib3 error (a refused
    connection, a timeout, retries exhausted on 5xx answers) is in the exception's chain."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) or type(cause).__module__.split(".")[0] in ("requests", "urllib3"):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _not_mlflow_answer(exc: BaseException, code: str) -> bool:
    """A 5xx answer that is not MLflow's JSON error (a proxy's HTML page): MLflow raises a plain
    ``MlflowException`` for it, a ``RestException`` for MLflow's own error body."""
    return code in _SERVER_ERROR_CODES and type(exc).__name__ != "RestException"


def _model_version(name: str, registry_version: str, tags: dict[str, str], source: str | None,
                   run_id: str | None, created_ms: int | None, aliases: tuple[str, ...],
                   description: str | None) -> ModelVersion:
    """One registry version as the port's ModelVersion, whether MLflow's client or the direct
    SQLite read (:mod:`~mlops_actions.registry.sqlite_read`) found it: the semver from its tag
    (``0.0.N`` for a version registered without one), archived from its tag."""
    return ModelVersion(
        name=name, version=tags.get(SEMVER_TAG) or f"0.0.{registry_version}",
        registry_version=registry_version, source=source or "", run_id=run_id or None,
        created_at=(created_ms or 0) / 1000.0, aliases=aliases, tags=tags,
        archived=tags.get(ARCHIVED_TAG) == "true", description=description or "",
    )


def bound_http_waits() -> dict[str, str]:
    """Bound MLflow's HTTP retries and timeout unless the user set them; returns what is in effect."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # CI runners: no phoning home
    return {key: os.environ[key] for key in HTTP_DEFAULTS}


_LEGACY_DB = Path(".mlops") / "mlflow.db"  # the default before both tools shared one


def embedded_artifacts(repo_root: str | Path = ".") -> Path:
    """``<repo_root>/mlruns`` (created): where MLflow's default store keeps artifacts."""
    path = Path(repo_root).resolve() / EMBEDDED_ARTIFACTS
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedded_tracking_uri(repo_root: str | Path = ".") -> str:
    """``sqlite:///<repo_root>/mlflow.db``: MLflow 3's own default, so that training code that sets no
    tracking URI and this toolkit use one store. A registry left at the old default
    (``.mlops/mlflow.db``) with none at the new one is an error saying how to move it."""
    root = Path(repo_root).resolve()
    legacy = root / _LEGACY_DB
    if legacy.is_file() and legacy.stat().st_size > 0 and not (root / EMBEDDED_DB).exists():
        err = RegistryInputError(
            f"the registry is at {legacy}, the old default; the default is now {root / EMBEDDED_DB}, "
            "the store MLflow itself uses when no tracking URI is set",
            hint=f"move it once: mv {legacy} {root / EMBEDDED_DB} (its artifacts stay where they are), "
            f"or keep it there: export MLFLOW_TRACKING_URI=sqlite:///{legacy}")
        raise err
    embedded_artifacts(root)
    return f"sqlite:///{root / EMBEDDED_DB}"


def redact(uri: str) -> str:
    """A URI fit for messages: the password, if any, replaced by ``***``."""
    return scrub_credentials(uri)


def _scheme(uri: str) -> str:
    if uri == "databricks" or uri.startswith("databricks://"):
        return "databricks"
    scheme = urlsplit(uri).scheme.split("+")[0]
    return scheme or "file"


def get_registry(tracking_uri: str | None = None, *, repo_root: str | Path = ".") -> MlflowRegistry:
    """The registry the toolkit uses: ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else embedded.

    The registry URI is ``MLFLOW_REGISTRY_URI`` when set (and no ``tracking_uri``
    argument), otherwise the tracking URI. Unknown URI schemes are refused
    naming the supported ones.
    """
    bound_http_waits()
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    embedded = uri is None
    if uri is None:
        uri = embedded_tracking_uri(repo_root)
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    registry_uri = (None if tracking_uri else os.environ.get("MLFLOW_REGISTRY_URI")) or uri
    for candidate in (uri, registry_uri):
        if _scheme(candidate) not in SUPPORTED_SCHEMES:
            err = RegistryInputError(
                f"unsupported MLflow URI {redact(candidate)!r}: scheme {_scheme(candidate)!r} "
                f"is not one of {', '.join(SUPPORTED_SCHEMES)}",
                hint="set MLFLOW_TRACKING_URI to e.g. http://127.0.0.1:5000 or "
                "postgresql://user@host/db, or unset it to use the embedded SQLite under .mlops/",
            )
            raise err
    artifacts: str | None = None
    if _scheme(uri) not in ("http", "https", "databricks"):
        artifacts = str(embedded_artifacts(repo_root))
    return MlflowRegistry(uri, registry_uri=registry_uri, artifact_location=artifacts,
                          embedded=embedded)


class MlflowRegistry:
    """ModelRegistry over ``mlflow.MlflowClient``. Build it with :func:`get_registry`."""

    def __init__(self, tracking_uri: str, *, registry_uri: str | None = None,
                 artifact_location: str | None = None, embedded: bool = False) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifact_location = artifact_location
        self.embedded = embedded
        self._client_obj: MlflowClient | None = None
        self._experiment_id: str | None = None

    @property
    def _client(self) -> MlflowClient:
        """Created on first use: a SQLite store runs its migrations when the client is built."""
        if self._client_obj is None:
            from mlflow import MlflowClient

            try:
                client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
            except Exception as exc:
                raise self._call_error("opening the registry", exc) from None
            self._client_obj = cast("MlflowClient", _AnswerRetryingClient(client))
        return self._client_obj

    def __repr__(self) -> str:
        return f"MlflowRegistry({redact(self.tracking_uri)!r})"

    @property
    def where(self) -> str:
        """The registry for messages: ``MLflow at <tracking URI>`` (password redacted)."""
        default = " (the default, shared with MLflow; set MLFLOW_TRACKING_URI for another)" \
            if self.embedded else ""
        return f"MLflow at {redact(self.tracking_uri)}{default}"

    def activate(self) -> None:
        """Point MLflow's fluent API at this registry for the rest of the process.

        Commands that load ``models:/NAME/N`` with ``mlflow.pyfunc.load_model``
        (serve, validate, staging-check) call this once, so the embedded SQLite
        default is found without ``MLFLOW_TRACKING_URI``.
        """
        if "mlflow" not in sys.modules:
            # What set_*_uri would do in a process that has not imported MLflow yet: MLflow reads
            # these when it first needs a URI (and exports them itself). Importing MLflow here
            # would cost ``serve`` seconds before it listens.
            os.environ["MLFLOW_TRACKING_URI"] = self.tracking_uri
            os.environ["MLFLOW_REGISTRY_URI"] = self.registry_uri
            return
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)

    # ------------------------------------------------------------------ errors
    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one MLflow client call; every failure becomes one RegistryError line."""
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            raise self._translate(what, exc) from None
        except (OSError, ConnectionError) as exc:
            raise self._unreachable(what, exc) from None
        except Exception as exc:  # requests / sqlalchemy errors surface untyped
            if type(exc).__module__.split(".")[0] in ("requests", "urllib3", "sqlalchemy", "psycopg2"):
                raise self._unreachable(what, exc) from None
            raise

    def _translate(self, what: str, exc: Exception) -> RegistryError:
        code = str(getattr(exc, "error_code", ""))
        message = str(getattr(exc, "message", exc))
        if code in _NOT_FOUND_CODES:
            return RegistryNotFound(f"{what}: {_first_line(message)} (looked in {self.where})",
                                    hint="check MLFLOW_TRACKING_URI: it names the MLflow the run or model "
                                    "was logged to")
        if _network_failure(exc) or (self.tracking_uri.startswith(("http://", "https://"))
                                     and _not_mlflow_answer(exc, code)):
            return self._unreachable(what, exc)
        if code == "INVALID_PARAMETER_VALUE":
            err = RegistryInputError(f"MLflow at {redact(self.tracking_uri)} refused {what}: "
                                f"{_first_line(message)}")
            return err
        return RegistryError(
            f"MLflow at {redact(self.tracking_uri)} failed while {what}: {_first_line(message)}",
            hint="check the MLflow server's log; rerun when it is healthy",
        )

    def _unreachable(self, what: str, exc: BaseException) -> RegistryError:
        waits = bound_http_waits()
        detail = _first_line(str(exc))
        return RegistryError(
            f"cannot reach MLflow at {redact(self.tracking_uri)} while {what}: {detail}",
            hint="check MLFLOW_TRACKING_URI and that the server is up; each request waited at most "
            f"{waits['MLFLOW_HTTP_REQUEST_TIMEOUT']} s x {int(waits['MLFLOW_HTTP_REQUEST_MAX_RETRIES']) + 1}"
            " attempts (MLFLOW_HTTP_REQUEST_TIMEOUT, MLFLOW_HTTP_REQUEST_MAX_RETRIES)",
        )

    # ------------------------------------------------------------------ conversion
    def _convert(self, mv: MlflowModelVersion, aliases: Mapping[str, str] | None = None) -> ModelVersion:
        tags = dict(mv.tags or {})
        rv = str(mv.version)
        if aliases is None:
            names = tuple(sorted(getattr(mv, "aliases", None) or ()))
        else:
            names = tuple(sorted(a for a, v in aliases.items() if str(v) == rv))
        return _model_version(mv.name, rv, tags, mv.source, mv.run_id, mv.creation_timestamp, names,
                              mv.description)

    # ------------------------------------------------------------------ low-level reads
    def _registered(self, name: str) -> Any:
        """get_registered_model (1 call); RegistryNotFound when missing."""
        from mlflow.exceptions import MlflowException

        _check_name(name)
        try:
            return self._client.get_registered_model(name)
        except MlflowException as exc:
            if str(exc.error_code) in _NOT_FOUND_CODES:
                raise model_not_found(name, where=self.where) from None
            raise self._translate(f"reading registered model {name!r}", exc) from None
        except Exception as exc:
            raise self._call_error(f"reading registered model {name!r}", exc) from None

    def _call_error(self, what: str, exc: Exception) -> Exception:
        if isinstance(exc, (OSError, ConnectionError)) or \
                type(exc).__module__.split(".")[0] in ("requests", "urllib3", "sqlalchemy", "psycopg2"):
            return self._unreachable(what, exc)
        return exc

    def _search(self, filter_string: str, what: str) -> list[MlflowModelVersion]:
        found: list[MlflowModelVersion] = []
        token: str | None = None
        while True:
            page = self._call(what, self._client.search_model_versions, filter_string,
                              max_results=_PAGE, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return sorted(found, key=lambda v: int(v.version))

    def _find(self, name: str, version: str) -> MlflowModelVersion:
        """The MLflow version carrying semver ``version`` (1 call when found)."""
        _check_name(name)
        _check_semver(version)
        hits = self._search(f"name = '{name}' and tags.`{SEMVER_TAG}` = '{version}'",
                            f"looking up {name} {version}")
        if hits:
            return hits[0]
        existing = self._search(f"name = '{name}'", f"listing versions of {name}")
        legacy = re.fullmatch(r"0\.0\.(\d+)", version)
        for mv in existing:
            if legacy and str(mv.version) == legacy.group(1) and SEMVER_TAG not in (mv.tags or {}):
                return mv
        if not existing:
            self._registered(name)  # raises model-not-found when the model itself is missing
        versions = [self._convert(mv, {}).version for mv in existing]
        raise version_not_found(name, version, sorted(versions, key=semver_key), where=self.where)

    # ------------------------------------------------------------------ the port
    def get(self, name: str, version: str) -> ModelVersion:
        fast = self._get_from_sqlite(name, version)
        if fast is not None:
            return fast
        mv = self._find(name, version)
        aliases = self._registered(name).aliases or {}
        return self._convert(mv, aliases)

    def _get_from_sqlite(self, name: str, version: str) -> ModelVersion | None:
        """:meth:`get` read straight from a SQLite registry (:mod:`~mlops_actions.registry.sqlite_read`),
        without MLflow's stores, which take seconds to build (``serve`` starts with this read);
        None when it cannot answer (not SQLite, not found, unreadable): MLflow answers then."""
        db = sqlite_path(self.registry_uri)
        if db is None:
            return None
        _check_name(name)
        _check_semver(version)
        row = find_semver(db, name, version, SEMVER_TAG)
        if row is None:
            return None
        return _model_version(row.name, row.version, row.tags, row.source, row.run_id, row.creation_time,
                              row.aliases, row.description)

    def list_versions(self, name: str) -> list[ModelVersion]:
        try:
            aliases = self._registered(name).aliases or {}
        except RegistryNotFound:
            return []
        versions = self._search(f"name = '{name}'", f"listing versions of {name}")
        return [self._convert(mv, aliases) for mv in versions]

    def aliases(self, name: str) -> dict[str, str]:
        raw = self._registered(name).aliases or {}
        if not raw:
            return {}
        by_rv = {str(mv.version): self._convert(mv, {}).version
                 for mv in self._search(f"name = '{name}'", f"listing versions of {name}")}
        return {alias: by_rv.get(str(rv), f"0.0.{rv}") for alias, rv in raw.items()}

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        _check_name(name)
        try:
            mv = self._client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if str(exc.error_code) in _NOT_FOUND_CODES | {"INVALID_PARAMETER_VALUE"}:
                self._registered(name)  # model missing -> RegistryNotFound; else alias unset
                return None
            raise self._translate(f"reading alias {alias!r} of {name}", exc) from None
        except Exception as exc:
            raise self._call_error(f"reading alias {alias!r} of {name}", exc) from None
        return self._convert(mv)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        check_alias(alias)
        mv = self._find(name, version)
        self._call(f"setting alias {alias!r} of {name} to {version}",
                   self._client.set_registered_model_alias, name, alias, str(mv.version))

    def delete_alias(self, name: str, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        _check_name(name)
        try:
            self._client.delete_registered_model_alias(name, alias)
        except MlflowException as exc:
            if str(exc.error_code) in _NOT_FOUND_CODES | {"INVALID_PARAMETER_VALUE"}:
                return
            raise self._translate(f"deleting alias {alias!r} of {name}", exc) from None
        except Exception as exc:
            raise self._call_error(f"deleting alias {alias!r} of {name}", exc) from None

    def archive(self, name: str, version: str) -> None:
        mv = self._find(name, version)
        for alias, rv in (self._registered(name).aliases or {}).items():
            if str(rv) == str(mv.version):
                self.delete_alias(name, alias)
        for key, value in ((ARCHIVED_TAG, "true"), (STAGE_TAG, "archived")):
            self._call(f"archiving {name} {version}", self._client.set_model_version_tag,
                       name, str(mv.version), key, value)

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        mv = self._find(name, version)
        self._call(f"tagging {name} {version}", self._client.set_model_version_tag,
                   name, str(mv.version), key, value)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self._registered(name)
        self._call(f"tagging model {name}", self._client.set_registered_model_tag, name, key, value)

    def model_tags(self, name: str) -> dict[str, str]:
        return dict(self._registered(name).tags or {})

    # ------------------------------------------------------------------ register
    def register(self, name: str, source: str, *, metadata: Mapping[str, object] | None = None,
                 bump: Bump | None = None, version: str | None = None) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        _check_name(name)
        if version is not None:
            _check_semver(version)
        model_source, run_id, model_id, signature = self._resolve_source(source)
        metadata = {**self._run_metrics(run_id), **(metadata or {})}
        try:
            self._client.create_registered_model(name)
        except MlflowException as exc:
            if str(exc.error_code) not in _ALREADY_EXISTS_CODES:
                raise self._translate(f"creating registered model {name!r}", exc) from None
        except Exception as exc:
            raise self._call_error(f"creating registered model {name!r}", exc) from None
        existing = self._search(f"name = '{name}'", f"listing versions of {name}")
        semvers = [mv.tags[SEMVER_TAG] for mv in existing if SEMVER_TAG in (mv.tags or {})]
        if version is None:
            change: Bump = "minor"
            if semvers and bump is None:
                current = latest_version(semvers)
                previous = next(mv for mv in existing if (mv.tags or {}).get(SEMVER_TAG) == current)
                change, _ = signature_change(self._stored_signature(previous), signature)
            version = next_version(semvers, bump=bump, change=change)
        if version in semvers:
            raise duplicate_version(name, version)
        registration = uuid.uuid4().hex
        tags = {SEMVER_TAG: version, REGISTRATION_TAG: registration, **meta_tags(metadata)}
        if signature is not None and len(signature.to_json()) <= _MAX_SIGNATURE_TAG:
            tags[SIGNATURE_TAG] = signature.to_json()
        with self._fluent():  # MLflow resolves models:/m-... sources through the fluent tracking URI
            created = self._call(
                f"creating a version of {name}", self._client.create_model_version, name, model_source,
                run_id=run_id, tags=tags, description=describe(metadata) or None, model_id=model_id,
                await_creation_for=60)
        twins = self._search(f"name = '{name}' and tags.`{SEMVER_TAG}` = '{version}'",
                             f"checking {name} {version} is unique")
        return self._convert(self._settle_twins(name, version, registration, created, twins), {})

    def _settle_twins(self, name: str, version: str, registration: str, created: MlflowModelVersion,
                      twins: list[MlflowModelVersion]) -> MlflowModelVersion:
        """Leave one MLflow version carrying semver ``version``: the earliest.

        Two causes of twins: MLflow's HTTP client retried our create after its answer was
        lost (every twin carries our ``registration`` id: keep the first, delete the
        retries' copies), or another registration raced us to the same semver (the earliest
        twin is theirs: ours back off and the caller hears it as a duplicate).
        """
        by_number = {int(t.version): t for t in [*twins, created]}
        first = by_number[min(by_number)]
        ours = [t for t in by_number.values() if (t.tags or {}).get(REGISTRATION_TAG) == registration]
        for extra in ours:
            if extra is not first:
                with contextlib.suppress(RegistryNotFound):  # a retried delete finds it gone
                    self._call(f"removing duplicate {name} {version}", self._client.delete_model_version,
                               name, str(extra.version))
        if (first.tags or {}).get(REGISTRATION_TAG) != registration:
            raise duplicate_version(name, version)
        return first

    def _run_metrics(self, run_id: str | None) -> dict[str, object]:
        """The source run's latest metrics, as default metadata (explicit metadata wins)."""
        if not run_id:
            return {}
        try:
            run = self._client.get_run(run_id)
        except Exception:  # metrics are a convenience; registration does not depend on them
            return {}
        return dict(sorted((run.data.metrics or {}).items()))

    def _stored_signature(self, mv: MlflowModelVersion) -> SignatureSummary | None:
        text = (mv.tags or {}).get(SIGNATURE_TAG)
        if text:
            return SignatureSummary.from_json(text)
        return self._read_signature(f"models:/{mv.name}/{mv.version}")

    def _read_signature(self, uri: str) -> SignatureSummary | None:
        import mlflow

        try:
            with self._fluent():
                info = mlflow.models.get_model_info(uri)
        except Exception:
            return None
        return SignatureSummary.from_mlflow_dict(info.signature.to_dict()) if info.signature else None

    @contextmanager
    def _fluent(self) -> Iterator[None]:
        """Point MLflow's fluent API at this registry for the duration, then restore it."""
        import mlflow
        from mlflow.tracking._model_registry import utils as reg_utils
        from mlflow.tracking._tracking_service import utils as track_utils

        with _FLUENT_LOCK:  # process-global state: one registry at a time points it
            old_tracking, old_registry = track_utils._tracking_uri, reg_utils._registry_uri
            # set_*_uri also export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI: restore those too.
            old_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.registry_uri)
            try:
                yield
            finally:
                track_utils._tracking_uri = old_tracking
                reg_utils._registry_uri = old_registry
                for key, value in old_env.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def activated(self) -> contextlib.AbstractContextManager[None]:
        """Point MLflow's fluent API (``mlflow.pyfunc.load_model("models:/...")``...) here, then restore.

        For code that must call MLflow directly, e.g. the gateway loading ``mv.uri``.
        """
        return self._fluent()

    def load_pyfunc(self, name: str, ref: str) -> Any:
        """``mlflow.pyfunc.load_model`` of a semver or alias of ``name``, from this registry."""
        import mlflow

        from mlops_actions.registry.interface import resolve

        mv = resolve(self, name, ref)
        with self._fluent():
            try:
                return mlflow.pyfunc.load_model(mv.uri)
            except Exception as exc:
                err = self._call_error(f"loading {name} {mv.version}", exc)
                if err is exc:
                    raise RegistryError(f"cannot load {name} {mv.version} ({mv.uri}): "
                                        f"{_first_line(str(exc))}") from None
                raise err from None

    def experiment_id(self) -> str:
        """The experiment models are logged to (created with artifacts under ``<repo>/mlruns``)."""
        if self._experiment_id is None:
            exp = self._call("reading the mlops-actions experiment",
                             self._client.get_experiment_by_name, EXPERIMENT_NAME)
            if exp is None:
                self._experiment_id = self._create_experiment()
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    def _create_experiment(self) -> str:
        """Create the toolkit's experiment; "already exists" (a retried create whose first answer
        was lost, or another process first) means it is there: read its id."""
        from mlflow.exceptions import MlflowException

        location = Path(self.artifact_location).as_uri() if self.artifact_location else None
        try:
            return str(self._client.create_experiment(EXPERIMENT_NAME, artifact_location=location))
        except MlflowException as exc:
            if str(exc.error_code) not in _ALREADY_EXISTS_CODES:
                raise self._translate("creating the mlops-actions experiment", exc) from None
        except Exception as exc:
            raise self._call_error("creating the mlops-actions experiment", exc) from None
        exp = self._call("reading the mlops-actions experiment", self._client.get_experiment_by_name,
                         EXPERIMENT_NAME)
        if exp is None:
            raise RegistryError(f"MLflow at {redact(self.tracking_uri)} said experiment {EXPERIMENT_NAME!r} "
                                "exists, then could not find it", hint="rerun; check the server's log")
        return str(exp.experiment_id)

    @contextmanager
    def logging_run(self, run_name: str | None = None) -> Iterator[Any]:
        """An active MLflow run in the toolkit's experiment, the fluent API pointed at this registry.

        Training scripts log inside it::

            with reg.logging_run("train"):
                info = mlflow.sklearn.log_model(...)
        """
        import mlflow

        experiment_id = self.experiment_id()
        with self._fluent():
            try:
                run_cm = mlflow.start_run(experiment_id=experiment_id, run_name=run_name)
            except Exception as exc:
                raise self._call_error("starting a run", exc) from None
            with run_cm as run:
                yield run

    def _resolve_source(self, source: str) -> tuple[str, str | None, str | None, SignatureSummary | None]:
        """(source for create_model_version, run_id, logged model id, signature)."""
        path = Path(source)
        if "://" not in source and not source.startswith(("runs:/", "models:/")):
            if path.is_dir() and (path / "MLmodel").is_file():
                return self._log_model_dir(path)
            if path.is_file():  # .pkl/.joblib, or any file the seed API was given: try to unpickle
                return self._log_pickle(path)
            err = RegistryNotFound(
                f"model source {source!r} is not a model: expected runs:/<run_id>/<path>, "
                "models:/<logged model id>, models:/<name>/<version>, a directory with an MLmodel "
                f"file, or a pickled scikit-learn model ({', '.join(_PICKLE_SUFFIXES)})"
                + ("" if path.exists() else "; the path does not exist"),
                hint="log the model with mlflow.<flavor>.log_model and pass the model URI it returns",
            )
            raise err
        check_model_uri(source, what="model source")  # URIs: registry forms only (no file:, no ..)
        if source.startswith("runs:/"):
            return self._resolve_runs_uri(source)
        m = re.fullmatch(r"models:/(m-[0-9a-f]+)", source)
        if m:
            logged = self._call(f"reading logged model {m.group(1)}", self._client.get_logged_model,
                                m.group(1))
            return source, logged.source_run_id, m.group(1), self._read_signature(source)
        m = re.fullmatch(r"models:/([^/]+)/([^/]+)", source)
        if m:
            other = self._call(f"reading {source}", self._client.get_model_version, m.group(1), m.group(2))
            return str(other.source), other.run_id, getattr(other, "model_id", None), \
                self._read_signature(source)
        return source, None, None, self._read_signature(source)

    def _resolve_runs_uri(self, source: str) -> tuple[str, str | None, str | None,
                                                       SignatureSummary | None]:
        m = re.fullmatch(r"runs:/([^/]+)/(.+)", source)
        if not m:
            raise RegistryNotFound(f"bad runs URI {source!r}: expected runs:/<run_id>/<artifact path>")
        run_id, artifact_path = m.group(1), m.group(2).strip("/")
        run = self._call(f"reading run {run_id}", self._client.get_run, run_id)
        # MLflow 3: log_model creates a LoggedModel; prefer it (as mlflow.register_model does).
        outputs = getattr(run, "outputs", None)
        for output in getattr(outputs, "model_outputs", None) or []:
            logged = self._call("reading a logged model", self._client.get_logged_model, output.model_id)
            if logged.name == artifact_path:
                uri = f"models:/{logged.model_id}"
                return uri, run_id, logged.model_id, self._read_signature(uri)
        files = self._call(f"listing artifacts of run {run_id}", self._client.list_artifacts,
                           run_id, artifact_path)
        if any(f.path.endswith("MLmodel") for f in files):
            return f"{run.info.artifact_uri}/{artifact_path}", run_id, None, \
                self._read_signature(source)
        raise RegistryNotFound(
            f"run {run_id} has no model at {artifact_path!r} (looked in {self.where})",
            hint="pass the model URI log_model returned (models:/m-...), or the right artifact path")

    def _log_model_dir(self, path: Path) -> tuple[str, str | None, str | None, SignatureSummary | None]:
        """Copy a saved MLflow model directory into a new run's artifacts."""
        from mlflow.models import Model

        signature = None
        try:
            loaded = Model.load(str(path / "MLmodel"))
            if loaded.signature is not None:
                signature = SignatureSummary.from_mlflow_dict(loaded.signature.to_dict())
        except Exception as exc:
            raise RegistryNotFound(f"{path}/MLmodel is not a valid MLflow model file: {exc}") from None
        with self.logging_run(run_name=f"register {path.name}") as run:
            self._call(f"uploading {path}", self._client.log_artifacts, run.info.run_id, str(path), "model")
            source = f"{run.info.artifact_uri}/model"
        return source, run.info.run_id, None, signature

    def _log_pickle(self, path: Path) -> tuple[str, str | None, str | None, SignatureSummary | None]:
        """Log a pickled scikit-learn estimator with mlflow.sklearn (trusted files only: pickles run code)."""
        import joblib
        import mlflow
        import sklearn

        try:
            model = joblib.load(path)
        except Exception as exc:
            raise RegistryNotFound(f"cannot load {path} as a pickled model: {type(exc).__name__}: {exc}",
                                   hint="save it with joblib.dump or pickle.dump") from None
        if not hasattr(model, "predict"):
            raise RegistryNotFound(f"{path} holds a {type(model).__name__}, not a model with predict()",
                                   hint="pickle a fitted scikit-learn estimator or pipeline")
        requirements = [f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"]
        with self.logging_run(run_name=f"register {path.name}") as run:
            try:
                info = mlflow.sklearn.log_model(model, name="model", pip_requirements=requirements)
            except Exception as exc:
                raise self._call_error(f"logging {path}", exc) from None
        return info.model_uri, run.info.run_id, info.model_id, None


_BROKEN_ANSWER = ("Connection broken", "IncompleteRead", "Response ended prematurely")


def broken_answer(exc: BaseException) -> bool:
    """Whether ``exc`` is an answer cut mid-body (the request itself may well have been done)."""
    text = f"{type(exc).__name__}: {exc}"
    return type(exc).__name__ == "ChunkedEncodingError" or any(s in text for s in _BROKEN_ANSWER)


class _AnswerRetryingClient:
    """An ``MlflowClient`` whose calls are retried when the answer was cut mid-body.

    MLflow's HTTP retries (urllib3, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``) cover refused and
    reset connections and 5xx, but end once the headers have arrived: a body cut short then
    fails the call at once ("Connection broken: IncompleteRead"). Those calls are retried
    here, as many times as that variable allows. Retrying a write is safe: every write of
    the adapter is idempotent or checked afterwards (aliases and tags are set, not added;
    ``register`` removes its own twin versions; "already exists" is taken as done).
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            retries = int(bound_http_waits()["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])

            def attempt(n: int) -> Any:
                try:
                    return attr(*args, **kwargs)
                except Exception as exc:
                    if not broken_answer(exc):
                        raise
                    raise _BrokenAnswer(exc) from None

            try:  # the shared policy; at once (urllib3 has already waited its backoff)
                return RetryPolicy(retries=retries, backoff=0.0).call(attempt)
            except _BrokenAnswer as gave_up:
                raise gave_up.error from None

        return call


class _BrokenAnswer(TryAgain):
    """An MLflow call whose answer was cut mid-body: sent again (every write is idempotent)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _first_line(text: str) -> str:
    """The first line of an MLflow error, passwords of URLs in it scrubbed (MLflow echoes them)."""
    text = scrub_credentials(text)
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 300 else line[:297] + "..."


def _check_name(name: str) -> None:
    if not name or "'" in name or "`" in name or "\n" in name:
        raise RegistryInputError(f"invalid model name {name!r}: quotes, backticks and newlines "
                                 "are not allowed")


def _check_semver(version: str) -> None:
    try:
        parse_semver(version)
    except ValueError as exc:
        err = RegistryInputError(str(exc), hint="versions are quoted strings such as \"1.2.0\"")
        raise err from None
