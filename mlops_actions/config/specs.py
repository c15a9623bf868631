"""The two file kinds a repository declares, as strict pydantic v2 models.

``models/<name>/model.yaml``  -> :class:`ModelSpec`: how to judge a model.
``environments/<env>.yaml``   -> :class:`EnvironmentSpec`: desired state.

Strict everywhere: unknown keys are errors, versions are quoted strings, no
coercion of ``"5"`` to ``5`` or ``yes`` to ``True``. The rollout vocabulary
(steps, set_weight, pause, analysis, failure_limit) follows Argo Rollouts so the
local and Kubernetes targets mean the same thing.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from mlops_actions.errors import ConfigError

__all__ = [
    "ABAnalysisSpec",
    "ABTestStrategy",
    "AlertSpec",
    "AnalysisMetric",
    "AnalysisSpec",
    "BehaviouralTest",
    "BlueGreenStrategy",
    "CanaryStep",
    "CanaryStrategy",
    "Condition",
    "DataSpec",
    "DriftSpec",
    "EnvironmentSpec",
    "FreezeWindow",
    "FullStrategy",
    "KubernetesTarget",
    "LocalTarget",
    "ModelPin",
    "ModelSpec",
    "MonitoringSpec",
    "PredictionLogSpec",
    "PromotionRules",
    "SliceSpec",
    "Strategy",
    "Target",
    "Task",
    "Threshold",
    "duration_seconds",
    "parse_semver",
]

SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
# a GitHub login, optionally /team-slug: the login is then the organization
APPROVER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,38}(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$"


def parse_semver(value: str) -> tuple[int, int, int, str]:
    """``"1.2.3-rc.1"`` -> ``(1, 2, 3, "rc.1")``; raises ValueError when not semver 2.0."""
    m = SEMVER_RE.match(value)
    if not m:
        raise ValueError(
            f"{value!r} is not a semantic version: expected MAJOR.MINOR.PATCH such as \"1.2.0\""
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) or ""


def _check_semver(value: str) -> str:
    parse_semver(value)
    return value


def duration_seconds(value: str) -> float:
    """``"30s"`` -> 30.0; units ms, s, m, h, d."""
    m = DURATION_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a duration: expected a number and a unit, e.g. 30s, 5m, 1h")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def _check_duration(value: str) -> str:
    duration_seconds(value)
    return value


Version = Annotated[str, AfterValidator(_check_semver), Field(
    description='Semantic version, always quoted: "1.2.0"', examples=["1.2.0"])]
Duration = Annotated[str, AfterValidator(_check_duration), Field(
    pattern=DURATION_RE.pattern, description="A number and a unit: ms, s, m, h, d", examples=["30s"])]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Approver = Annotated[str, Field(
    pattern=APPROVER_PATTERN,
    description="A GitHub login, or org/team-slug for the members of a team",
    examples=["alice", "octo-org/ml-leads"])]
Scalar = str | int | float | bool


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- model.yaml

Task = Literal["binary_classification", "multiclass_classification", "regression"]


class Threshold(_Spec):
    """MLflow ``MetricThreshold`` semantics.

    ``threshold`` is an absolute bound; ``min_absolute_change`` and
    ``min_relative_change`` compare with the baseline (the version live in the
    target environment). ``greater_is_better`` defaults from the metric's kind.
    """

    threshold: float | None = None
    min_absolute_change: float | None = Field(None, ge=0)
    min_relative_change: float | None = Field(None, ge=0)
    greater_is_better: bool | None = None
    min_change_on: Literal["estimate", "ci_bound"] = Field(
        "estimate",
        description="what min_absolute_change / min_relative_change judge (validation only): "
        "`estimate`, the change measured on the test set (MLflow's rule), or `ci_bound`, the "
        "worse end of its 95% confidence interval (lower bound when greater is better), so a "
        "change that could be noise does not pass")

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if self.threshold is None and self.min_absolute_change is None \
                and self.min_relative_change is None:
            raise ValueError(
                "a threshold needs at least one of threshold, min_absolute_change, "
                "min_relative_change"
            )
        if self.min_change_on == "ci_bound" and self.min_absolute_change is None \
                and self.min_relative_change is None:
            raise ValueError(
                "min_change_on: ci_bound judges a change against the baseline, but this threshold "
                "has no min_absolute_change or min_relative_change; add one or drop min_change_on"
            )
        return self


Op = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null"]


class Condition(_Spec):
    """One condition of a slice; conditions of a slice are combined with AND."""

    column: str = Field(min_length=1)
    op: Op
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("is null", "is not null"):
            if self.value is not None:
                raise ValueError(f"op {self.op!r} takes no value")
        elif self.op in ("in", "not in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op!r} needs a non-empty list value, e.g. [a, b]")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a single value")
        return self


class SliceSpec(_Spec):
    """A named subset of the test data with thresholds of its own."""

    name: Name
    where: list[Condition] = Field(min_length=1)
    min_rows: int = Field(30, ge=1, description="fewer rows than this: inconclusive, not passed")
    thresholds: dict[str, Threshold] = Field(default_factory=dict)


class _Behavioural(_Spec):
    name: str | None = None


class DeterminismTest(_Behavioural):
    type: Literal["determinism"]
    rows: int = Field(200, ge=1)


class OutputSchemaTest(_Behavioural):
    type: Literal["output_schema"]


class FiniteOutputsTest(_Behavioural):
    type: Literal["finite_outputs"]


class OutputRangeTest(_Behavioural):
    type: Literal["output_range"]
    min: float | None = None
    max: float | None = None


class AllowedClassesTest(_Behavioural):
    type: Literal["allowed_classes"]
    classes: list[Scalar] = Field(min_length=1)


class InvarianceTest(_Behavioural):
    """Perturbing ``column`` by up to +/- ``delta`` changes at most ``max_changed`` of predictions."""

    type: Literal["invariance"]
    column: str
    delta: float = Field(gt=0)
    max_changed: float = Field(0.05, ge=0, le=1)
    tolerance: float = Field(0.0, ge=0, description="regression: change larger than this counts")


class DirectionalTest(_Behavioural):
    """Increasing ``column`` by ``delta`` does not move the score the wrong way."""

    type: Literal["directional"]
    column: str
    delta: float = Field(gt=0)
    direction: Literal["increasing", "decreasing"]
    max_violations: float = Field(0.0, ge=0, le=1)


class LatencyTest(_Behavioural):
    type: Literal["latency"]
    p95_ms: float = Field(gt=0, description="p95 per-row latency budget in milliseconds")
    rows: int = Field(200, ge=1)


BehaviouralTest = Annotated[
    DeterminismTest | OutputSchemaTest | FiniteOutputsTest | OutputRangeTest
    | AllowedClassesTest | InvarianceTest | DirectionalTest | LatencyTest,
    Field(discriminator="type"),
]


class DataSpec(_Spec):
    """Paths are relative to the model.yaml's directory; CSV or Parquet."""

    test: str = Field(min_length=1)
    label: str = Field(min_length=1)
    features: list[str] | None = Field(None, description="default: every column but the label")
    reference: str | None = Field(None, description="drift reference, e.g. the training data")


