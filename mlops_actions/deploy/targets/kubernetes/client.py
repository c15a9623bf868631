"""The Kubernetes API through the ``kubernetes`` package: server-side apply, watch, abort/promote.

The ``kubernetes`` package supplies the configuration (kubeconfig with its
contexts and exec/token auth, or the in-cluster service account) and the TLS
connection pool; requests are plain REST calls, so the same code works for
built-in kinds and CRDs (Argo Rollouts, Gateway API) and across client versions.

Every request has a bounded timeout and no silent retries: an unreachable API
server is an :class:`Unreachable` error within ``timeout`` seconds.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from mlops_actions.deploy.targets.kubernetes.interface import (
    FIELD_MANAGER,
    ApplyConflict,
    ApplyReport,
    KubeApi,
    KubernetesError,
    Manifest,
    ObjectRef,
    RolloutPhase,
    RolloutStatus,
    Unreachable,
)
from mlops_actions.errors import Location

__all__ = [
    "APPLY_ORDER",
    "KubernetesApi",
    "abort_rollout",
    "apply_all",
    "connect",
    "promote_rollout",
    "read_rollout",
    "replica_sets",
    "retry_rollout",
    "rollout_status",
    "stable_version",
    "undo_rollout",
    "wait_for_rollout",
]

#: kind -> plural resource name, for the kinds we render.
PLURALS = {
    "Service": "services",
    "ConfigMap": "configmaps",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "Rollout": "rollouts",
    "AnalysisTemplate": "analysistemplates",
    "HTTPRoute": "httproutes",
}
#: Apply order: what others refer to first, the route (traffic) last.
APPLY_ORDER = ("ConfigMap", "AnalysisTemplate", "Service", "Deployment", "Rollout", "HTTPRoute")
_CRD_HINT = {
    "argoproj.io": "install Argo Rollouts (kubectl apply -k https://github.com/argoproj/argo-rollouts/"
                   "manifests/cluster-install) or use target.mode: gateway-api",
    "gateway.networking.k8s.io": "install the Gateway API CRDs (standard channel) in the cluster",
}


def _path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    if kind not in PLURALS:
        raise KubernetesError(f"kind {kind!r} is not one the Kubernetes target manages: expected one of "
                              f"{', '.join(sorted(PLURALS))}")
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{quote(namespace, safe='')}/{PLURALS[kind]}"
    return f"{path}/{quote(name, safe='')}" if name else path


def _status_message(body: bytes) -> tuple[str, dict[str, Any]]:
    try:
        status = json.loads(body or b"{}")
    except ValueError:
        return body.decode("utf-8", "replace")[:500], {}
    if not isinstance(status, dict):
        return str(status)[:500], {}
    return str(status.get("message", "")) or str(status)[:500], status


def _details(status: dict[str, Any]) -> dict[str, Any]:
    details = status.get("details")
    return details if isinstance(details, dict) else {}


def _unserved(status: dict[str, Any]) -> bool:
    """A 404 for the path itself, not an object: kube-apiserver's NotFound names the missing
    object in ``details`` (``errors.NewNotFound``); a kind it does not serve (a CRD not
    installed) gets a Status with no object named."""
    return status.get("reason") == "NotFound" and not _details(status).get("name")


class KubernetesApi(KubeApi):
    """:class:`KubeApi` over HTTP(S) with the ``kubernetes`` package's configuration."""

    def __init__(self, configuration: Any, *, timeout: float = 10.0, origin: Location | None = None) -> None:
        from kubernetes import client as k8s_client

        self._cfg = configuration
        self.origin = origin  # the environment file whose target this is: named in every error
        self.host = str(configuration.host).rstrip("/")
        self.timeout = timeout
        self._pool: urllib3.PoolManager = k8s_client.ApiClient(configuration).rest_client.pool_manager

    # -- plumbing

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"{FIELD_MANAGER}/kubernetes-target"}
        token = self._cfg.get_api_key_with_prefix("authorization") or \
            self._cfg.get_api_key_with_prefix("BearerToken")
        if token:
            headers["Authorization"] = token if " " in token else f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                 body: Any = None, content_type: str | None = None, stream: bool = False,
                 read_timeout: float | None = None) -> urllib3.BaseHTTPResponse:
        url = self.host + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        try:
            return self._pool.request(
                method, url, body=data, headers=self._headers(content_type),
                timeout=urllib3.Timeout(connect=self.timeout, read=read_timeout or self.timeout),
                retries=False, preload_content=not stream)
        except urllib3.exceptions.HTTPError as exc:
            whose = f" (the target of {self.origin.path})" if self.origin else ""
            raise Unreachable(
                f"Kubernetes API server {self.host}{whose} did not answer {method} {path} within "
                f"{self.timeout:g}s: {type(exc).__name__}: {exc}",
                hint="check the kubeconfig context (kubectl cluster-info), the network path to the "
                     "cluster and its credentials", location=self.origin) from None

    def _json(self, resp: urllib3.BaseHTTPResponse, what: str) -> Manifest:
        if 200 <= resp.status < 300:
            return dict(json.loads(resp.data or b"{}"))
        raise self._error(resp.status, resp.data, what)

    def _error(self, status: int, body: bytes, what: str) -> KubernetesError:
        message, payload = _status_message(body)
        if status == 409:
            causes = (payload.get("details") or {}).get("causes") or []
            fields = [str(c.get("field", "")) for c in causes if isinstance(c, dict)]
            managers = tuple(sorted(set(re.findall(r'conflicts? with "([^"]+)"', message))))
            who = ", ".join(managers) or "another field manager"
            return ApplyConflict(
                f"{what}: 409 conflict: fields {', '.join(f for f in fields if f) or '(see message)'} "
                f"are owned by {who}, not {FIELD_MANAGER}: {message}",
                managers=managers,
                hint=f"let {FIELD_MANAGER} own them: stop {who} from setting them (or drop them from its "
                     "manifests), then apply again; 'apply --force-conflicts' takes ownership deliberately")
        if status in (401, 403):
            return KubernetesError(f"{what}: {status} {message}",
                                   hint=f"the credentials need RBAC rights for this verb and kind "
                                        f"(kubectl auth can-i); field manager is {FIELD_MANAGER}")
        if status == 404 and _unserved(payload):
            hint = next((h for group, h in _CRD_HINT.items() if f"{group}/" in what),
                        "install the CRD that defines it")
            return KubernetesError(f"{what}: the API server does not serve this kind: {message}", hint=hint)
        if status == 404 and _details(payload).get("kind") == "namespaces":
            return KubernetesError(f"{what}: {message}",
                                   hint="create the namespace (kubectl create namespace NAME) or fix "
                                        "target.namespace; mlops-actions does not create namespaces")
        return KubernetesError(f"{what}: {status} {message}")

    # -- the port

    def get(self, ref: ObjectRef) -> Manifest | None:
        resp = self._request("GET", _path(ref.api_version, ref.kind, ref.namespace, ref.name))
        if resp.status == 404:
            if _unserved(_status_message(resp.data)[1]):
                raise self._error(404, resp.data, f"GET {ref}")
            return None
        return self._json(resp, f"GET {ref}")

    def apply(self, manifest: Manifest, *, force: bool = False, dry_run: bool = False) -> Manifest:
        ref = ObjectRef.of(manifest)
        query = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        resp = self._request("PATCH", _path(ref.api_version, ref.kind, ref.namespace, ref.name),
                             query=query, body=manifest, content_type="application/apply-patch+yaml")
        return self._json(resp, f"apply {ref}")

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[Manifest]:
        resp = self._request("GET", _path(api_version, kind, namespace),
                             query={"labelSelector": label_selector})
        items = self._json(resp, f"list {kind} in {namespace}").get("items") or []
        for item in items:  # list items carry no apiVersion/kind
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return list(items)

    def delete(self, ref: ObjectRef) -> None:
        resp = self._request("DELETE", _path(ref.api_version, ref.kind, ref.namespace, ref.name),
                             body={"kind": "DeleteOptions", "apiVersion": "v1",
                                   "propagationPolicy": "Foreground"}, content_type="application/json")
        if resp.status != 404:
            self._json(resp, f"delete {ref}")

    def patch(self, ref: ObjectRef, patch: Manifest | Sequence[Manifest], *,
              subresource: str | None = None) -> Manifest:
        path = _path(ref.api_version, ref.kind, ref.namespace, ref.name)
        if subresource:
            path += f"/{subresource}"
        kind = "application/json-patch+json" if isinstance(patch, list) else "application/merge-patch+json"
        resp = self._request("PATCH", path, query={"fieldManager": FIELD_MANAGER}, body=patch,
                             content_type=kind)
        return self._json(resp, f"patch {ref}{'/' + subresource if subresource else ''}")

    def watch(self, ref: ObjectRef, *, timeout_seconds: float) -> Iterator[Manifest]:
        seconds = max(1, int(timeout_seconds))
        resp = self._request(
            "GET", _path(ref.api_version, ref.kind, ref.namespace),
            query={"watch": "1", "fieldSelector": f"metadata.name={ref.name}", "timeoutSeconds": str(seconds),
                   "allowWatchBookmarks": "false"},
            stream=True, read_timeout=seconds + self.timeout)
        if not 200 <= resp.status < 300:
            body = resp.read()
            resp.release_conn()
            raise self._error(resp.status, body, f"watch {ref}")
        buffer = b""
        try:
            for chunk in resp.stream(4096):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        message, _ = _status_message(json.dumps(event.get("object", {})).encode())
                        raise KubernetesError(f"watch {ref}: {message}")
                    obj = event.get("object")
                    if event.get("type") in ("ADDED", "MODIFIED") and isinstance(obj, dict):
                        yield obj
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError):
            return
        finally:
            resp.release_conn()


