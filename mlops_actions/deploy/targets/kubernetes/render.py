"""Pure rendering: an environment file's models -> Kubernetes manifests (dicts).

Two modes (``target.mode``):

``argo-rollouts`` (default)
    per model: a stable Service, a canary or preview Service as the strategy
    needs, an Argo Rollouts ``Rollout`` whose strategy is translated from the
    environment file, one ``AnalysisTemplate`` per analysis (Prometheus queries
    on the metrics of :mod:`mlops_actions.monitoring.metrics`) and, when
    ``target.gateway`` names a Gateway, an ``HTTPRoute`` that the Argo Rollouts
    Gateway API plugin (``argoproj-labs/gatewayAPI``) re-weights during the
    rollout. The plugin is the traffic router: A/B (``setHeaderRoute``) and
    mirroring need it.
``gateway-api``
    no Argo Rollouts: one Deployment and Service per live version and an
    ``HTTPRoute`` whose backend weights split the traffic.

Everything here is a function of its arguments: no cluster, no registry. A
strategy that the chosen mode cannot express is a :class:`ConfigError` naming
the environment file, line and column.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

import yaml

from mlops_actions.config.specs import (
    ABTestStrategy,
    AnalysisMetric,
    AnalysisSpec,
    BlueGreenStrategy,
    CanaryStrategy,
    EnvironmentSpec,
    FullStrategy,
    KubernetesTarget,
    ModelPin,
    ModelSpec,
    duration_seconds,
)
from mlops_actions.deploy.targets.kubernetes.interface import Manifest, ResolvedVersion
from mlops_actions.errors import ConfigError, Location

__all__ = [
    "CONTAINER_PORT",
    "GATEWAY_PLUGIN",
    "LABEL_ENVIRONMENT",
    "LABEL_MODEL",
    "MANAGED_BY",
    "AnalysisQuery",
    "RenderContext",
    "ab_environment",
    "alias_for_semver",
    "analysis_query",
    "check_shared_namespace",
    "dns_label",
    "locate",
    "manifest_filename",
    "quantity_value",
    "render_environment",
    "render_model",
    "selector_for_environment",
    "version_slug",
]

#: Argo Rollouts traffic-router plugin used for weights, header routes and mirroring.
GATEWAY_PLUGIN = "argoproj-labs/gatewayAPI"
CONTAINER_PORT = 8080
SERVICE_PORT = 80
MANAGED_BY = "mlops-actions"
LABEL_ENVIRONMENT = "mlops-actions.io/environment"
LABEL_MODEL = "mlops-actions.io/model"
ANNOTATION_SOURCE = "mlops-actions.io/source"
ANNOTATION_VERSION = "mlops-actions.io/model-version"
#: Secret (optional) whose keys become the container's environment: MLFLOW_TRACKING_URI, credentials.
MLFLOW_SECRET = "mlops-actions-mlflow"  # noqa: S105 - a Secret name, not a secret
#: The serving image's probe endpoints (the gateway of mlops_actions.serving).
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
#: Header that sends a request to variant B of an A/B test (set by the edge from the sticky key).
AB_VARIANT_HEADER = "X-Mlops-Variant"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # RFC 1035 label: what a Service name must be
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # namespaces
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_RESOURCE_SECTIONS = ("requests", "limits")
_GATEWAY_KEYS = ("name", "namespace", "sectionName", "group", "kind")
#: Longest suffix we append to a model's base name on a Service ("-preview").
_LONGEST_SERVICE_SUFFIX = len("-preview")


# --------------------------------------------------------------------------- locations


@functools.lru_cache(maxsize=32)
def _yaml_tree(path: str) -> yaml.Node | None:
    try:
        return yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def locate(source: str | None, keys: Sequence[str | int]) -> Location | None:
    """``file:line:col`` of the YAML node at ``keys`` (the deepest one found), or just the file."""
    if source is None:
        return None
    node = _yaml_tree(source)
    found: yaml.Node | None = None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            if nxt is None:
                break
            found, node = nxt[0], nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            found = node = node.value[key]
        else:
            break
    if found is None:
        return Location(source)
    return Location(source, found.start_mark.line + 1, found.start_mark.column + 1)


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class RenderContext:
    """Where the rendered objects come from, for labels and error messages."""

    env_name: str
    env: EnvironmentSpec
    target: KubernetesTarget
    source: str | None = None  # path of environments/<env>.yaml, for error locations
    display_source: str | None = None  # the same, relative to the repository, for annotations

    def error(self, message: str, keys: Sequence[str | int], hint: str | None = None) -> ConfigError:
        path = ".".join(str(k) for k in keys)
        return ConfigError(f"{path}: {message}", hint=hint, location=locate(self.source, keys))


def dns_label(value: str) -> str:
    """A model directory name as a DNS label: lower case, ``_`` and ``.`` become ``-``."""
    return re.sub(r"[_.]", "-", value.lower())


def _label_value(value: str) -> str:
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "_", value)[:63].strip("-_.")
    return cleaned


def alias_for_semver(version: str) -> str:
    """The MLflow alias ``--no-registry`` renders for a semver: ``"1.2.0"`` -> ``"v1-2-0"``.

    MLflow aliases allow letters, digits, ``_`` and ``-`` and refuse ``v<digits>``,
    so dots become ``-``.
    """
    return "v" + re.sub(r"[^A-Za-z0-9_-]", "-", version)


def manifest_filename(manifest: Manifest) -> str:
    """Stable file name for one object: ``<namespace>/<kind>-<name>.yaml`` (kind lower case)."""
    meta = manifest["metadata"]
    return f"{meta['namespace']}/{manifest['kind'].lower()}-{meta['name']}.yaml"


def selector_for_environment(env_name: str) -> str:
    """Label selector of everything we manage for one environment (used by prune)."""
    return f"app.kubernetes.io/managed-by={MANAGED_BY},{LABEL_ENVIRONMENT}={_label_value(env_name)}"


# --------------------------------------------------------------------------- validation


def _check_target(ctx: RenderContext) -> None:
    t = ctx.target
    if not _DNS1123_LABEL.match(t.namespace) or len(t.namespace) > 63:
        raise ctx.error(f"namespace {t.namespace!r} is not a valid DNS label",
                        ["target", "namespace"],
                        hint="use lower-case letters, digits and '-', at most 63 characters")
    for section, quantities in t.resources.items():
        if section not in _RESOURCE_SECTIONS:
            raise ctx.error(f"unknown resources section {section!r}: expected one of "
                            f"{', '.join(_RESOURCE_SECTIONS)}", ["target", "resources", section])
        for name, qty in quantities.items():
            if isinstance(qty, bool) or not (isinstance(qty, int | float) or _QUANTITY.match(str(qty))):
                raise ctx.error(
                    f"resource quantity {qty!r} for {name} does not parse",
                    ["target", "resources", section, name],
                    hint='write a Kubernetes quantity such as "500m", "0.5", "256Mi", "1Gi"')
    requests, limits = t.resources.get("requests", {}), t.resources.get("limits", {})
    for name in sorted(set(requests) & set(limits)):
        if quantity_value(requests[name]) > quantity_value(limits[name]):
            raise ctx.error(f"requests.{name} {requests[name]!r} is more than limits.{name} {limits[name]!r}",
                            ["target", "resources", "requests", name],
                            hint="the API server refuses a request above its limit; lower the request")
    for key, value in t.gateway.items():
        if key not in _GATEWAY_KEYS:
            raise ctx.error(f"unknown gateway key {key!r}: expected {', '.join(_GATEWAY_KEYS)}",
                            ["target", "gateway", key])
        if key == "namespace" and not (_DNS1123_LABEL.match(value) and len(value) <= 63):
            raise ctx.error(f"gateway namespace {value!r} is not a valid DNS label",
                            ["target", "gateway", key])
        if key == "name" and not (_DNS_SUBDOMAIN.match(value) and len(value) <= 253):
            raise ctx.error(f"gateway name {value!r} is not a valid object name (DNS subdomain)",
                            ["target", "gateway", key])
    if t.gateway and "name" not in t.gateway:
        raise ctx.error("gateway needs a name (the Gateway's metadata.name)", ["target", "gateway"])
    if not t.image or any(c.isspace() for c in t.image):
        raise ctx.error(f"image {t.image!r} is not an image reference", ["target", "image"])


_SUFFIX = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "E": 1e18}


def quantity_value(quantity: str | int | float) -> float:
    """A Kubernetes quantity as a number: ``"500m"`` -> 0.5, ``"1Gi"`` -> 1073741824.0."""
    if isinstance(quantity, int | float):
        return float(quantity)
    m = re.match(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$", quantity)
    if m is None:
        raise ValueError(f"not a quantity: {quantity!r}")
    number, suffix = m.group(1), m.group(2)
    if suffix in _SUFFIX:
        return float(number) * _SUFFIX[suffix]
    return float(quantity)  # decimal exponent: "1e3"


def _base_name(ctx: RenderContext, key: str) -> str:
    base = dns_label(key)
    if not _DNS_LABEL.match(base) or len(base) + _LONGEST_SERVICE_SUFFIX > 63:
        raise ctx.error(
            f"model {key!r} gives the object name {base!r}, which is not a DNS label "
            f"(RFC 1035: starts with a letter, letters/digits/'-', at most {63 - _LONGEST_SERVICE_SUFFIX} "
            "characters here so that '-preview' fits)",
            ["models", key], hint="rename the model directory, e.g. 'churn-model'")
    return base


def _check_names(ctx: RenderContext, key: str, manifests: list[Manifest]) -> None:
    for m in manifests:
        name = m["metadata"]["name"]
        pattern, limit = (_DNS_LABEL, 63) if m["kind"] == "Service" else (_DNS_SUBDOMAIN, 253)
        if not pattern.match(name) or len(name) > limit:
            raise ctx.error(f"{m['kind']} name {name!r} is not valid (max {limit} characters, "
                            "lower-case letters, digits and '-')", ["models", key])


def _seconds(ctx: RenderContext, value: str, keys: Sequence[str | int]) -> int:
    seconds = duration_seconds(value)
    if seconds != int(seconds):
        raise ctx.error(f"duration {value!r} is not a whole number of seconds, which Argo Rollouts needs",
                        keys, hint="use e.g. 30s, 5m")
    return int(seconds)


# --------------------------------------------------------------------------- labels and pods


@dataclass(frozen=True)
class _Model:
    key: str
    base: str
    spec: ModelSpec
    pin: ModelPin
    resolved: ResolvedVersion
    resolved_b: ResolvedVersion | None = None


def _labels(ctx: RenderContext, model: _Model, component: str, version: str | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": model.base,
        "app.kubernetes.io/instance": _label_value(f"{model.base}-{ctx.env_name}"),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "mlops-actions",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_ENVIRONMENT: _label_value(ctx.env_name),
        LABEL_MODEL: _label_value(model.key),
    }
    if version is not None:
        labels["app.kubernetes.io/version"] = _label_value(version)
    return labels


def _selector(ctx: RenderContext, model: _Model) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": model.base,
        "app.kubernetes.io/instance": _label_value(f"{model.base}-{ctx.env_name}"),
    }


def _meta(ctx: RenderContext, model: _Model, name: str, component: str,
          version: str | None = None) -> dict[str, Any]:
    annotations = {ANNOTATION_VERSION: model.resolved.version}
    shown = ctx.display_source or ctx.source
    if shown is not None:
        annotations[ANNOTATION_SOURCE] = Path(shown).as_posix()
    return {"name": name, "namespace": ctx.target.namespace,
            "labels": _labels(ctx, model, component, version), "annotations": annotations}


def _resources(target: KubernetesTarget) -> dict[str, dict[str, str | int | float]]:
    return {section: dict(target.resources[section]) for section in _RESOURCE_SECTIONS
            if section in target.resources}


def _pod_template(ctx: RenderContext, model: _Model, resolved: ResolvedVersion,
                  extra_labels: Mapping[str, str] | None = None,
                  extra_env: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    labels = {**_selector(ctx, model), "app.kubernetes.io/version": _label_value(resolved.version),
              "app.kubernetes.io/component": "model-server", **(extra_labels or {})}
    container: dict[str, Any] = {
        "name": "model-server",
        "image": ctx.target.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "MODEL_URI", "value": resolved.model_uri},
            {"name": "MLOPS_MODEL", "value": model.key},
            {"name": "MLOPS_MODEL_NAME", "value": resolved.name},
            {"name": "MLOPS_MODEL_VERSION", "value": resolved.version},
            {"name": "MLOPS_ENVIRONMENT", "value": ctx.env_name},
            {"name": "PORT", "value": str(CONTAINER_PORT)},
            *(dict(e) for e in extra_env),
        ],
        "envFrom": [{"secretRef": {"name": MLFLOW_SECRET, "optional": True}}],
        "startupProbe": {"httpGet": {"path": LIVENESS_PATH, "port": "http"},
                         "periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {"httpGet": {"path": LIVENESS_PATH, "port": "http"},
                          "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": READINESS_PATH, "port": "http"},
                           "periodSeconds": 5, "failureThreshold": 3},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    resources = _resources(ctx.target)
    if resources:
        container["resources"] = resources
    return {
        "metadata": {"labels": labels,
                     "annotations": {"prometheus.io/scrape": "true",
                                     "prometheus.io/port": str(CONTAINER_PORT),
                                     "prometheus.io/path": "/metrics"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
        },
    }


def _service(ctx: RenderContext, model: _Model, name: str, role: str,
             selector: Mapping[str, str] | None = None) -> Manifest:
    meta = _meta(ctx, model, name, "model-server")
    meta["labels"]["mlops-actions.io/service-role"] = role
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": meta,
        "spec": {"type": "ClusterIP", "selector": dict(selector or _selector(ctx, model)),
                 "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]},
    }


def _parent_refs(ctx: RenderContext) -> list[dict[str, str]]:
    return [dict(sorted(ctx.target.gateway.items()))]


def _backend(service: str, weight: int) -> dict[str, Any]:
    return {"name": service, "port": SERVICE_PORT, "weight": weight}


def _http_route(ctx: RenderContext, model: _Model, rules: list[dict[str, Any]]) -> Manifest:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": _meta(ctx, model, model.base, "routing"),
        "spec": {"parentRefs": _parent_refs(ctx), "rules": rules},
    }


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class AnalysisQuery:
    """One Prometheus query and its Argo success/failure conditions."""

    metric: str  # Argo metric name
    query: str
    success: str
    failure: str


def _selector_promql() -> str:
    return '{model="{{args.model}}",version="{{args.version}}",environment="{{args.environment}}"}'


def analysis_query(metric: AnalysisMetric, spec: AnalysisSpec) -> AnalysisQuery:
    """PromQL on the metrics of ``mlops_actions.monitoring.metrics`` for one analysis metric.

    Request-based queries return nothing while fewer than ``min_samples`` requests
    were seen in the window, and then neither condition holds: Argo counts the
    measurement as Inconclusive, like the local gateway does.
    """
    window = f"{max(60, int(duration_seconds(spec.interval)))}s"
    sel = _selector_promql()
    enough = f"sum(increase(mlops_requests_total{sel}[{window}])) >= {spec.min_samples}"
    match metric.name:
        case "error_rate":
            value = (f"(sum(rate(mlops_request_errors_total{sel}[{window}])) or on() vector(0))"
                     f" / sum(rate(mlops_requests_total{sel}[{window}]))")
            query = f"({value}) and on() ({enough})"
        case "latency_p95_ms" | "latency_p99_ms":
            q = "0.95" if metric.name == "latency_p95_ms" else "0.99"
            value = (f"histogram_quantile({q}, sum by (le) "
                     f"(rate(mlops_request_duration_seconds_bucket{sel}[{window}]))) * 1000")
            query = f"({value}) and on() ({enough})"
        case "accuracy":
            query = f"max(mlops_model_accuracy{sel})"
        case "prediction_drift":
            query = f"max(mlops_prediction_drift_score{sel})"
        case _:
            assert_never(metric.name)
    ok, bad = [], []
    if metric.max is not None:
        ok.append(f"result[0] <= {metric.max!r}")
        bad.append(f"result[0] > {metric.max!r}")
    if metric.min is not None:
        ok.append(f"result[0] >= {metric.min!r}")
        bad.append(f"result[0] < {metric.min!r}")
    success = "len(result) > 0 && " + " && ".join(ok)
    failure = "len(result) > 0 && (" + " || ".join(bad) + ")"
    return AnalysisQuery(metric.name.replace("_", "-"), query, success, failure)


def _analysis_template(ctx: RenderContext, model: _Model, name: str, spec: AnalysisSpec,
                       keys: Sequence[str | int]) -> Manifest:
    interval = _seconds(ctx, spec.interval, [*keys, "interval"])
    metrics = []
    for m in spec.metrics:
        q = analysis_query(m, spec)
        metrics.append({
            "name": q.metric,
            "interval": f"{interval}s",
            "count": spec.count,
            "failureLimit": spec.failure_limit,
            "inconclusiveLimit": spec.inconclusive_limit,
            "consecutiveErrorLimit": spec.consecutive_error_limit,
            "successCondition": q.success,
            "failureCondition": q.failure,
            "provider": {"prometheus": {"address": ctx.target.prometheus_url, "query": q.query}},
        })
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": _meta(ctx, model, name, "analysis"),
        "spec": {"args": [{"name": "model"}, {"name": "version"}, {"name": "environment"}],
                 "metrics": metrics},
    }


def _analysis_ref(ctx: RenderContext, model: _Model, template: str, version: str) -> dict[str, Any]:
    return {"templates": [{"templateName": template}],
            "args": [{"name": "model", "value": model.key}, {"name": "version", "value": version},
                     {"name": "environment", "value": ctx.env_name}]}


# --------------------------------------------------------------------------- Argo Rollouts


def _rollout(ctx: RenderContext, model: _Model, strategy: dict[str, Any],
             extra_env: Sequence[Mapping[str, str]] = ()) -> Manifest:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": _meta(ctx, model, model.base, "model-server", model.resolved.version),
        "spec": {
            "replicas": ctx.target.replicas,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 600,
            "progressDeadlineAbort": True,  # stuck (e.g. crash-looping pods): back to stable
            "selector": {"matchLabels": _selector(ctx, model)},
            "template": _pod_template(ctx, model, model.resolved, extra_env=extra_env),
            "strategy": strategy,
        },
    }


def _traffic_routing(ctx: RenderContext, model: _Model, managed: Sequence[str] = ()) -> dict[str, Any]:
    routing: dict[str, Any] = {"plugins": {GATEWAY_PLUGIN: {"httpRoute": model.base,
                                                            "namespace": ctx.target.namespace}}}
    if managed:
        routing["managedRoutes"] = [{"name": n} for n in managed]
    return routing


def _canary_route(ctx: RenderContext, model: _Model) -> Manifest:
    return _http_route(ctx, model, [{"backendRefs": [_backend(model.base, 100),
                                                     _backend(f"{model.base}-canary", 0)]}])


def _argo_full(ctx: RenderContext, model: _Model, strategy: FullStrategy,
               keys: Sequence[str | int]) -> list[Manifest]:
    out = [_service(ctx, model, model.base, "stable"),
           _rollout(ctx, model, {"canary": {"steps": [{"setWeight": 100}]}})]
    if ctx.target.gateway:
        out.append(_http_route(ctx, model, [{"backendRefs": [_backend(model.base, 100)]}]))
    return out


def _argo_canary(ctx: RenderContext, model: _Model, strategy: CanaryStrategy,
                 keys: Sequence[str | int]) -> list[Manifest]:
    version = model.resolved.version
    out: list[Manifest] = []
    steps: list[dict[str, Any]] = []
    managed: list[str] = []
    if strategy.mirror:
        if not ctx.target.gateway:
            raise ctx.error("mirror needs a traffic router, and target.gateway is not set",
                            [*keys, "mirror"],
                            hint="set target.gateway (the Gateway the model's HTTPRoute attaches to) "
                                 "or remove mirror")
        managed.append("mirror")
        steps.append({"setMirrorRoute": {"name": "mirror", "percentage": 100,
                                         "match": [{"path": {"prefix": "/"}}]}})
    for i, step in enumerate(strategy.steps):
        where = [*keys, "steps", i]
        if step.set_weight is not None:
            steps.append({"setWeight": step.set_weight})
        elif step.pause is not None:
            if step.pause.duration is None:
                steps.append({"pause": {}})
            else:
                seconds = _seconds(ctx, step.pause.duration, [*where, "pause", "duration"])
                steps.append({"pause": {"duration": f"{seconds}s"}})
        elif step.analysis is not None:
            name = f"{model.base}-canary-step-{i}"
            out.append(_analysis_template(ctx, model, name, step.analysis, [*where, "analysis"]))
            steps.append({"analysis": _analysis_ref(ctx, model, name, version)})
    if strategy.mirror:
        steps.append({"setMirrorRoute": {"name": "mirror"}})  # no match: removes the mirror route
    canary: dict[str, Any] = {"stableService": model.base, "canaryService": f"{model.base}-canary",
                              "steps": steps}
    if strategy.analysis is not None:
        name = f"{model.base}-canary-background"
        out.append(_analysis_template(ctx, model, name, strategy.analysis, [*keys, "analysis"]))
        canary["analysis"] = _analysis_ref(ctx, model, name, version)
    if ctx.target.gateway:
        canary["trafficRouting"] = _traffic_routing(ctx, model, managed)
        out.append(_canary_route(ctx, model))
    return [_service(ctx, model, model.base, "stable"),
            _service(ctx, model, f"{model.base}-canary", "canary"),
            _rollout(ctx, model, {"canary": canary}), *out]


def _argo_blue_green(ctx: RenderContext, model: _Model, strategy: BlueGreenStrategy,
                     keys: Sequence[str | int]) -> list[Manifest]:
    version = model.resolved.version
    out: list[Manifest] = []
    bg: dict[str, Any] = {
        "activeService": model.base, "previewService": f"{model.base}-preview",
        "autoPromotionEnabled": strategy.auto_promote,
        "scaleDownDelaySeconds": _seconds(ctx, strategy.scale_down_delay, [*keys, "scale_down_delay"]),
    }
    for field_name, argo_name, suffix in (("pre_promotion_analysis", "prePromotionAnalysis", "pre-promotion"),
                                          ("post_promotion_analysis", "postPromotionAnalysis",
                                           "post-promotion")):
        spec: AnalysisSpec | None = getattr(strategy, field_name)
        if spec is not None:
            name = f"{model.base}-{suffix}"
            out.append(_analysis_template(ctx, model, name, spec, [*keys, field_name]))
            bg[argo_name] = _analysis_ref(ctx, model, name, version)
    if ctx.target.gateway:
        header = strategy.preview_header
        out.append(_http_route(ctx, model, [
            {"matches": [{"headers": [{"type": "Exact", "name": header, "value": "true"}]}],
             "backendRefs": [_backend(f"{model.base}-preview", 1)]},
            {"backendRefs": [_backend(model.base, 1)]},
        ]))
    return [_service(ctx, model, model.base, "active"),
            _service(ctx, model, f"{model.base}-preview", "preview"),
            _rollout(ctx, model, {"blueGreen": bg}), *out]


def _percent(ctx: RenderContext, share: float, keys: Sequence[str | int]) -> int:
    percent = share * 100
    if abs(percent - round(percent)) > 1e-9:
        raise ctx.error(f"traffic_split {share!r} is {percent:g}%, and Argo Rollouts' setWeight takes "
                        "whole percents", keys, hint="use a split such as 0.1, 0.25 or 0.5")
    return round(percent)


def _argo_ab(ctx: RenderContext, model: _Model, strategy: ABTestStrategy,
             keys: Sequence[str | int]) -> list[Manifest]:
    if not ctx.target.gateway:
        raise ctx.error(
            "an A/B test on Kubernetes needs a traffic router for setHeaderRoute, and target.gateway "
            "is not set", [*keys, "type"],
            hint="set target.gateway to the Gateway (name, namespace) the model's HTTPRoute attaches to; "
                 f"the Argo Rollouts plugin {GATEWAY_PLUGIN} must be installed")
    if model.resolved_b is None:  # pragma: no cover - render_model always resolves version_b
        raise ctx.error("version_b was not resolved", [*keys, "version_b"])
    weight = _percent(ctx, strategy.traffic_split, [*keys, "traffic_split"])
    canary = {
        "stableService": model.base, "canaryService": f"{model.base}-canary",
        "trafficRouting": _traffic_routing(ctx, model, ["ab-variant-b"]),
        "steps": [
            {"setHeaderRoute": {"name": "ab-variant-b", "match": [
                {"headerName": AB_VARIANT_HEADER, "headerValue": {"exact": "b"}}]}},
            {"setWeight": weight},
            {"pause": {}},
        ],
    }
    # Variant B is the Rollout's canary: its pod template carries version_b, and
    # the stable ReplicaSet keeps running the pinned version A.
    b_model = _Model(model.key, model.base, model.spec, model.pin, model.resolved_b)
    sticky = ab_environment(ctx.target, model.base, strategy, model.resolved.version)
    rollout = _rollout(ctx, b_model, {"canary": canary}, sticky)
    rollout["metadata"]["annotations"]["mlops-actions.io/ab-version-a"] = model.resolved.version
    return [_service(ctx, model, model.base, "stable"),
            _service(ctx, model, f"{model.base}-canary", "canary"),
            rollout, _canary_route(ctx, model)]


# --------------------------------------------------------------------------- Gateway API mode


def ab_environment(target: KubernetesTarget, base: str, strategy: ABTestStrategy,
                   version_a: str) -> list[dict[str, str]]:
    """The pod environment of both variants of an A/B test: what keeps it sticky.

    The pods (:mod:`mlops_actions.serving.sticky`) assign a request with the
    ``sticky_header`` to a variant with the local gateway's function and forward the
    other variant's keys to its Service; a pod knows its variant from its version.
    Argo mode: A is the stable Service ``<m>``, B the canary Service ``<m>-canary``;
    gateway-api mode: each version's own Service.
    """
    if target.mode == "gateway-api":
        a, b = f"{base}-{version_slug(version_a)}", f"{base}-{version_slug(strategy.version_b)}"
    else:
        a, b = base, f"{base}-canary"
    weight = round(strategy.traffic_split * 100)
    return [{"name": "MLOPS_AB_STICKY_HEADER", "value": strategy.sticky_header},
            {"name": "MLOPS_AB_WEIGHT", "value": str(weight)},
            {"name": "MLOPS_AB_VERSION_A", "value": version_a},
            {"name": "MLOPS_AB_VERSION_B", "value": strategy.version_b},
            {"name": "MLOPS_AB_A_URL", "value": f"http://{a}.{target.namespace}.svc:{SERVICE_PORT}"},
            {"name": "MLOPS_AB_B_URL", "value": f"http://{b}.{target.namespace}.svc:{SERVICE_PORT}"}]


def version_slug(version: str) -> str:
    """``"1.3.0-rc.1"`` -> ``"v1-3-0-rc-1"``: the suffix of a version's Deployment and Service."""
    return "v" + re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")


