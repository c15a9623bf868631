"""The serving port: a loaded model version that predicts on a DataFrame.

``pyfunc.py`` loads MLflow pyfunc models; tests may pass any object with the
same shape. The gateway never touches MLflow directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Backend", "BackendLoader", "ServingError"]

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
