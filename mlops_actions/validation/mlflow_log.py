"""Log a validation to MLflow as an evaluation run linked to the model version.

The run (experiment ``mlops-actions-validation``) holds the candidate's metrics,
``baseline.<metric>``, ``slice.<slice>.<metric>``, the verdict as tags, and the
JSON/Markdown/HTML reports as artifacts. The model version gets the tags
``mlops.validation.run_id`` and ``mlops.validation.verdict``, so the registry
shows which evaluation judged it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path

from mlops_actions.errors import RegistryError
from mlops_actions.registry.interface import ModelVersion
from mlops_actions.validation.results import ValidationResult

__all__ = ["EXPERIMENT", "RUN_ID_TAG", "VERDICT_TAG", "log_evaluation"]

EXPERIMENT = "mlops-actions-validation"
RUN_ID_TAG = "mlops.validation.run_id"
VERDICT_TAG = "mlops.validation.verdict"


def _metrics(result: ValidationResult) -> dict[str, float]:
    out: dict[str, float] = {}

    def put(key: str, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            out[key] = float(value)

    for k, v in result.metrics.items():
        put(k, v)
    for k, v in result.baseline_metrics.items():
        put(f"baseline.{k}", v)
    for s, m in result.slice_metrics.items():
        for k, v in m.items():
            put(f"slice.{s}.{k}", v)
    for k, lat in result.latency.items():
        put(f"latency.{k}", lat)
    return out


def log_evaluation(result: ValidationResult, candidate: ModelVersion, tracking_uri: str,
                   artifacts: Mapping[str, str], artifact_location: str | None = None,
                   registry_uri: str | None = None) -> str:
    """Create the evaluation run, tag the model version with it; returns the run id.

    ``artifact_location`` (a directory) is used when the experiment has to be created.
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
        exp = client.get_experiment_by_name(EXPERIMENT)
        if exp is not None:
            exp_id = exp.experiment_id
        else:
            if artifact_location is None and tracking_uri.startswith("sqlite:///"):
                # next to the database, never MLflow's default ./mlruns in the working directory
                artifact_location = str(Path(tracking_uri[len("sqlite:///"):]).parent / "artifacts")
            location = Path(artifact_location).resolve().as_uri() if artifact_location else None
            exp_id = client.create_experiment(EXPERIMENT, artifact_location=location)
        verdict = result.verdict.value
        run = client.create_run(exp_id, run_name=f"validate {result.model} {result.version}", tags={
            "mlops.model": result.model, "mlops.version": result.version,
            "mlops.registry_version": candidate.registry_version, "mlops.verdict": verdict,
            "mlops.baseline_version": result.baseline_version or "",
        })
        run_id: str = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in _metrics(result).items()]
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        counts = {f"mlops.checks.{v}": str(n) for v, n in result.to_dict()["counts"].items()}
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in counts.items()])
        for name, text in artifacts.items():
            client.log_text(run_id, text, f"validation/{name}")
        client.set_terminated(run_id, "FINISHED")
        client.set_model_version_tag(candidate.name, candidate.registry_version, RUN_ID_TAG, run_id)
        client.set_model_version_tag(candidate.name, candidate.registry_version, VERDICT_TAG, verdict)
    except RegistryError:
        raise
    except Exception as exc:
        raise RegistryError(f"cannot log the evaluation run to MLflow at {tracking_uri}: "
                            f"{type(exc).__name__}: {exc}",
                            hint="check MLFLOW_TRACKING_URI, or pass --no-log to skip logging") from None
    return run_id
