"""The ModelRegistry port: what the toolkit needs from a model registry.

The MLflow adapter (``mlflow.py``) is the real one; ``memory.py`` is for unit
tests. Versions are semantic versions (``"1.2.0"``), stored on the MLflow model
version as the tag ``mlops.semver``; MLflow's own integer version is
``registry_version``. A "stage" is an alias (``staging``, ``production``,
``<env>-canary``, ``<env>-b``) plus the tag ``mlops.stage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["Bump", "ModelRegistry", "ModelVersion"]

Bump = Literal["major", "minor", "patch"]

SEMVER_TAG = "mlops.semver"
STAGE_TAG = "mlops.stage"
AB_TEST_TAG = "mlops.ab_test"


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

    @property
    def uri(self) -> str:
        """A URI that ``mlflow.pyfunc.load_model`` accepts."""
        return f"models:/{self.name}/{self.registry_version}"


class ModelRegistry(Protocol):
    def register(self, name: str, source: str, *, metadata: Mapping[str, object] | None = None,
                 bump: Bump | None = None, version: str | None = None) -> ModelVersion:
        """Create the next version of ``name`` from a logged model URI or a saved-model path."""
        ...

    def get(self, name: str, version: str) -> ModelVersion:
        """A version by semver; RegistryError (not found) naming the versions that exist."""
        ...

    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions, oldest first."""
        ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def get_alias(self, name: str, alias: str) -> ModelVersion | None: ...

    def aliases(self, name: str) -> dict[str, str]:
        """alias -> semver, in one call (plan needs this to stay O(1) calls per model)."""
        ...

    def archive(self, name: str, version: str) -> None: ...

    def set_model_tag(self, name: str, key: str, value: str) -> None: ...
