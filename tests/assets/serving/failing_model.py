"""A pyfunc model (MLflow models-from-code) that always raises: a broken canary."""

import mlflow
from mlflow.pyfunc import PythonModel


class AlwaysFails(PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("this version is broken on purpose")


mlflow.models.set_model(AlwaysFails())
