"""Rendering: schemas for every strategy and example environment, golden files, bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_actions.config.loader import load_environment, load_repo
from mlops_actions.config.specs import EnvironmentSpec
from mlops_actions.deploy.targets.kubernetes.render import (
    GATEWAY_PLUGIN,
    alias_for_semver,
    manifest_filename,
    render_environment,
)
from mlops_actions.errors import ConfigError
from tests.kubernetes.conftest import GOLDEN, REPO, fake_resolve, schema_errors

EXAMPLES = sorted(p.stem for p in (REPO / "environments").glob("*.yaml")
                  if load_environment(p).target.type == "kubernetes")
STRATEGIES: dict[str, dict[str, Any]] = {
    "full": {"type": "full"},
    "canary": {"type": "canary", "steps": [
        {"set_weight": 10}, {"pause": {"duration": "1m"}},
        {"analysis": {"metrics": [{"name": "error_rate", "max": 0.01}]}}, {"set_weight": 100}]},
    "blue_green": {"type": "blue_green", "pre_promotion_analysis": {
        "metrics": [{"name": "latency_p95_ms", "max": 200}]}},
    "ab_test": {"type": "ab_test", "version_b": "1.1.0", "traffic_split": 0.3},
}


def render(env_name: str, data: dict[str, Any] | None = None, source: Path | None = None,
           **kw: Any) -> list[dict[str, Any]]:
    repo = load_repo(REPO)
    env = EnvironmentSpec.model_validate(data) if data is not None else repo.environments[env_name]
    path = source or REPO / "environments" / f"{env_name}.yaml"
    return render_environment(env_name, env, repo.models, fake_resolve, source=str(path),
                              display_source=f"environments/{env_name}.yaml", **kw)


def env_data(strategy: dict[str, Any], mode: str = "argo-rollouts", gateway: bool = True) -> dict[str, Any]:
    target: dict[str, Any] = {"type": "kubernetes", "namespace": "ml", "mode": mode}
    if gateway:
        target["gateway"] = {"name": "gw", "namespace": "gateway-system"}
    return {"target": target, "models": {"churn": {"version": "1.0.0", "strategy": strategy}}}


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("env_name", EXAMPLES)
def test_every_example_environment_validates_against_the_schemas(env_name: str) -> None:
    manifests = render(env_name)
    assert manifests
    for m in manifests:
        assert schema_errors(m) == [], manifest_filename(m)


@pytest.mark.parametrize("mode", ["argo-rollouts", "gateway-api"])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_in_both_modes_validates(strategy: str, mode: str) -> None:
    manifests = render("t", env_data(STRATEGIES[strategy], mode))
    kinds = {m["kind"] for m in manifests}
    assert ("Rollout" in kinds) == (mode == "argo-rollouts")
    assert ("Deployment" in kinds) == (mode == "gateway-api")
    for m in manifests:
        assert schema_errors(m) == [], manifest_filename(m)


def test_the_schemas_really_reject_a_broken_manifest() -> None:
    rollout = by_kind(render("production"), "Rollout")[0]
    rollout["spec"]["strategy"]["canary"]["steps"].append({"setWeigth": 20})
    assert any("setWeigth" in e for e in schema_errors(rollout))
    # The Rollout CRD leaves resources unchecked (preserve-unknown-fields): the renderer
    # checks quantities itself (test_resource_quantity_that_does_not_parse); Deployments are checked.
    deployment = by_kind(render("edge"), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"memory": "128 MB"}}
    assert any("128 MB" in e for e in schema_errors(deployment))


# --------------------------------------------------------------------------- golden files


def _golden_text(manifests: list[dict[str, Any]]) -> dict[str, str]:
    return {manifest_filename(m): yaml.safe_dump(m, sort_keys=True) for m in manifests}


@pytest.mark.parametrize("env_name", EXAMPLES)
def test_golden_files(env_name: str) -> None:
    """Set MLOPS_REGEN_GOLDEN=1 to rewrite tests/assets/kubernetes/golden after a reviewed change."""
    actual = _golden_text(render(env_name))
    root = GOLDEN / env_name
    if os.environ.get("MLOPS_REGEN_GOLDEN"):
        shutil.rmtree(root, ignore_errors=True)
        for name, text in actual.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
    expected = {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.yaml"))}
    assert sorted(actual) == sorted(expected), "objects differ; MLOPS_REGEN_GOLDEN=1 rewrites after review"
    for name, text in actual.items():
        assert text == expected[name], f"{env_name}/{name} differs from the golden file"


# --------------------------------------------------------------------------- translation


def test_canary_steps_background_analysis_and_mirror_translate_to_argo() -> None:
    rollout = next(m for m in render("production")
                   if m["kind"] == "Rollout" and m["metadata"]["name"] == "churn")
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["stableService"] == "churn" and canary["canaryService"] == "churn-canary"
    steps = canary["steps"]
    assert steps[0]["setMirrorRoute"]["name"] == "mirror" and steps[0]["setMirrorRoute"]["percentage"] == 100
    assert steps[1:4] == [{"setWeight": 10}, {"pause": {"duration": "300s"}},
                          {"analysis": {"templates": [{"templateName": "churn-canary-step-2"}],
                                        "args": [{"name": "model", "value": "churn"},
                                                 {"name": "version", "value": "1.3.0"},
                                                 {"name": "environment", "value": "production"}]}}]
    assert steps[4:7] == [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
    assert steps[7] == {"setMirrorRoute": {"name": "mirror"}}
    assert canary["analysis"]["templates"] == [{"templateName": "churn-canary-background"}]
    assert canary["trafficRouting"] == {
        "plugins": {GATEWAY_PLUGIN: {"httpRoute": "churn", "namespace": "ml-prod"}},
        "managedRoutes": [{"name": "mirror"}]}
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_URI"] == "models:/churn/10" and env["MLOPS_MODEL_VERSION"] == "1.3.0"
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"},
                                      "limits": {"cpu": "2", "memory": "2Gi"}}


def test_analysis_spec_maps_to_argo_metric_fields() -> None:
    template = next(m for m in render("production") if m["metadata"]["name"] == "churn-canary-step-2")
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    assert sorted(metrics) == ["accuracy", "error-rate", "latency-p95-ms", "prediction-drift"]
    err = metrics["error-rate"]
    assert (err["interval"], err["count"], err["failureLimit"], err["inconclusiveLimit"],
            err["consecutiveErrorLimit"]) == ("30s", 4, 1, 2, 4)
    assert err["successCondition"] == "len(result) > 0 && result[0] <= 0.02"
    assert err["failureCondition"] == "len(result) > 0 && (result[0] > 0.02)"
    prom = err["provider"]["prometheus"]
    assert prom["address"] == "http://prometheus-operated.monitoring.svc:9090"
    assert "mlops_request_errors_total" in prom["query"] and ">= 50" in prom["query"]
    assert metrics["accuracy"]["successCondition"] == "len(result) > 0 && result[0] >= 0.85"
    assert "mlops_model_accuracy" in metrics["accuracy"]["provider"]["prometheus"]["query"]
    assert "mlops_prediction_drift_score" in metrics["prediction-drift"]["provider"]["prometheus"]["query"]
    assert "histogram_quantile(0.95" in metrics["latency-p95-ms"]["provider"]["prometheus"]["query"]


def test_blue_green_translates_to_argo() -> None:
    manifests = render("preprod")
    bg = by_kind(manifests, "Rollout")[0]["spec"]["strategy"]["blueGreen"]
    assert bg["activeService"] == "churn" and bg["previewService"] == "churn-preview"
    assert bg["autoPromotionEnabled"] is False and bg["scaleDownDelaySeconds"] == 120
    assert bg["prePromotionAnalysis"]["templates"] == [{"templateName": "churn-pre-promotion"}]
    assert bg["postPromotionAnalysis"]["templates"] == [{"templateName": "churn-post-promotion"}]
    post = next(m for m in manifests if m["metadata"]["name"] == "churn-post-promotion")
    assert post["spec"]["metrics"][0]["successCondition"] == \
        "len(result) > 0 && result[0] <= 1.0 && result[0] >= 0.8"
    route = by_kind(manifests, "HTTPRoute")[0]
    assert route["spec"]["rules"][0]["matches"][0]["headers"][0]["name"] == "X-Preview"
    assert route["spec"]["parentRefs"] == [{"name": "ml-gateway", "namespace": "gateway-system",
                                            "sectionName": "http"}]


def test_ab_test_uses_set_header_route_with_managed_routes() -> None:
    rollout = next(m for m in render("production") if m["kind"] == "Rollout"
                   and m["metadata"]["name"] == "task-classifier")
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"]["managedRoutes"] == [{"name": "ab-variant-b"}]
    assert canary["steps"][0]["setHeaderRoute"]["match"] == [
        {"headerName": "X-Mlops-Variant", "headerValue": {"exact": "b"}}]
    assert canary["steps"][1:] == [{"setWeight": 25}, {"pause": {}}]
    assert rollout["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "2.1.0"
    assert rollout["metadata"]["annotations"]["mlops-actions.io/ab-version-a"] == "2.0.0"


def test_full_is_a_single_set_weight_100() -> None:
    rollouts = by_kind(render("staging"), "Rollout")
    assert [r["spec"]["strategy"] for r in rollouts] == [{"canary": {"steps": [{"setWeight": 100}]}}] * 2


def test_gateway_api_mode_weights() -> None:
    manifests = render("edge")
    routes = {r["metadata"]["name"]: r["spec"]["rules"] for r in by_kind(manifests, "HTTPRoute")}
    assert routes["churn"] == [{"backendRefs": [{"name": "churn-v1-3-0", "port": 80, "weight": 100}]}]
    ab = routes["task-classifier"]
    assert ab[1]["backendRefs"] == [{"name": "task-classifier-v2-0-0", "port": 80, "weight": 50},
                                    {"name": "task-classifier-v2-1-0", "port": 80, "weight": 50}]
    # with the live version known, the canary's first set_weight splits the traffic
    repo = load_repo(REPO)
    previous = {"churn": fake_resolve("churn", repo.models["churn"], "1.2.0")}
    routes2 = {r["metadata"]["name"]: r["spec"]["rules"]
               for r in by_kind(render("edge", previous=previous), "HTTPRoute")}
    assert routes2["churn"] == [{"backendRefs": [{"name": "churn-v1-2-0", "port": 80, "weight": 80},
                                                 {"name": "churn-v1-3-0", "port": 80, "weight": 20}]}]


def test_gateway_api_blue_green_switch_and_rollback_keep_both_versions() -> None:
    """Weight 100: switched, the old version kept at 0 for the post-promotion analysis; weight 0:
    rolled back, the new version kept at 0 so a rerun reads "rolled back"; both validate."""
    repo = load_repo(REPO)
    data = env_data({"type": "blue_green", "post_promotion_analysis": {
        "interval": "1m", "metrics": [{"name": "error_rate", "max": 0.05}]}}, mode="gateway-api")
    previous = {"churn": fake_resolve("churn", repo.models["churn"], "0.9.0")}
    rules = {}
    for weight in (None, 100, 0):
        manifests = render("edge", data, previous=previous,
                           weights={} if weight is None else {"churn": weight})
        for m in manifests:
            assert schema_errors(m) == [], (m["kind"], schema_errors(m))
        (route,) = by_kind(manifests, "HTTPRoute")
        rules[weight] = route["spec"]["rules"]
    new, old = "churn-v1-0-0", "churn-v0-9-0"
    assert rules[None][-1]["backendRefs"] == [{"name": old, "port": 80, "weight": 1}]  # preview only
    assert rules[100] == [{"backendRefs": [{"name": new, "port": 80, "weight": 100},
                                           {"name": old, "port": 80, "weight": 0}]}]
    assert rules[0][-1]["backendRefs"] == [{"name": old, "port": 80, "weight": 100},
                                           {"name": new, "port": 80, "weight": 0}]


def test_kubernetes_labels_and_selectors() -> None:
    for m in render("staging"):
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "mlops-actions"
        assert labels["app.kubernetes.io/part-of"] == "mlops-actions"
        assert labels["mlops-actions.io/environment"] == "staging"
        assert labels["app.kubernetes.io/name"] == m["metadata"]["name"].split("-canary")[0]
        assert m["metadata"]["annotations"]["mlops-actions.io/source"] == "environments/staging.yaml"
    rollout = by_kind(render("staging"), "Rollout")[0]
    selector = rollout["spec"]["selector"]["matchLabels"]
    assert "app.kubernetes.io/version" not in selector  # selectors never change between versions
    assert selector.items() <= rollout["spec"]["template"]["metadata"]["labels"].items()


def test_model_directory_with_underscore_becomes_a_dns_label() -> None:
    names = {m["metadata"]["name"] for m in render("staging")}
    assert "task-classifier" in names


def test_alias_for_semver() -> None:
    assert alias_for_semver("1.2.0") == "v1-2-0"
    assert alias_for_semver("1.3.0-rc.1+b7") == "v1-3-0-rc-1-b7"


# --------------------------------------------------------------------------- bad input


def _bad(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    env = load_environment(path)
    with pytest.raises(ConfigError) as info:
        render("bad", env.model_dump(by_alias=True, exclude_unset=True), source=path)
    assert info.value.location is not None and info.value.location.path == str(path)
    return info.value


HEAD = "target:\n  type: kubernetes\n  namespace: ml\n"


def test_fractional_percent_is_named_with_file_and_line(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "  gateway: {name: gw}\nmodels:\n  churn:\n    version: \"1.0.0\"\n"
               "    strategy:\n      type: ab_test\n      version_b: \"1.1.0\"\n      traffic_split: 0.333\n")
    assert "whole percents" in err.message and "traffic_split" in err.message
    assert (err.location.line, err.location.column) == (11, 7)  # type: ignore[union-attr]


def test_ab_test_without_traffic_router(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "models:\n  churn:\n    version: \"1.0.0\"\n"
               "    strategy: {type: ab_test, version_b: \"1.1.0\"}\n")
    assert "traffic router" in err.message and err.hint and "target.gateway" in err.hint
    assert err.location.line == 7  # type: ignore[union-attr]


def test_mirror_without_traffic_router(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "models:\n  churn:\n    version: \"1.0.0\"\n    strategy:\n"
               "      type: canary\n      mirror: true\n      steps: [{set_weight: 50}]\n")
    assert "mirror" in err.message and err.location.line == 9  # type: ignore[union-attr]


def test_sub_second_pause_is_refused(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "models:\n  churn:\n    version: \"1.0.0\"\n    strategy:\n"
               "      type: canary\n      steps:\n        - set_weight: 50\n"
               "        - pause: {duration: 1500ms}\n")
    assert "whole number of seconds" in err.message and err.location.line == 11  # type: ignore[union-attr]


def test_resource_quantity_that_does_not_parse(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "  resources:\n    requests: {memory: 128 MB}\n"
               "models:\n  churn: {version: \"1.0.0\"}\n")
    assert "128 MB" in err.message and err.hint and "256Mi" in err.hint
    assert err.location.line == 5  # type: ignore[union-attr]


def test_request_above_its_limit(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "  resources:\n    requests: {cpu: 1500m, memory: 1Gi}\n"
               "    limits: {cpu: 1, memory: 2Gi}\nmodels:\n  churn: {version: \"1.0.0\"}\n")
    assert "requests.cpu '1500m' is more than limits.cpu 1" in err.message
    assert err.location.line == 5  # type: ignore[union-attr]


def test_quantities_compare_by_value() -> None:
    from mlops_actions.deploy.targets.kubernetes.render import quantity_value

    assert quantity_value("500m") == 0.5 and quantity_value("1Gi") == 2.0**30
    assert quantity_value("1e3") == 1000.0 and quantity_value(2) == 2.0 and quantity_value("128M") == 1.28e8


def test_gateway_namespace_must_be_a_dns_label(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "  gateway: {name: gw, namespace: Gateway_System}\n"
               "models:\n  churn: {version: \"1.0.0\"}\n")
    assert "gateway namespace 'Gateway_System'" in err.message


def test_unknown_resource_section(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "  resources:\n    request: {cpu: 1}\n"
               "models:\n  churn: {version: \"1.0.0\"}\n")
    assert "requests, limits" in err.message


def test_model_name_that_is_not_a_dns_label(tmp_path: Path) -> None:
    long = "a" * 60
    (REPO / "models" / long).mkdir(exist_ok=True)
    try:
        (REPO / "models" / long / "model.yaml").write_text(
            "name: x\ntask: regression\ndata: {test: t.csv, label: y}\n")
        err = _bad(tmp_path, HEAD + f"models:\n  {long}: {{version: \"1.0.0\"}}\n")
    finally:
        shutil.rmtree(REPO / "models" / long)
    assert "not a DNS label" in err.message and err.location.line == 5  # type: ignore[union-attr]


def test_gateway_api_mode_needs_a_gateway(tmp_path: Path) -> None:
    err = _bad(tmp_path, HEAD + "  mode: gateway-api\nmodels:\n  churn: {version: \"1.0.0\"}\n")
    assert "gateway" in err.message and err.location.line == 4  # type: ignore[union-attr]


def test_namespace_that_is_not_a_dns_label_is_refused_by_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("target: {type: kubernetes, namespace: ML_Prod}\n")
    with pytest.raises(ConfigError) as info:
        load_environment(path)
    assert "namespace" in str(info.value)


def test_local_target_is_refused() -> None:
    with pytest.raises(ConfigError, match="not kubernetes"):
        render("local")


# --------------------------------------------------------------------------- PromQL


@pytest.mark.prometheus
def test_analysis_queries_parse_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    rules = []
    for env_name in EXAMPLES:
        for m in by_kind(render(env_name), "AnalysisTemplate"):
            for metric in m["spec"]["metrics"]:
                query = metric["provider"]["prometheus"]["query"]
                for arg, value in (("model", "churn"), ("version", "1.0.0"), ("environment", "prod")):
                    query = query.replace("{{args." + arg + "}}", value)
                rules.append({"record": f"mlops:{metric['name'].replace('-', '_')}:{len(rules)}",
                              "expr": query})
    assert len(rules) >= 8
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "analysis", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


ROOT = Path(__file__).parent.parent.parent
REPO_ENVIRONMENTS = sorted((ROOT / "environments").glob("*.yaml"))


@pytest.mark.skipif(not REPO_ENVIRONMENTS, reason="the repository has no environments/ yet")
@pytest.mark.parametrize("mode", ["argo-rollouts", "gateway-api"])
@pytest.mark.parametrize("path", REPO_ENVIRONMENTS, ids=lambda p: p.stem)
def test_the_repositorys_example_environments_render_on_kubernetes(path: Path, mode: str) -> None:
    """The repository's own environments (local target) with the target switched to kubernetes."""
    repo = load_repo(ROOT)
    env = load_environment(path)
    data = env.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data["target"] = {"type": "kubernetes", "namespace": f"ml-{path.stem}", "mode": mode,
                      "gateway": {"name": "gw"}}
    manifests = render_environment(path.stem, EnvironmentSpec.model_validate(data), repo.models, fake_resolve,
                                   source=str(path))
    assert {m["metadata"]["labels"]["mlops-actions.io/model"] for m in manifests} == set(env.models)
    for m in manifests:
        assert schema_errors(m) == [], manifest_filename(m)


