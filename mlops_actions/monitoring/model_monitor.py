"""Seed API, part 3: ``get_model_monitor()`` and :class:`ModelMonitor`.

A thin facade over the prediction store, :mod:`performance`, :mod:`drift` and
:mod:`quality`, so the brief's snippets run unchanged::

    from mlops_actions.monitoring.model_monitor import get_model_monitor

    monitor = get_model_monitor()
    monitor.record_prediction(model_name="task_classifier", prediction=1, actual=1, latency_ms=50)
    performance = monitor.check_model_performance("task_classifier")
    drift = monitor.detect_data_drift("task_classifier", current_features)
    monitor.set_baseline("task_classifier", {"accuracy": 0.9})

The store is ``$MLOPS_PREDICTION_STORE`` or SQLite at ``./.mlops/predictions.db``;
reference data for drift is set with :meth:`ModelMonitor.set_reference` (stored
as a profile under ``.mlops/references/``), else the features logged so far are
the reference.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_actions.errors import ValidationError
from mlops_actions.monitoring.drift import DriftOptions, detect_drift, detect_prediction_drift
from mlops_actions.monitoring.performance import compute_performance
from mlops_actions.monitoring.profile import ReferenceProfile
from mlops_actions.monitoring.quality import check_quality
from mlops_actions.monitoring.store import (
    ENV_VAR,
    MonitoringStore,
    PredictionRecord,
    features_frame,
    new_request_id,
    open_store,
)

__all__ = ["ModelMonitor", "get_model_monitor"]

PREDICTION_BASELINE_SIZE = 10_000


def _frame(features: Any) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a dict of columns, a list of row dicts, or one row dict."""
    if isinstance(features, pd.DataFrame):
        return features
    if isinstance(features, Mapping):
        values = list(features.values())
        if values and all(isinstance(v, list | tuple | pd.Series) or hasattr(v, "__array__") for v in values):
            return pd.DataFrame(dict(features))
        return pd.DataFrame([dict(features)])
    if isinstance(features, Sequence) and not isinstance(features, str):
        return pd.DataFrame(list(features))
    raise ValidationError(f"current_features must be a DataFrame, a dict or a list of dicts, "
                          f"not {type(features).__name__}")


