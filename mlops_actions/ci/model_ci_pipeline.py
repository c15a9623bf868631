"""The brief's CI/CD pipeline API: ``ModelCIPipeline().run_full_pipeline(...)``.

A thin facade over the validation core (DESIGN.md §7), in the brief's stage order:

1. ``unit_tests``: dataset slices (from ``models/<name>/model.yaml`` when it exists,
   else one slice per value of each low-cardinality column, judged by the same
   ``validation_metrics``) and declared behavioural tests;
2. ``validation``: ``validation_metrics`` as minimum thresholds on the whole test set
   (maximum for metrics where lower is better, e.g. ``log_loss``, ``rmse``);
3. ``registration``: registers the model in MLflow with the next semantic version;
4. ``staging_deployment``, ``staging_tests``, ``production_deployment``: run through a
   ``deployer`` when one is given; otherwise reported as ``not_available`` (never faked).

A stage runs only when the ones before it passed; later stages are ``skipped``.
"""

from __future__ import annotations

import enum
import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_actions.config.loader import load_model as load_model_yaml
from mlops_actions.config.specs import Condition, DataSpec, ModelSpec, SliceSpec, Threshold, ValidationSpec
from mlops_actions.errors import MlopsActionsError, ValidationError
from mlops_actions.validation.metrics import metric_name
from mlops_actions.validation.results import CheckKind, ValidationResult, Verdict, roll_up
from mlops_actions.validation.validator import ValidationOptions, validate_uri

__all__ = ["Deployer", "ModelCIPipeline", "PipelineResult", "StageResult", "StageStatus"]

#: ``deployer(model_name, version, environment, strategy) -> (ok, message)``
Deployer = Callable[[str, str, str, str], tuple[bool, str]]

CI_EXPERIMENT = "mlops-actions-ci"
LABEL_CANDIDATES = ("label", "target", "y", "class")
MAX_AUTO_SLICE_VALUES = 10


class StageStatus(enum.StrEnum):
    """Outcome of one pipeline stage."""

    PASSED = "passed"  #: the stage ran and succeeded
    FAILED = "failed"  #: the stage ran and said no (or crashed)
    SKIPPED = "skipped"  #: not run: an earlier stage did not pass, or nothing to do
    NOT_AVAILABLE = "not_available"  #: this build cannot run the stage (no deployer configured)


@dataclass(frozen=True)
class StageResult:
    name: str
    status: StageStatus
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "message": self.message,
                "details": dict(self.details)}