def _deployment(ctx: RenderContext, model: _Model, resolved: ResolvedVersion,
                extra_env: Sequence[Mapping[str, str]] = ()) -> tuple[Manifest, Manifest]:
    name = f"{model.base}-{version_slug(resolved.version)}"
    selector = {**_selector(ctx, model), "app.kubernetes.io/version": _label_value(resolved.version)}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(ctx, model, name, "model-server", resolved.version),
        "spec": {"replicas": ctx.target.replicas, "revisionHistoryLimit": 3,
                 "selector": {"matchLabels": selector},
                 "template": _pod_template(ctx, model, resolved, extra_env=extra_env)},
    }
    service = _service(ctx, model, name, "version", selector)
    service["metadata"]["labels"]["app.kubernetes.io/version"] = _label_value(resolved.version)
    return deployment, service


def _gateway_mode(ctx: RenderContext, model: _Model, keys: Sequence[str | int],
                  previous: ResolvedVersion | None, canary_weight: int | None) -> list[Manifest]:
    if not ctx.target.gateway:
        raise ctx.error("mode gateway-api needs target.gateway (the Gateway the HTTPRoute attaches to)",
                        ["target", "mode"], hint="add target.gateway: {name: ..., namespace: ...}")
    strategy = model.pin.strategy
    sticky: list[dict[str, str]] = []
    if isinstance(strategy, ABTestStrategy):
        sticky = ab_environment(ctx.target, model.base, strategy, model.resolved.version)
    new_dep, new_svc = _deployment(ctx, model, model.resolved, sticky)
    out: list[Manifest] = [new_dep, new_svc]
    new_name = new_svc["metadata"]["name"]
    rules: list[dict[str, Any]]
    if isinstance(strategy, ABTestStrategy):
        assert model.resolved_b is not None
        b_dep, b_svc = _deployment(ctx, model, model.resolved_b, sticky)
        out += [b_dep, b_svc]
        b_name = b_svc["metadata"]["name"]
        weight = _percent(ctx, strategy.traffic_split, [*keys, "traffic_split"])
        rules = [{"matches": [{"headers": [{"type": "Exact", "name": AB_VARIANT_HEADER, "value": "b"}]}],
                  "backendRefs": [_backend(b_name, 1)]},
                 {"backendRefs": [_backend(new_name, 100 - weight), _backend(b_name, weight)]}]
    elif previous is None or previous.version == model.resolved.version:
        rules = [{"backendRefs": [_backend(new_name, 100)]}]
    else:
        old_dep, old_svc = _deployment(ctx, model, previous)
        out += [old_dep, old_svc]
        old_name = old_svc["metadata"]["name"]
        if isinstance(strategy, BlueGreenStrategy):
            preview = {"matches": [{"headers": [{"type": "Exact", "name": strategy.preview_header,
                                                 "value": "true"}]}],
                       "backendRefs": [_backend(new_name, 1)]}
            if canary_weight == 100:  # switched; the old version kept for the post-promotion analysis
                rules = [{"backendRefs": [_backend(new_name, 100), _backend(old_name, 0)]}]
            elif canary_weight == 0:  # rolled back: the new version kept at 0 so a rerun knows
                rules = [preview, {"backendRefs": [_backend(old_name, 100), _backend(new_name, 0)]}]
            else:
                rules = [preview, {"backendRefs": [_backend(old_name, 1)]}]
        else:
            if canary_weight is None:
                weights = [s.set_weight for s in getattr(strategy, "steps", []) if s.set_weight is not None]
                canary_weight = weights[0] if weights else 100
            rules = [{"backendRefs": [_backend(old_name, 100 - canary_weight),
                                      _backend(new_name, canary_weight)]}]
    out.append(_http_route(ctx, model, rules))
    return out