class ValidationSpec(_Spec):
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    slices: list[SliceSpec] = Field(default_factory=list)
    behavioural: list[BehaviouralTest] = Field(default_factory=list)


class DriftSpec(_Spec):
    """Evidently-compatible defaults; see docs/monitoring.md for what differs."""

    method: Literal["auto", "ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"] = "auto"
    threshold: float | None = Field(None, gt=0, description="default per method: p<0.05 or distance>=0.1")
    drift_share: float = Field(0.5, gt=0, le=1)
    correction: Literal["none", "bonferroni", "benjamini_hochberg"] = "none"
    features: list[str] | None = None


class SlackAlert(_Spec):
    type: Literal["slack"]
    webhook_url_env: str = "SLACK_WEBHOOK_URL"


class PagerDutyAlert(_Spec):
    type: Literal["pagerduty"]
    routing_key_env: str = "PAGERDUTY_ROUTING_KEY"
    severity: Literal["critical", "error", "warning", "info"] = "error"


class WebhookAlert(_Spec):
    type: Literal["webhook"]
    url: str | None = Field(None, description="the receiver (default: the variable url_env names)")
    url_env: str = Field("MLOPS_ALERT_WEBHOOK_URL", description="variable holding the receiver's URL")
    secret_env: str | None = Field(None, description="variable holding the HMAC-SHA256 signing secret "
                                   "(default: MLOPS_ALERT_WEBHOOK_SECRET when it is set)")