@dataclass(frozen=True)
class PipelineResult:
    """Per-stage outcome; also readable like the brief's dict (``result["status"]``)."""

    model_name: str
    stages: tuple[StageResult, ...]
    version: str | None = None
    validation: ValidationResult | None = None

    @property
    def success(self) -> bool:
        """No stage failed (stages not available do not count as failures)."""
        return not any(s.status is StageStatus.FAILED for s in self.stages)

    @property
    def status(self) -> str:
        if not self.success:
            return "failed"
        if any(s.status in (StageStatus.NOT_AVAILABLE, StageStatus.SKIPPED) for s in self.stages):
            return "partial"
        return "passed"

    def stage(self, name: str) -> StageResult:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def to_dict(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "status": self.status, "success": self.success,
                "version": self.version, "stages": {s.name: s.to_dict() for s in self.stages},
                "metrics": dict(self.validation.metrics) if self.validation else {}}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ValidationError(f"test data {path} not found",
                              hint="pass test_data_path= a CSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def _label_column(frame: pd.DataFrame, label: str | None) -> str:
    if label is not None:
        if label not in frame.columns:
            raise ValidationError(f"label column {label!r} is not in the test data",
                                  hint=f"columns: {', '.join(map(str, frame.columns))}")
        return label
    for name in LABEL_CANDIDATES:
        if name in frame.columns:
            return name
    raise ValidationError(
        f"no label column in the test data (looked for {', '.join(LABEL_CANDIDATES)})",
        hint="pass label_column=... to run_full_pipeline")


def _load_estimator(model_path: str) -> Any:
    path = Path(model_path)
    if not path.is_file():
        raise ValidationError(f"model file {model_path} not found",
                              hint="pass model_path= a pickled/joblib scikit-learn model")
    try:
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with path.open("rb") as fh:
            return pickle.load(fh)  # noqa: S301 - the pipeline's own training artifact, never PR input
    except Exception as exc:
        raise ValidationError(f"cannot load model {model_path}: {type(exc).__name__}: {exc}",
                              hint="save the model with pickle or joblib") from None


def _task(estimator: Any, y: pd.Series) -> str:
    classes = getattr(estimator, "classes_", None)
    if classes is None and not hasattr(estimator, "predict_proba"):
        return "regression"
    n = len(classes) if classes is not None else y.nunique()
    return "binary_classification" if n == 2 else "multiclass_classification"


def _auto_slices(frame: pd.DataFrame, label: str, features: list[str],
                 thresholds: dict[str, Threshold]) -> list[SliceSpec]:
    """One slice per value of each column with 2..10 distinct values (e.g. region, segment)."""
    slices: list[SliceSpec] = []
    for col in features:
        values = frame[col].dropna().unique()
        if not 2 <= len(values) <= MAX_AUTO_SLICE_VALUES:
            continue
        for v in sorted(values, key=str):
            item = v.item() if isinstance(v, np.generic) else v
            if not isinstance(item, str | int | float | bool):
                continue
            name = f"{col}-{item}".replace(" ", "_")[:120]
            if not all(c.isalnum() or c in "_.-" for c in name):
                continue
            slices.append(SliceSpec(name=name, where=[Condition(column=col, op="==", value=item)],
                                    thresholds=thresholds))
    return slices


class ModelCIPipeline:
    """Unit tests on slices, validation, MLflow registration, staging, production."""

    def __init__(self, repo_root: str | Path = ".", *, tracking_uri: str | None = None,
                 deployer: Deployer | None = None, production_strategy: str = "canary") -> None:
        self.repo_root = Path(repo_root)
        self.tracking_uri = tracking_uri
        self.deployer = deployer
        self.production_strategy = production_strategy

    # ------------------------------------------------------------------ stages
    def run_full_pipeline(self, model_path: str, model_name: str, test_data_path: str,
                          validation_metrics: Mapping[str, float], *, label_column: str | None = None,
                          ) -> PipelineResult:
        stages: list[StageResult] = []
        try:
            estimator = _load_estimator(model_path)
            frame = _read_table(Path(test_data_path))
            label = _label_column(frame, label_column)
            spec = self._spec(estimator, frame, label, model_name, test_data_path, validation_metrics)
            model_uri = self._log_model(estimator, frame, label, spec)
            result = validate_uri(spec, self._model_yaml(model_name), model_uri, "candidate",
                                  options=ValidationOptions(latency_rows=20))
        except MlopsActionsError as exc:
            stages.append(StageResult("unit_tests", StageStatus.FAILED, str(exc)))
            return PipelineResult(model_name, tuple(self._skip_rest(stages)))

        unit = [c for c in result.checks if c.kind in (CheckKind.SLICE, CheckKind.BEHAVIOURAL)]
        if unit:
            verdict = roll_up(c.verdict for c in unit)
            status = StageStatus.FAILED if verdict in (Verdict.FAILED, Verdict.ERROR) else StageStatus.PASSED
            stages.append(StageResult("unit_tests", status,
                                      f"{len(unit)} slice/behavioural checks: {verdict.value}",
                                      {"checks": [c.to_dict() for c in unit]}))
        else:
            stages.append(StageResult("unit_tests", StageStatus.SKIPPED,
                                      "no slices or behavioural tests: declare them in "
                                      f"models/{model_name}/model.yaml"))
        metric_checks = [c for c in result.checks if c.kind is CheckKind.METRIC]
        verdict = roll_up(c.verdict for c in metric_checks)
        status = StageStatus.PASSED if verdict is Verdict.PASSED else StageStatus.FAILED
        stages.append(StageResult(
            "validation", status,
            "; ".join(c.message for c in metric_checks if c.verdict is not Verdict.PASSED)
            or f"{len(metric_checks)} metric thresholds met",
            {"metrics": dict(result.metrics), "checks": [c.to_dict() for c in metric_checks]}))
        if any(s.status is StageStatus.FAILED for s in stages):
            return PipelineResult(model_name, tuple(self._skip_rest(stages)), validation=result)

        try:
            version = self._register(model_name, model_uri, result)
            stages.append(StageResult("registration", StageStatus.PASSED,
                                      f"registered {model_name} {version}", {"version": version}))
        except MlopsActionsError as exc:
            stages.append(StageResult("registration", StageStatus.FAILED, str(exc)))
            return PipelineResult(model_name, tuple(self._skip_rest(stages)), validation=result)
        stages += self._deploy_stages(model_name, version)
        return PipelineResult(model_name, tuple(stages), version=version, validation=result)

    # ------------------------------------------------------------------ helpers
    def _model_yaml(self, model_name: str) -> Path:
        return self.repo_root / "models" / model_name / "model.yaml"

    def _spec(self, estimator: Any, frame: pd.DataFrame, label: str, model_name: str, test_data_path: str,
              validation_metrics: Mapping[str, float]) -> ModelSpec:
        thresholds = {metric_name(k): Threshold(threshold=float(v)) for k, v in validation_metrics.items()}
        declared = self._model_yaml(model_name)
        task = _task(estimator, frame[label])
        features = [c for c in frame.columns if c != label]
        if declared.is_file():
            base = load_model_yaml(declared)
            validation = ValidationSpec(thresholds={**base.validation.thresholds, **thresholds},
                                        slices=base.validation.slices,
                                        behavioural=base.validation.behavioural)
            task = base.task
        else:
            validation = ValidationSpec(thresholds=thresholds,
                                        slices=_auto_slices(frame, label, features, thresholds))
        return ModelSpec(registered_name=model_name, task=task,  # type: ignore[arg-type]
                         data=DataSpec(test=str(Path(test_data_path).resolve()), label=label),
                         validation=validation)

    def _tracking_uri(self) -> str:
        from mlops_actions.validation.registry_access import tracking_uri_for

        return self.tracking_uri or tracking_uri_for(self.repo_root)

    def _log_model(self, estimator: Any, frame: pd.DataFrame, label: str, spec: ModelSpec) -> str:
        """Log (not yet register) the model in a CI run; its URI is what gets validated and registered."""
        import mlflow
        from mlflow.models import infer_signature

        X = frame.drop(columns=[label])
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None:
            X = X.loc[:, list(names)]
        try:
            from mlflow.tracking import MlflowClient

            from mlops_actions.validation.registry_access import artifact_location_for

            uri = self._tracking_uri()
            client = MlflowClient(uri, uri)
            exp = client.get_experiment_by_name(CI_EXPERIMENT)
            if exp is None:
                location = artifact_location_for(uri, self.repo_root)
                as_uri = Path(location).as_uri() if location else None
                exp_id = client.create_experiment(CI_EXPERIMENT, artifact_location=as_uri)
            else:
                exp_id = exp.experiment_id
            mlflow.set_tracking_uri(uri)
            with mlflow.start_run(run_name=f"ci {spec.name}", experiment_id=exp_id):
                sig = infer_signature(X.head(100), estimator.predict(X.head(100)))
                info = mlflow.sklearn.log_model(estimator, name="model", signature=sig,
                                                pip_requirements=["scikit-learn", "mlflow"])
        except Exception as exc:
            from mlops_actions.errors import RegistryError

            raise RegistryError(f"cannot log {spec.name} to MLflow: {type(exc).__name__}: {exc}") from None
        return str(info.model_uri)

    def _register(self, model_name: str, model_uri: str, result: ValidationResult) -> str:
        metadata = {k: v for k, v in result.metrics.items() if v is not None}
        try:
            from mlops_actions.registry.mlflow_registry import (  # type: ignore[import-not-found,unused-ignore]
                get_registry,
            )
        except ImportError:
            return self._register_fallback(model_name, model_uri)
        registry = get_registry(self._tracking_uri(), repo_root=self.repo_root)
        return str(registry.register(model_name, model_uri, metadata=metadata, bump="minor").version)

    def _register_fallback(self, model_name: str, model_uri: str) -> str:
        """Plain MLflow registration with the next minor semver (until the registry adapter is merged)."""
        import mlflow
        from mlflow.tracking import MlflowClient

        from mlops_actions.config.specs import parse_semver
        from mlops_actions.errors import RegistryError
        from mlops_actions.registry.interface import SEMVER_TAG

        uri = self._tracking_uri()
        try:
            client = MlflowClient(uri, uri)
            found = client.search_model_versions(f"name = '{model_name}'")
            existing = [mv.tags.get(SEMVER_TAG) for mv in found]
            majors = sorted((parse_semver(v)[:3] for v in existing if v), reverse=True)
            semver = f"{majors[0][0]}.{majors[0][1] + 1}.0" if majors else "0.1.0"
            mlflow.set_registry_uri(uri)
            mv = mlflow.register_model(model_uri, model_name)
            client.set_model_version_tag(model_name, mv.version, SEMVER_TAG, semver)
        except Exception as exc:
            raise RegistryError(f"cannot register {model_name}: {type(exc).__name__}: {exc}") from None
        return semver

    def _deploy_stages(self, model_name: str, version: str) -> list[StageResult]:
        names = [("staging_deployment", "staging", "full"), ("staging_tests", "staging", "smoke"),
                 ("production_deployment", "production", self.production_strategy)]
        if self.deployer is None:
            return [StageResult(n, StageStatus.NOT_AVAILABLE,
                                "not available: no deployer configured in this build; promote with a PR "
                                "pinning the version in environments/<env>.yaml and `mlops-actions apply`")
                    for n, _, _ in names]
        out: list[StageResult] = []
        for n, env, strategy in names:
            if out and out[-1].status is not StageStatus.PASSED:
                out.append(StageResult(n, StageStatus.SKIPPED, f"skipped: {out[-1].name} did not pass"))
                continue
            try:
                ok, message = self.deployer(model_name, version, env, strategy)
            except Exception as exc:
                ok, message = False, f"{type(exc).__name__}: {exc}"
            out.append(StageResult(n, StageStatus.PASSED if ok else StageStatus.FAILED, message,
                                   {"environment": env, "strategy": strategy}))
        return out

    @staticmethod
    def _skip_rest(stages: list[StageResult]) -> list[StageResult]:
        order = ["unit_tests", "validation", "registration", "staging_deployment", "staging_tests",
                 "production_deployment"]
        done = {s.name for s in stages}
        failed = next((s.name for s in stages if s.status is StageStatus.FAILED), "an earlier stage")
        return stages + [StageResult(n, StageStatus.SKIPPED, f"skipped: {failed} failed")
                         for n in order if n not in done]