# --------------------------------------------------------------------------- entry points


def render_model(ctx: RenderContext, key: str, spec: ModelSpec, resolved: ResolvedVersion,
                 resolved_b: ResolvedVersion | None = None, *, previous: ResolvedVersion | None = None,
                 canary_weight: int | None = None) -> list[Manifest]:
    """Manifests for one model of the environment.

    ``resolved``: the pinned version; ``resolved_b``: ``version_b`` of an A/B test;
    ``previous`` and ``canary_weight``: the live version and current weight, used
    only by ``gateway-api`` mode (Argo Rollouts keeps them itself).
    """
    _check_target(ctx)
    pin = ctx.env.models[key]
    base = _base_name(ctx, key)
    keys: list[str | int] = ["models", key, "strategy"]
    if isinstance(pin.strategy, ABTestStrategy) and resolved_b is None:
        raise ctx.error("an A/B test needs version_b resolved", [*keys, "version_b"])
    model = _Model(key, base, spec, pin, resolved, resolved_b)
    if ctx.target.mode == "gateway-api":
        manifests = _gateway_mode(ctx, model, keys, previous, canary_weight)
    else:
        manifests = _argo(ctx, model, keys)
    _check_names(ctx, key, manifests)
    return manifests


def _argo(ctx: RenderContext, model: _Model, keys: Sequence[str | int]) -> list[Manifest]:
    """One short dispatcher, one function per strategy."""
    strategy = model.pin.strategy
    if isinstance(strategy, FullStrategy):
        return _argo_full(ctx, model, strategy, keys)
    if isinstance(strategy, CanaryStrategy):
        return _argo_canary(ctx, model, strategy, keys)
    if isinstance(strategy, BlueGreenStrategy):
        return _argo_blue_green(ctx, model, strategy, keys)
    if isinstance(strategy, ABTestStrategy):
        return _argo_ab(ctx, model, strategy, keys)
    assert_never(strategy)