class GitHubIssueAlert(_Spec):
    type: Literal["github_issue"]
    labels: list[str] = Field(default_factory=lambda: ["mlops-alert"])


AlertSpec = Annotated[
    SlackAlert | PagerDutyAlert | WebhookAlert | GitHubIssueAlert, Field(discriminator="type")
]


ABMetricName = Literal["accuracy", "error_rate", "latency_ms"]


def _ab_primary() -> list[ABMetricName]:
    return ["accuracy"]


def _ab_guardrails() -> list[ABMetricName]:
    return ["latency_ms", "error_rate"]


class ABAnalysisSpec(_Spec):
    """How ``monitor`` and ``conclude`` judge an A/B test (docs/monitoring.md, "A/B tests")."""

    primary: list[ABMetricName] = Field(
        default_factory=_ab_primary, min_length=1,
        description="the metrics that decide the winner; with several, their p-values are corrected "
        "together (correction)")
    guardrails: list[ABMetricName] = Field(
        default_factory=_ab_guardrails,
        description="metrics B must not make worse, each judged on its own at alpha (not corrected)")
    sequential: bool = Field(
        True, description="always-valid p-values and CIs (mSPRT): the scheduled monitor looks again "
        "and again; false: fixed horizon (look once, at the planned sample size)")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level; CIs are at 1 - alpha")
    correction: Literal["holm", "benjamini_hochberg"] = "holm"
    min_rows: int = Field(30, ge=2, description="fewer usable rows in a variant: inconclusive")
    minimum_detectable_effect: float | None = Field(
        None, gt=0, description="smallest difference worth detecting, in the primary metric's units "
        "(0.02 = 2 points of accuracy): the sample size estimate uses it instead of the observed effect")
    power: float = Field(0.8, gt=0, lt=1, description="power of the sample size estimate")

    @model_validator(mode="after")
    def _apart(self) -> ABAnalysisSpec:
        both = sorted(set(self.primary) & set(self.guardrails))
        if both:
            raise ValueError(f"{', '.join(both)} is both a primary metric and a guardrail")
        if len(set(self.primary)) != len(self.primary) or len(set(self.guardrails)) != len(self.guardrails):
            raise ValueError("list each metric once")
        return self


class MonitoringSpec(_Spec):
    window: Duration = "1h"
    min_samples: int = Field(100, ge=1)
    performance: dict[str, Threshold] = Field(default_factory=dict)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    prediction_drift_threshold: float = Field(0.1, gt=0)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_latency_p95_ms: float | None = Field(None, gt=0)
    alerts: list[AlertSpec] = Field(default_factory=list)
    ab_test: ABAnalysisSpec = Field(
        default_factory=ABAnalysisSpec,
        description="how monitor and conclude judge an A/B test of this model (strategy ab_test)")