def connect(*, context: str | None = None, kubeconfig: str | None = None,
            timeout: float = 10.0, origin: Location | None = None) -> KubernetesApi:
    """Kubeconfig (``kubeconfig`` path, else ``$KUBECONFIG`` / ``~/.kube/config``) or in-cluster config.

    In-cluster config is used when no kubeconfig is given and the process runs
    in a pod (``KUBERNETES_SERVICE_HOST`` set).
    """
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    cfg = k8s_client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(client_configuration=cfg)
        else:
            # $KUBECONFIG is read now: the kubernetes package reads it once, when it is imported
            k8s_config.load_kube_config(config_file=kubeconfig or os.environ.get("KUBECONFIG"),
                                        context=context, client_configuration=cfg, persist_config=False)
    except (k8s_config.ConfigException, OSError, ValueError, TypeError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise KubernetesError(
            f"no usable Kubernetes configuration (kubeconfig {where}"
            f"{', context ' + context if context else ''}): {exc}",
            hint="point KUBECONFIG at a kubeconfig with the target cluster, set target.context to one of "
                 "its contexts, or run inside the cluster with a service account", location=origin) from None
    cfg.retries = False
    return KubernetesApi(cfg, timeout=timeout, origin=origin)


# --------------------------------------------------------------------------- apply


def _order(manifest: Manifest) -> tuple[int, str, str]:
    kind = str(manifest["kind"])
    rank = APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)
    return rank, str(manifest["metadata"].get("namespace", "")), str(manifest["metadata"]["name"])


