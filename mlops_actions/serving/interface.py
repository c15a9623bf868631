"""The serving port: a loaded model version that predicts on a DataFrame.

``pyfunc.py`` loads MLflow pyfunc models; tests may pass any object with the
same shape. The gateway never touches MLflow directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AdminError", "Backend", "BackendLoader", "RolloutAdmin", "ServingError"]

from mlops_actions.errors import TargetError


class ServingError(TargetError):
    """The gateway could not load or serve a model version."""


class Backend(Protocol):
    uri: str
    #: required input columns from the model signature; None when the model has none
    input_columns: tuple[str, ...] | None

    def predict(self, frame: pd.DataFrame) -> Any: ...


class BackendLoader(Protocol):
    def __call__(self, uri: str) -> Backend: ...


class AdminError(Exception):
    """An admin request the gateway answers with an error status (``code`` in the body)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class RolloutAdmin(Protocol):
    """What the gateway's admin API calls: the rollout host, which the gateway does not own.

    The gateway is a scoring server; ``mlops-actions serve`` composes it with a rollout
    host (``mlops_actions.serving.local_plane``) that answers these in JSON
    and raises :class:`AdminError` for requests it refuses.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def declare(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]: ...

    def promote(self, model: str, full: bool) -> dict[str, Any]: ...

    def abort(self, model: str, reason: str) -> dict[str, Any]: ...

    def rollback(self, model: str, actor: str) -> dict[str, Any]: ...

    def rollouts(self) -> dict[str, Any]:
        """Every model's latest rollout, as JSON."""
        ...

    def history(self, model: str | None) -> list[dict[str, Any]]: ...

    def measurements(self, model: str) -> list[dict[str, Any]]: ...