class ModelSpec(_Spec):
    """``models/<dir>/model.yaml``.

    The directory is the model's key: environments pin it, the gateway serves it at
    ``/models/<dir>/...`` and logs its predictions under it. ``registered_name`` is its
    name in MLflow (default: the directory), filled in by the loader; ``name`` is the
    deprecated spelling kept for existing files, and must equal the directory.
    """

    registered_name: Name | None = Field(
        None, description="registered model name in MLflow; default: the directory name")
    legacy_name: Name | None = Field(
        None, alias="name", json_schema_extra={"deprecated": True},
        description="deprecated: must equal the directory name; write registered_name for another "
        "MLflow name")
    task: Task
    description: str = ""
    owners: list[str] = Field(default_factory=list)
    data: DataSpec
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)

    @property
    def name(self) -> str:
        """The registered (MLflow) name every command uses: ``registered_name``, else the
        deprecated ``name``; the loader fills ``registered_name`` from the directory."""
        return self.registered_name or self.legacy_name or ""

    def named(self, directory: str) -> ModelSpec:
        """This spec with ``registered_name`` resolved for ``models/<directory>/``."""
        if self.registered_name is not None or not directory:
            return self
        return self.model_copy(update={"registered_name": self.legacy_name or directory})


# --------------------------------------------------------------------------- environments/*.yaml


class LocalTarget(_Spec):
    """The gateway (``mlops-actions serve``) on one machine."""

    type: Literal["local"]
    url: str = "http://127.0.0.1:8080"
    token_env: str = Field("MLOPS_GATEWAY_TOKEN", description="env var holding the admin token")


class KubernetesTarget(_Spec):
    type: Literal["kubernetes"]
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
    mode: Literal["argo-rollouts", "gateway-api"] = "argo-rollouts"
    image: str = "ghcr.io/mlops-actions/gateway:0.1.0"
    context: str | None = None
    replicas: int = Field(2, ge=1)
    prometheus_url: str = "http://prometheus.monitoring.svc:9090"
    resources: dict[str, dict[str, str | int | float]] = Field(default_factory=dict)
    gateway: dict[str, str] = Field(default_factory=dict, description="Gateway API parentRef")
    prune: bool = False


Target = Annotated[LocalTarget | KubernetesTarget, Field(discriminator="type")]


class FreezeWindow(_Spec):
    start: str = Field(description="ISO 8601 date-time, quoted")
    end: str
    reason: str = ""


class PromotionRules(_Spec):
    from_: str | None = Field(None, alias="from", description="environment a version must pass first")
    required_approvals: int = Field(0, ge=0)
    require_staging_check: bool = True
    allow_downgrade: bool = False
    freeze: list[FreezeWindow] = Field(default_factory=list)
    approvers: list[Approver] = Field(
        default_factory=list,
        description="whose approvals count (logins, org/team slugs); empty: anyone with write access")

    @model_validator(mode="after")
    def _approvers_need_approvals(self) -> PromotionRules:
        if self.approvers and self.required_approvals == 0:
            raise ValueError("approvers is set but required_approvals is 0, so no approval is "
                             "asked for: set required_approvals to 1 or more")
        return self


AnalysisMetricName = Literal[
    "error_rate", "latency_p95_ms", "latency_p99_ms", "accuracy", "prediction_drift"
]


class AnalysisMetric(_Spec):
    """A measurement and its success condition (Argo Rollouts' successCondition)."""

    name: AnalysisMetricName
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bound(self) -> AnalysisMetric:
        if self.max is None and self.min is None:
            raise ValueError(f"analysis metric {self.name!r} needs max or min")
        return self


class AnalysisSpec(_Spec):
    """Argo Rollouts' AnalysisRun semantics: interval, count, failure_limit..."""

    interval: Duration = "30s"
    count: int = Field(1, ge=1, description="measurements per analysis step")
    failure_limit: int = Field(0, ge=0)
    inconclusive_limit: int = Field(0, ge=0)
    consecutive_error_limit: int = Field(4, ge=0)
    min_samples: int = Field(20, ge=1, description="fewer requests: inconclusive")
    metrics: list[AnalysisMetric] = Field(min_length=1)
    compare_to_stable: bool = Field(
        False, description="also judge the candidate against the stable version on the same window "
        "(Kayenta's model: Mann-Whitney / Hodges-Lehmann on latency, proportion tests on error rate and "
        "accuracy, weighted score); a significant regression fails the measurement, the thresholds "
        "above stay as guardrails")