def _check_owner(live: Manifest | None, manifest: Manifest, label: str) -> None:
    if live is None:
        return
    ours = manifest["metadata"].get("labels", {}).get(label)
    theirs = (live.get("metadata", {}).get("labels") or {}).get(label)
    if theirs is not None and ours is not None and theirs != ours:
        ref = ObjectRef.of(manifest)
        raise KubernetesError(
            f"{ref} belongs to environment {theirs!r}, not {ours!r}: two environments render the same "
            "object in one namespace", hint="give each environment its own target.namespace")


def apply_all(api: KubeApi, manifests: Sequence[Manifest], *, environment_label: str,
              prune_selector: str | None = None, force: bool = False,
              progress: Callable[[str], None] = lambda _m: None) -> ApplyReport:
    """Server-side apply every manifest, in dependency order; optionally prune.

    First every object is applied with ``dryRun=All`` (the API server validates it
    and reports 409 conflicts) and checked not to belong to another environment;
    only then are they written. If a write still fails, the error says which
    objects were applied and which were not.

    ``prune_selector``: a label selector; live objects of the rendered kinds in the
    rendered namespaces that match it and are not rendered are deleted.
    """
    ordered = sorted(manifests, key=_order)
    live: dict[ObjectRef, Manifest | None] = {}
    for m in ordered:
        ref = ObjectRef.of(m)
        live[ref] = api.get(ref)
        _check_owner(live[ref], m, "mlops-actions.io/environment")
        api.apply(m, force=force, dry_run=True)
    applied: list[ObjectRef] = []
    unchanged: list[ObjectRef] = []
    for i, m in enumerate(ordered):
        ref = ObjectRef.of(m)
        try:
            result = api.apply(m, force=force)
        except KubernetesError as exc:
            rest = [ObjectRef.of(x) for x in ordered[i + 1:]]
            done = ", ".join(map(str, applied + unchanged)) or "none"
            raise type(exc)(
                f"{exc.message}\n  applied before the failure: {done}\n  not applied: "
                f"{', '.join(map(str, [ref, *rest]))}", hint=exc.hint) from None
        before = live[ref]
        version_before = (before or {}).get("metadata", {}).get("resourceVersion")
        same = before is not None and version_before == result.get("metadata", {}).get("resourceVersion")
        (unchanged if same else applied).append(ref)
        progress(f"{'unchanged' if same else ('configured' if before else 'created')}: {ref}")
    pruned: list[ObjectRef] = []
    if prune_selector:
        wanted = {ObjectRef.of(m) for m in ordered}
        scopes = sorted({(m["apiVersion"], m["kind"], m["metadata"]["namespace"]) for m in ordered})
        for api_version, kind, namespace in scopes:
            for obj in api.list(api_version, kind, namespace, prune_selector):
                ref = ObjectRef(api_version, kind, namespace, obj["metadata"]["name"])
                if ref not in wanted:
                    api.delete(ref)
                    pruned.append(ref)
                    progress(f"pruned: {ref}")
    return ApplyReport(applied=tuple(applied), unchanged=tuple(unchanged), pruned=tuple(pruned))