def test_analysis_queries_use_the_metrics_the_gateway_and_exporter_export() -> None:
    """Every series an AnalysisTemplate queries exists, with the labels it filters on
    (mlops_actions.monitoring.metrics, docs/metrics.md)."""
    import re

    from prometheus_client import CollectorRegistry

    from mlops_actions.monitoring.metrics import gateway_metrics, monitoring_metrics

    registry = CollectorRegistry()
    gateway_metrics(registry)
    monitoring_metrics(registry)
    exported: dict[str, set[str]] = {}
    for collector in list(registry._collector_to_names):
        name = collector._name  # type: ignore[attr-defined]
        labels = set(collector._labelnames)  # type: ignore[attr-defined]
        kind = collector._type  # type: ignore[attr-defined]
        for series in ([f"{name}_total"] if kind == "counter" else
                       [f"{name}_bucket", f"{name}_sum", f"{name}_count"] if kind == "histogram" else [name]):
            exported[series] = labels | ({"le"} if series.endswith("_bucket") else set())
    queried = 0
    for env_name in EXAMPLES:
        for template in by_kind(render(env_name), "AnalysisTemplate"):
            for metric in template["spec"]["metrics"]:
                query = metric["provider"]["prometheus"]["query"]
                for series, selector in re.findall(r"(mlops_[a-z_]+)\{([^}]*)\}", query):
                    assert series in exported, f"{series} is not exported"
                    used = set(re.findall(r"(\w+)=", selector))
                    assert used <= exported[series], f"{series} has no label(s) {used - exported[series]}"
                    queried += 1
    assert queried >= 10