class Pause(_Spec):
    duration: Duration | None = Field(None, description="absent: wait until promoted")


class CanaryStep(_Spec):
    """Exactly one of set_weight, pause, analysis."""

    set_weight: int | None = Field(None, ge=0, le=100)
    pause: Pause | None = None
    analysis: AnalysisSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CanaryStep:
        given = [k for k in ("set_weight", "pause", "analysis") if getattr(self, k) is not None]
        if len(given) != 1:
            # its own error type: the loader adds its hint by type, never by the message's text
            raise PydanticCustomError("one_action_per_step",
                                      "a step has exactly one of set_weight, pause, analysis")
        return self


class FullStrategy(_Spec):
    type: Literal["full"]


class CanaryStrategy(_Spec):
    type: Literal["canary"]
    steps: list[CanaryStep] = Field(min_length=1)
    analysis: AnalysisSpec | None = Field(None, description="background analysis during the steps")
    mirror: bool = Field(False, description="also mirror stable traffic to the canary")


class BlueGreenStrategy(_Spec):
    type: Literal["blue_green"]
    pre_promotion_analysis: AnalysisSpec | None = None
    post_promotion_analysis: AnalysisSpec | None = None
    auto_promote: bool = True
    scale_down_delay: Duration = "30s"
    preview_header: str = "X-Preview"


class ABTestStrategy(_Spec):
    type: Literal["ab_test"]
    version_b: Version
    traffic_split: float = Field(0.5, gt=0, lt=1, description="share of traffic to version_b")
    sticky_header: str = Field("X-User-Id", description="same key, same variant, always")


Strategy = Annotated[
    FullStrategy | CanaryStrategy | BlueGreenStrategy | ABTestStrategy, Field(discriminator="type")
]


class PredictionLogSpec(_Spec):
    """Which of a model's requests the gateway writes to the prediction store (what monitoring,
    drift and the store-based canary analyses read). docs/monitoring.md says what sampling costs."""

    enabled: bool = Field(True, description="false: log none of this model's requests")
    sample_rate: float = Field(
        1.0, description="share of requests logged, in (0, 1]; chosen by a hash of the request id, so "
        "a request is always in or always out and its late label joins its row",
        json_schema_extra={"exclusiveMinimum": 0, "maximum": 1})  # the validator words the error

    @model_validator(mode="after")
    def _rate(self) -> PredictionLogSpec:
        if not 0 < self.sample_rate <= 1:
            raise ValueError(f"sample_rate {self.sample_rate:g} is not in (0, 1]: 1 logs every request, "
                             "0.1 one in ten; to log nothing set enabled: false")
        return self

    def rate(self) -> float:
        """The share of requests to log; 0.0 when logging is off."""
        return self.sample_rate if self.enabled else 0.0


class ModelPin(_Spec):
    version: Version
    strategy: Strategy = Field(default_factory=lambda: FullStrategy(type="full"))
    prediction_log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)
    depends_on: list[Name] = Field(
        default_factory=list,
        description="models of this environment that must be Healthy before this one is rolled out "
        "(keys under models:); apply goes in waves, like Argo CD's sync waves")


class EnvironmentSpec(_Spec):
    """``environments/<env>.yaml``; keys of ``models`` are directories under ``models/``."""

    name: Name | None = Field(None, description="default: the file name without .yaml")
    target: Target = Field(default_factory=lambda: LocalTarget(type="local"))
    promotion: PromotionRules = Field(default_factory=PromotionRules)
    models: dict[str, ModelPin] = Field(default_factory=dict)

    def pin(self, model: str, env_name: str) -> ModelPin:
        """``models[model]``, or the error that names the pinned models (commands and targets)."""
        if model not in self.models:
            raise ConfigError(f"model {model!r} is not pinned in environment {env_name!r}",
                              hint=f"pinned models: {', '.join(sorted(self.models)) or 'none'}")
        return self.models[model]