# --------------------------------------------------------------------------- Rollouts


def rollout_status(obj: Manifest) -> RolloutStatus:
    """Read Argo Rollouts' status block into a :class:`RolloutStatus`."""
    meta = obj.get("metadata", {})
    spec = obj.get("spec", {})
    status = obj.get("status") or {}
    try:
        phase = RolloutPhase(status.get("phase", "Unknown"))
    except ValueError:
        phase = RolloutPhase.UNKNOWN
    strategy = spec.get("strategy", {})
    steps = strategy.get("canary", {}).get("steps") if "canary" in strategy else None
    generation = meta.get("generation")
    observed = generation is not None and str(status.get("observedGeneration", "")) == str(generation)
    template_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    return RolloutStatus(
        name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")), phase=phase,
        message=str(status.get("message", "")),
        current_step=status.get("currentStepIndex"), steps=len(steps) if steps is not None else None,
        stable_version=(template_labels.get("app.kubernetes.io/version")
                        if status.get("stableRS") and status.get("stableRS") == status.get("currentPodHash")
                        else None),
        desired_version=template_labels.get("app.kubernetes.io/version"),
        aborted=bool(status.get("abort")),
        paused=bool(status.get("pauseConditions")) or bool(spec.get("paused")),
        observed=observed,
    )


def read_rollout(api: KubeApi, namespace: str, name: str) -> RolloutStatus | None:
    obj = api.get(ObjectRef("argoproj.io/v1alpha1", "Rollout", namespace, name))
    return rollout_status(obj) if obj is not None else None


def _settled(st: RolloutStatus) -> bool:
    if not st.observed:
        return False
    return st.phase in (RolloutPhase.HEALTHY, RolloutPhase.DEGRADED, RolloutPhase.PAUSED)


def wait_for_rollout(api: KubeApi, namespace: str, name: str, *, timeout: float,
                     progress: Callable[[str], None] = lambda _m: None) -> RolloutStatus:
    """Watch a Rollout until Healthy, Paused or Degraded (for the current generation).

    Raises :class:`KubernetesError` when it is still progressing after ``timeout``
    seconds, naming the last phase and message.
    """
    ref = ObjectRef("argoproj.io/v1alpha1", "Rollout", namespace, name)
    deadline = time.monotonic() + timeout
    obj = api.get(ref)
    if obj is None:
        raise KubernetesError(f"{ref} does not exist", hint="apply the environment first")
    last = rollout_status(obj)
    progress(last.summary())
    while not _settled(last):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KubernetesError(
                f"{ref} did not settle within {timeout:g}s: last phase {last.phase.value}"
                f"{' (' + last.message + ')' if last.message else ''}",
                hint="kubectl argo rollouts get rollout " + f"{name} -n {namespace} shows why; "
                     "the rollout keeps going in the cluster")
        changed = False
        for obj in api.watch(ref, timeout_seconds=remaining):
            st = rollout_status(obj)
            if st != last:
                progress(st.summary())
            last, changed = st, True
            if _settled(last) or time.monotonic() >= deadline:
                break
        if not changed:  # the watch ended without events: poll once, then watch again
            obj = api.get(ref)
            if obj is not None:
                last = rollout_status(obj)
    return last


def abort_rollout(api: KubeApi, namespace: str, name: str) -> RolloutStatus:
    """Abort: traffic back to stable, canary scaled down (as ``kubectl argo rollouts abort``)."""
    obj = api.patch(ObjectRef("argoproj.io/v1alpha1", "Rollout", namespace, name),
                    {"status": {"abort": True}}, subresource="status")
    return rollout_status(obj)


