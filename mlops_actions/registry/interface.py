"""The ModelRegistry port: what the toolkit needs from a model registry.

The MLflow adapter (``mlflow_registry.py``, factory :func:`get_registry`) is the
real one; ``memory.py`` is for unit tests. Versions are semantic versions
(``"1.2.0"``), stored on the MLflow model version as the tag ``mlops.semver``;
MLflow's own integer version is ``registry_version``. A "stage" is an alias
(``staging``, ``production``, ``<env>-canary``, ``<env>-b``) plus the tag
``mlops.stage``. Metadata given at registration is kept as tags
``mlops.meta.<key>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from mlops_actions.config.specs import parse_semver
from mlops_actions.errors import RegistryInputError, RegistryNotFound

__all__ = [
    "AB_TEST_TAG",
    "ARCHIVED_TAG",
    "EMBEDDED_ARTIFACTS",
    "EMBEDDED_DB",
    "LOCAL_STATE",
    "META_PREFIX",
    "SEMVER_TAG",
    "SIGNATURE_TAG",
    "STAGE_TAG",
    "Bump",
    "ModelRegistry",
    "ModelVersion",
    "RegistryNotFound",
    "bad_input",
    "by_registry_version",
    "check_alias",
    "duplicate_version",
    "model_not_found",
    "resolve",
    "version_not_found",
]

Bump = Literal["major", "minor", "patch"]
BUMPS: tuple[Bump, ...] = ("major", "minor", "patch")

SEMVER_TAG = "mlops.semver"
STAGE_TAG = "mlops.stage"
AB_TEST_TAG = "mlops.ab_test"
ARCHIVED_TAG = "mlops.archived"
SIGNATURE_TAG = "mlops.signature"
META_PREFIX = "mlops.meta."


#: the embedded default store, under the repository root: MLflow 3's own default
#: (``sqlite:///mlflow.db`` and ``./mlruns``), so training code that sets no tracking URI and
#: the toolkit share one store. Here, not in the MLflow adapter, so ``check`` knows it without MLflow.
EMBEDDED_DB = "mlflow.db"
EMBEDDED_ARTIFACTS = "mlruns"
#: what a repository using the toolkit keeps out of git (.gitignore lines): the gateway's state
#: and admin token, and the embedded registry with its artifacts
LOCAL_STATE = (".mlops/", EMBEDDED_DB, f"{EMBEDDED_ARTIFACTS}/")

@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str  # semver
    registry_version: str  # MLflow's integer version, as a string
    source: str  # model URI the version was created from
    run_id: str | None = None
    created_at: float = 0.0  # seconds since the epoch
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    archived: bool = False
    description: str = ""

    @property
    def uri(self) -> str:
        """A URI that ``mlflow.pyfunc.load_model`` accepts."""
        return f"models:/{self.name}/{self.registry_version}"

    @property
    def metadata(self) -> dict[str, str]:
        """Metadata given at registration (tags ``mlops.meta.<key>``), keys without the prefix."""
        return {k[len(META_PREFIX):]: v for k, v in self.tags.items() if k.startswith(META_PREFIX)}

    @property
    def stage(self) -> str | None:
        return self.tags.get(STAGE_TAG)


class ModelRegistry(Protocol):
    def register(self, name: str, source: str, *, metadata: Mapping[str, object] | None = None,
                 bump: Bump | None = None, version: str | None = None) -> ModelVersion:
        """Create the next version of ``name`` from a logged model URI or a saved-model path.

        ``version`` forces the semver; otherwise it is computed (see ``registry/semver.py``).
        A semver that exists already is refused (RegistryError, exit 2).
        """
        ...

    def get(self, name: str, version: str) -> ModelVersion:
        """A version by semver; RegistryNotFound naming the versions that exist."""
        ...

    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions with tags and aliases, oldest first ([] if the model does not exist)."""
        ...

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at the semver ``version`` (moving it if it pointed elsewhere)."""
        ...

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias``; no error if it is not set."""
        ...

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, or None when the alias is not set."""
        ...

    def aliases(self, name: str) -> dict[str, str]:
        """alias -> semver, in at most two calls (plan needs this to stay O(1) calls per model)."""
        ...

    def archive(self, name: str, version: str) -> None:
        """Tag ``mlops.archived=true`` (and ``mlops.stage=archived``) and drop its aliases."""
        ...

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    def set_model_tag(self, name: str, key: str, value: str) -> None: ...

    def model_tags(self, name: str) -> dict[str, str]:
        """Tags of the registered model (e.g. ``mlops.ab_test``)."""
        ...


def resolve(registry: ModelRegistry, name: str, ref: str) -> ModelVersion:
    """A semver (``"1.2.0"``) or an alias (``"production"``) -> the version.

    RegistryNotFound names the versions and aliases that exist.
    """
    try:
        parse_semver(ref)
    except ValueError:
        found = registry.get_alias(name, ref)
        if found is None:
            known = registry.aliases(name)
            listed = ", ".join(f"{a} -> {v}" for a, v in sorted(known.items())) or "none"
            raise RegistryNotFound(
                f"model {name!r} has no alias {ref!r} (and it is not a semantic version); "
                f"aliases set: {listed}",
                hint="pass a semantic version such as \"1.2.0\" or one of the aliases listed",
            ) from None
        return found
    return registry.get(name, ref)


def _listed(versions: list[str]) -> str:
    shown = versions[-20:]
    more = f" (and {len(versions) - len(shown)} older)" if len(versions) > len(shown) else ""
    return (", ".join(shown) + more) if shown else "none"


def _in(where: str | None) -> str:
    return f" (looked in {where})" if where else ""


def version_not_found(name: str, version: str, existing: list[str], where: str | None = None
                      ) -> RegistryNotFound:
    """The error every implementation raises for a semver that does not exist; ``where`` names
    the registry looked in (``MLflow at sqlite:///...``), so a wrong MLFLOW_TRACKING_URI shows."""
    if not existing:
        return RegistryNotFound(
            f"model {name!r} has no version {version!r}: the model has no registered versions{_in(where)}",
            hint=f"register one first: mlops-actions register {name} --source <model URI or path>",
        )
    return RegistryNotFound(
        f"model {name!r} has no version {version!r}; versions that exist: {_listed(existing)}{_in(where)}",
        hint="pin one of the versions listed, or register the model first (mlops-actions versions "
        f"{name} shows them all)",
    )


def model_not_found(name: str, known: list[str] | None = None, where: str | None = None) -> RegistryNotFound:
    tail = f"; registered models: {_listed(sorted(known))}" if known is not None else ""
    return RegistryNotFound(
        f"registered model {name!r} does not exist{tail}{_in(where)}",
        hint=f"check MLFLOW_TRACKING_URI and registered_name in models/<dir>/model.yaml, or register it: "
        f"mlops-actions register {name} --source <model URI or path>",
    )


def duplicate_version(name: str, version: str) -> RegistryInputError:
    return RegistryInputError(
        f"model {name!r} already has version {version!r}; a semantic version is never reused",
        hint="omit the explicit version to get the next one automatically, or pick another",
    )


def check_alias(alias: str) -> None:
    """MLflow's alias rules, checked up front so every implementation agrees."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9_\-]+", alias) or re.fullmatch(r"v\d+", alias, re.I) \
            or alias.lower() == "latest":
        raise RegistryNotFound(
            f"invalid alias {alias!r}: expected letters, digits, '_' or '-', "
            "not 'latest' nor v<number> (reserved by MLflow)",
            hint="use the environment name, e.g. staging, production, staging-canary",
        )


def bad_input(message: str, hint: str | None = None) -> RegistryInputError:
    """A RegistryError that is the caller's mistake (exit 2), not MLflow's."""
    return RegistryInputError(message, hint=hint)


def by_registry_version(registry: ModelRegistry, name: str, registry_version: str) -> ModelVersion:
    """MLflow's integer version -> the version (semver and all); RegistryNotFound listing them."""
    versions = registry.list_versions(name)
    for mv in versions:
        if mv.registry_version == str(registry_version):
            return mv
    listed = ", ".join(f"{mv.registry_version} ({mv.version})" for mv in versions) or "none"
    raise RegistryNotFound(f"model {name!r} has no MLflow version {registry_version}; "
                           f"MLflow versions: {listed}",
                           hint="pass a semantic version, an alias, or one of the MLflow versions listed")