class ModelMonitor:
    def __init__(self, store: MonitoringStore | None = None, *, repo_root: str | Path = ".",
                 environment: str = "") -> None:
        self.repo_root = Path(repo_root)
        self.store = store if store is not None else open_store(None, repo_root=self.repo_root)
        self.environment = environment
        self._references: dict[str, ReferenceProfile] = {}

    # ------------------------------------------------------------------ logging
    def record_prediction(self, model_name: str, prediction: Any, actual: Any = None, latency_ms: float = 0.0,
                          features: Mapping[str, Any] | None = None, version: str | None = None, *,
                          request_id: str | None = None, status: int = 200,
                          timestamp: float | None = None) -> str:
        """Log one prediction (and its label, when known); returns its request id."""
        rid = request_id or new_request_id()
        self.store.write([PredictionRecord(
            request_id=rid, model=model_name, version=version or "", timestamp=timestamp or time.time(),
            features=dict(features or {}), output=prediction, latency_ms=float(latency_ms),
            status=int(status), environment=self.environment)])
        if actual is not None:
            self.store.attach_actuals({rid: actual})
        return rid

    def record_actual(self, request_id: str, actual: Any) -> bool:
        """Attach a late label; False when the request id is unknown (kept pending, see the store)."""
        return self.store.attach_actuals({request_id: actual}).matched == 1

    # ------------------------------------------------------------------ performance
    def set_baseline(self, model_name: str, metrics: Mapping[str, Any], version: str | None = None) -> None:
        """The metrics a model is expected to keep (e.g. its validation metrics)."""
        self.store.set_baseline(model_name, dict(metrics), version=version)

    def get_baseline(self, model_name: str, version: str | None = None) -> dict[str, Any] | None:
        return self.store.get_baseline(model_name, version=version)

    def check_model_performance(self, model_name: str, version: str | None = None, *,
                                window_seconds: float | None = None, min_samples: int = 1,
                                task: str | None = None) -> dict[str, Any]:
        """accuracy, precision, recall, f1_score (or rmse, mae, r2), latency, error rate, and
        ``verdict``/``checks`` against the stored baseline."""
        since = time.time() - window_seconds if window_seconds else None
        rows = self.store.query(model_name, version=version, since=since)
        report = compute_performance(rows, model=model_name, version=version, task=task,
                                     window_seconds=window_seconds,
                                     baseline=self.store.get_baseline(model_name, version=version),
                                     min_samples=min_samples)
        return report.as_flat_dict()

    # ------------------------------------------------------------------ drift
    def set_reference(self, model_name: str, reference: Any) -> ReferenceProfile:
        """Profile reference features once and keep the profile under ``.mlops/references/``."""
        profile = ReferenceProfile.from_frame(_frame(reference))
        profile.save(self._reference_path(model_name))
        self._references[model_name] = profile
        return profile

    def _reference_path(self, model_name: str) -> Path:
        return self.repo_root / ".mlops" / "references" / f"{model_name}.npz"

    def _reference(self, model_name: str) -> ReferenceProfile | pd.DataFrame | None:
        if model_name in self._references:
            return self._references[model_name]
        path = self._reference_path(model_name)
        if path.exists():
            self._references[model_name] = ReferenceProfile.load(path)
            return self._references[model_name]
        logged = features_frame(self.store.query(model_name))
        return logged if not logged.empty else None

    def detect_data_drift(self, model_name: str, current_features: Any, *,
                          reference: Any = None, options: DriftOptions | None = None) -> dict[str, Any]:
        """Per-feature drift of ``current_features`` vs the model's reference, plus data quality."""
        current = _frame(current_features)
        ref = _frame(reference) if reference is not None else self._reference(model_name)
        if ref is None:
            return {"drift_detected": False, "dataset_drift": False, "verdict": "inconclusive",
                    "message": f"no reference for {model_name}: call set_reference() or log predictions "
                               "with features first", "features": {}}
        report = detect_drift(ref, current, options)
        quality = check_quality(report, [str(c) for c in current.columns])
        return {"drift_detected": report.dataset_drift, "dataset_drift": report.dataset_drift,
                "drift_share": report.share, "drifted_features": [c.column for c in report.drifted],
                "verdict": report.verdict.value, "summary": report.summary(),
                "features": {c.column: c.to_dict() for c in report.columns},
                "quality": quality.to_dict(), "report": report}

    def set_prediction_baseline(self, model_name: str, predictions: Sequence[Any] | None = None, *,
                                version: str | None = None) -> int:
        """The output distribution to compare with; default: the predictions logged so far.

        The baseline records the version(s) its outputs came from: ``monitor`` compares a
        version's outputs only with a baseline of that version (a new version predicting
        differently from the old one is not drift)."""
        payload: dict[str, Any] = {}
        if predictions is None:
            rows = self.store.query(model_name, version=version, limit=PREDICTION_BASELINE_SIZE)
            predictions = list(rows["output"])
            if not version and not rows.empty:
                payload["versions"] = sorted({str(v) for v in rows["version"]})
        payload["predictions"] = list(predictions)[:PREDICTION_BASELINE_SIZE]
        if version:
            payload["version"] = version
        self.store.set_baseline(model_name, payload, version=version, kind="prediction")
        return len(payload["predictions"])

    def detect_prediction_drift(self, model_name: str, current_predictions: Sequence[Any] | None = None, *,
                                version: str | None = None, window_seconds: float | None = None,
                                threshold: float | None = None) -> dict[str, Any]:
        """Output distribution now vs the prediction baseline. ``current_predictions`` default:
        the predictions logged in the window (all when no window)."""
        baseline = self.store.get_baseline(model_name, version=version, kind="prediction")
        if current_predictions is None:
            since = time.time() - window_seconds if window_seconds else None
            current_predictions = list(self.store.query(model_name, version=version, since=since)["output"])
        col = detect_prediction_drift((baseline or {}).get("predictions", []), current_predictions,
                                      threshold=threshold)
        out = col.to_dict()
        out["drift_detected"] = bool(col.drifted)
        return out


_MONITORS: dict[tuple[str, str], ModelMonitor] = {}
_LOCK = threading.Lock()


def get_model_monitor(store_url: str | None = None, *, repo_root: str | Path = ".") -> ModelMonitor:
    """The process-wide monitor for a store (default: ``$MLOPS_PREDICTION_STORE`` or
    ``.mlops/predictions.db`` under ``repo_root``)."""
    key = (store_url or os.environ.get(ENV_VAR, ""), str(Path(repo_root).resolve()))
    with _LOCK:
        if key not in _MONITORS:
            _MONITORS[key] = ModelMonitor(open_store(store_url, repo_root=repo_root), repo_root=repo_root)
        return _MONITORS[key]