def retry_rollout(api: KubeApi, namespace: str, name: str) -> RolloutStatus:
    """Clear an abort so the controller tries the update again (``kubectl argo rollouts retry``)."""
    obj = api.patch(ObjectRef("argoproj.io/v1alpha1", "Rollout", namespace, name),
                    {"status": {"abort": False}}, subresource="status")
    return rollout_status(obj)


def promote_rollout(api: KubeApi, namespace: str, name: str, *, full: bool = False) -> RolloutStatus:
    """Resume a paused step, or with ``full`` skip the remaining steps (``promote [--full]``)."""
    ref = ObjectRef("argoproj.io/v1alpha1", "Rollout", namespace, name)
    if full:
        obj = api.patch(ref, {"status": {"promoteFull": True}}, subresource="status")
    else:
        api.patch(ref, {"spec": {"paused": False}})
        obj = api.patch(ref, {"status": {"pauseConditions": None}}, subresource="status")
    return rollout_status(obj)


# --------------------------------------------------------------------------- history (undo)

#: Argo Rollouts' annotations and labels on the ReplicaSets of a Rollout.
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
POD_TEMPLATE_HASH = "rollouts-pod-template-hash"


def replica_sets(api: KubeApi, rollout: Manifest) -> list[Manifest]:
    """The ReplicaSets the Rollout controls (its selector, and an ownerReference to its uid),
    newest revision first: the Rollout's history, as ``kubectl argo rollouts undo`` reads it."""
    meta = rollout.get("metadata", {})
    labels = rollout.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    owned = [rs for rs in api.list("apps/v1", "ReplicaSet", str(meta.get("namespace", "")), selector)
             if any(o.get("uid") == meta.get("uid") and o.get("controller")
                    for o in rs.get("metadata", {}).get("ownerReferences") or [])]
    return sorted(owned, key=lambda rs: -_revision(rs))


def _revision(rs: Manifest) -> int:
    try:
        return int((rs.get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION, "0"))
    except ValueError:
        return 0


def _template_version(template: Manifest) -> str | None:
    containers = template.get("spec", {}).get("containers") or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
    version = env.get("MLOPS_MODEL_VERSION")
    return str(version) if version else None


def stable_version(api: KubeApi, rollout: Manifest) -> str | None:
    """The model version the stable ReplicaSet (``status.stableRS``) runs, or None when unknown."""
    stable = (rollout.get("status") or {}).get("stableRS")
    if not stable:
        return None
    for rs in replica_sets(api, rollout):
        labels = rs.get("metadata", {}).get("labels") or {}
        if labels.get(POD_TEMPLATE_HASH) == stable:
            return _template_version(rs.get("spec", {}).get("template") or {})
    return None


def _without_hash(template: Manifest) -> Manifest:
    labels = {k: v for k, v in (template.get("metadata", {}).get("labels") or {}).items()
              if k != POD_TEMPLATE_HASH}
    return {**template, "metadata": {**template.get("metadata", {}), "labels": labels}}


def undo_rollout(api: KubeApi, namespace: str, name: str) -> tuple[str | None, RolloutStatus]:
    """``kubectl argo rollouts undo``: put the previous revision's pod template back in the Rollout.

    Like the plugin: the Rollout's ReplicaSets are its history; the second-newest
    revision's template (without the ``rollouts-pod-template-hash`` label) replaces
    ``spec.template`` with a JSON patch, and Argo rolls it out with the Rollout's own
    strategy. Returns (the version restored, the Rollout's status after the patch).
    """
    ref = ObjectRef("argoproj.io/v1alpha1", "Rollout", namespace, name)
    rollout = api.get(ref)
    if rollout is None:
        raise KubernetesError(f"{ref} does not exist", hint="apply the environment first")
    history = [rs for rs in replica_sets(api, rollout) if _revision(rs) > 0]
    if len(history) < 2:
        raise KubernetesError(f"{ref} has no previous revision to go back to "
                              f"({len(history)} ReplicaSet(s) in its history)",
                              hint="pin the version you want in git and apply")
    previous = _without_hash(history[1].get("spec", {}).get("template") or {})
    if _without_hash(rollout.get("spec", {}).get("template") or {}) == previous:
        return _template_version(previous), rollout_status(rollout)
    obj = api.patch(ref, [{"op": "replace", "path": "/spec/template", "value": previous}])
    return _template_version(previous), rollout_status(obj)