Resolver = Callable[[str, ModelSpec, str], ResolvedVersion]


def check_shared_namespace(env_name: str, env: EnvironmentSpec, others: Mapping[str, EnvironmentSpec],
                           source: str | None = None) -> None:
    """Refuse two environments that would render the same objects: same cluster context, same
    namespace, a model in common (objects are named after the model, ``<m>``)."""
    if not isinstance(env.target, KubernetesTarget):
        return
    for other_name, other in sorted(others.items()):
        t = other.target
        if other_name == env_name or not isinstance(t, KubernetesTarget):
            continue
        shared = sorted(set(env.models) & set(other.models))
        if t.namespace == env.target.namespace and t.context == env.target.context and shared:
            raise ConfigError(
                f"environments {env_name!r} and {other_name!r} both deploy {', '.join(shared)} into "
                f"namespace {t.namespace!r}{' of context ' + t.context if t.context else ''}: they would "
                "overwrite each other's objects (named after the model)",
                location=locate(source, ["target", "namespace"]),
                hint="give each environment its own target.namespace")


def render_environment(env_name: str, env: EnvironmentSpec, models: Mapping[str, ModelSpec],
                       resolve: Resolver, *, source: str | None = None, display_source: str | None = None,
                       previous: Mapping[str, ResolvedVersion] | None = None,
                       weights: Mapping[str, int] | None = None) -> list[Manifest]:
    """Every manifest of an environment whose target is Kubernetes, sorted by (namespace, kind, name).

    ``resolve(model_key, model_spec, semver)`` turns a pinned semver into a
    :class:`ResolvedVersion` (registry lookup, or the ``--no-registry`` alias).
    ``previous`` / ``weights`` (gateway-api mode only): per model, the version live
    now and the share of traffic (percent) the pinned version gets.
    """
    if not isinstance(env.target, KubernetesTarget):
        raise ConfigError(f"environment {env_name!r} has target type {env.target.type!r}, not kubernetes",
                          location=locate(source, ["target", "type"]),
                          hint="render works on environments with target: {type: kubernetes, ...}")
    ctx = RenderContext(env_name, env, env.target, source, display_source)
    out: list[Manifest] = []
    seen: dict[str, str] = {}
    for key in sorted(env.models):
        if key not in models:
            raise ctx.error(f"model {key!r} has no models/{key}/model.yaml", ["models", key],
                            hint=f"create models/{key}/model.yaml or remove the pin")
        base = dns_label(key)
        if base in seen:
            raise ctx.error(f"models {seen[base]!r} and {key!r} both give the object name {base!r}",
                            ["models", key], hint="rename one of the model directories")
        seen[base] = key
        spec = models[key]
        pin = env.models[key]
        resolved = resolve(key, spec, pin.version)
        resolved_b = (resolve(key, spec, pin.strategy.version_b)
                      if isinstance(pin.strategy, ABTestStrategy) else None)
        out += render_model(ctx, key, spec, resolved, resolved_b,
                            previous=(previous or {}).get(key), canary_weight=(weights or {}).get(key))
    return sorted(out, key=lambda m: (m["metadata"]["namespace"], m["kind"], m["metadata"]["name"]))
