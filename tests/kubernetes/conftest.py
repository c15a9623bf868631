"""Fixtures for the Kubernetes target: schemas, example repository, and a loopback API server.

The fake API server speaks the handful of Kubernetes REST endpoints the target
uses, the way the real one answers them: server-side apply (PATCH with
``application/apply-patch+yaml``, ``fieldManager``, ``force``, ``dryRun=All``,
409 ``FieldManagerConflict`` Status bodies), GET / list with label selectors,
DELETE, JSON merge patch on ``/status``, and watch streams (one JSON event per
line). Every applied object is validated against the same JSON Schemas as the
renderer's output (422 ``Invalid`` otherwise). A tiny "controller" moves a
Rollout's status along a script given by the test.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from jsonschema.validators import validator_for

from mlops_actions.deploy.targets.kubernetes.interface import ResolvedVersion

ASSETS = Path(__file__).parent.parent / "assets" / "kubernetes"
REPO = ASSETS / "repo"
SCHEMAS = ASSETS / "schemas"
GOLDEN = ASSETS / "golden"
TOKEN = "test-token"

_PLURAL_KIND = {"services": "Service", "configmaps": "ConfigMap", "deployments": "Deployment",
                "replicasets": "ReplicaSet",
                "rollouts": "Rollout", "analysistemplates": "AnalysisTemplate", "httproutes": "HTTPRoute"}
_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                   r"/namespaces/(?P<ns>[^/]+)/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?$")

_VALIDATORS: dict[str, Any] = {}


def validator(api_version: str, kind: str) -> Any:
    """The JSON Schema validator of one kind (from tests/assets/kubernetes/schemas)."""
    key = f"{api_version.replace('/', '-')}-{kind}"
    if key not in _VALIDATORS:
        schema = json.loads((SCHEMAS / f"{key}.json").read_text())
        cls = validator_for(schema)
        cls.check_schema(schema)
        _VALIDATORS[key] = cls(schema)
    return _VALIDATORS[key]


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    v = validator(manifest["apiVersion"], manifest["kind"])
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in sorted(v.iter_errors(manifest), key=lambda e: list(e.absolute_path))]


def fake_resolve(key: str, spec: Any, version: str) -> ResolvedVersion:
    """Deterministic stand-in for the registry: registry version = patch + 10."""
    registry_version = str(int(version.split(".")[2].split("-")[0]) + 10)
    return ResolvedVersion(spec.name, version, f"models:/{spec.name}/{registry_version}", registry_version)


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure" if code >= 400 else "Success",
                            "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


def _not_found(m: re.Match[str], name: str) -> dict[str, Any]:
    """What kube-apiserver answers for an object that does not exist: ``details`` name the
    object (``k8s.io/apimachinery`` ``errors.NewNotFound``); a path it does not serve at all gets
    "the server could not find the requested resource" with empty ``details``."""
    group, plural = m.group("group") or "", m.group("plural")
    resource = f"{plural}.{group}" if group else plural
    return _status(404, "NotFound", f'{resource} "{name}" not found',
                   {"name": name, "group": group, "kind": plural})


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    out = copy.deepcopy(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _get_path(obj: Any, dotted: str) -> Any:
    for part in dotted.strip(".").split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


@dataclass
class FakeCluster:
    """State of the fake API server; tests arrange it and read it back."""

    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    #: (kind, ns, name) -> (manager, field path like ".spec.replicas") owned by someone else
    owned: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    #: Rollout name -> statuses the "controller" walks through, one per watch event
    scripts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: also advance a Rollout's script by one status on each GET of it (a controller that moves
    #: between the polls of ``apply --wait``), not only on watch events
    advance_on_get: bool = False
    #: API groups whose CRDs are not installed
    missing_groups: set[str] = field(default_factory=set)
    #: namespaces that do not exist (writes there answer 404 like the API server)
    missing_namespaces: set[str] = field(default_factory=set)
    #: (kind, name) whose real (non dry-run) apply fails with 500
    fail_apply: set[tuple[str, str]] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: every object written by a (non dry-run) apply, in order
    applied: list[dict[str, Any]] = field(default_factory=list)
    resource_version: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        for (_, k, n, nm), obj in self.objects.items():
            if (k, n, nm) == (kind, ns, name):
                return obj
        return None

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("PATCH", "DELETE", "POST", "PUT")
                and "dryRun=All" not in r[1]]

    def _next_rv(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def revision(self, rollout: dict[str, Any]) -> str:
        """What Argo does when a Rollout's pod template changes: a ReplicaSet per template (named
        by its hash, owned by the Rollout), whose ``rollout.argoproj.io/revision`` becomes the
        newest; a template seen before gets its old ReplicaSet back with a new revision."""
        meta = rollout["metadata"]
        template = rollout["spec"]["template"]
        pod_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        owned = [o for (_, k, ns, _), o in self.objects.items()
                 if k == "ReplicaSet" and ns == meta["namespace"]
                 and o["metadata"]["ownerReferences"][0]["uid"] == meta["uid"]]
        newest = max((int(o["metadata"]["annotations"]["rollout.argoproj.io/revision"]) for o in owned),
                     default=0)
        mine = next((o for o in owned if o["metadata"]["labels"]["rollouts-pod-template-hash"] == pod_hash),
                    None)
        if mine is not None:
            if int(mine["metadata"]["annotations"]["rollout.argoproj.io/revision"]) != newest:
                mine["metadata"]["annotations"]["rollout.argoproj.io/revision"] = str(newest + 1)
                mine["metadata"]["resourceVersion"] = self._next_rv()
            return pod_hash
        labels = {**template["metadata"]["labels"], "rollouts-pod-template-hash": pod_hash}
        name = f"{meta['name']}-{pod_hash}"
        self.objects[("apps/v1", "ReplicaSet", meta["namespace"], name)] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels, "uid": f"uid-{name}",
                         "resourceVersion": self._next_rv(),
                         "annotations": {"rollout.argoproj.io/revision": str(newest + 1)},
                         "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                              "name": meta["name"], "uid": meta["uid"], "controller": True}]},
            "spec": {"replicas": rollout["spec"].get("replicas", 1),
                     "selector": {"matchLabels": {**rollout["spec"]["selector"]["matchLabels"],
                                                  "rollouts-pod-template-hash": pod_hash}},
                     "template": {**template, "metadata": {**template["metadata"], "labels": labels}}},
        }
        return pod_hash

    def step_script(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """The controller moves a Rollout to the next scripted status (keeping its ReplicaSet hashes)."""
        hashes = {k: v for k, v in (obj.get("status") or {}).items() if k in ("stableRS", "currentPodHash")}
        if status.get("phase") == "Healthy" and "currentPodHash" in hashes:
            hashes["stableRS"] = hashes["currentPodHash"]  # promoted: the new ReplicaSet is stable
        obj["status"] = {**hashes, **status, "observedGeneration": str(obj["metadata"]["generation"])}
        obj["metadata"]["resourceVersion"] = self._next_rv()

    def settle(self, obj: dict[str, Any]) -> None:
        """What a fast controller does right away when no script is given."""
        gen = obj["metadata"]["generation"]
        if obj["kind"] == "Rollout":
            pod_hash = self.revision(obj)
            obj["status"] = {"phase": "Healthy", "observedGeneration": str(gen), "stableRS": pod_hash,
                             "currentPodHash": pod_hash, "message": ""}
        elif obj["kind"] == "Deployment":
            n = obj["spec"].get("replicas", 1)
            obj["status"] = {"observedGeneration": gen, "replicas": n, "availableReplicas": n,
                             "updatedReplicas": n, "readyReplicas": n}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[re.Match[str], dict[str, list[str]]] | None:
        url = urlparse(self.path)
        self.server.cluster.requests.append((self.command, self.path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            return None
        m = _PATH.match(url.path)
        if not m or m.group("plural") not in _PLURAL_KIND:
            self._send(404, _status(404, "NotFound", "the server could not find the requested resource", {}))
            return None
        if m.group("group") in self.server.cluster.missing_groups:
            self._send(404, _status(404, "NotFound", "the server could not find the requested resource", {}))
            return None
        return m, parse_qs(url.query)

    @staticmethod
    def _key(m: re.Match[str], name: str | None = None) -> tuple[str, str, str, str]:
        api_version = m.group("core") or f"{m.group('group')}/{m.group('version')}"
        return api_version, _PLURAL_KIND[m.group("plural")], m.group("ns"), name or m.group("name") or ""

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        routed = self._route()
        if routed is None:
            return
        m, q = routed
        cluster = self.server.cluster
        key = self._key(m)
        if m.group("name"):
            with cluster.lock:
                obj = cluster.objects.get(key)
                script = cluster.scripts.get(key[3]) if key[1] == "Rollout" else None
                if obj is not None and script and cluster.advance_on_get:
                    cluster.step_script(obj, script.pop(0))
            if obj is None:
                self._send(404, _not_found(m, key[3]))
            else:
                self._send(200, obj)
            return
        if q.get("watch") == ["1"]:
            self._watch(key, q)
            return
        wanted = dict(p.split("=", 1) for p in q.get("labelSelector", [""])[0].split(",") if p)
        with cluster.lock:
            items = [o for (av, k, ns, _), o in sorted(cluster.objects.items())
                     if (av, k, ns) == key[:3]
                     and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in wanted.items())]
        self._send(200, {"kind": f"{key[1]}List", "apiVersion": key[0], "metadata": {}, "items": items})

    def _watch(self, key: tuple[str, str, str, str], q: dict[str, list[str]]) -> None:
        cluster = self.server.cluster
        name = q["fieldSelector"][0].split("=", 1)[1]
        timeout = float(q.get("timeoutSeconds", ["5"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        deadline = time.monotonic() + min(timeout, 5.0)
        script = cluster.scripts.get(name, [])
        while script and time.monotonic() < deadline:
            time.sleep(0.05)
            with cluster.lock:
                obj = cluster.objects[(key[0], key[1], key[2], name)]
                cluster.step_script(obj, script.pop(0))
                event = {"type": "MODIFIED", "object": obj}
                line = json.dumps(event).encode() + b"\n"
            self.wfile.write(line)
            self.wfile.flush()
        # a real watch stays open until timeoutSeconds; a short hold is enough here
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def do_DELETE(self) -> None:
        routed = self._route()
        if routed is None:
            return
        m, _ = routed
        self._body()
        with self.server.cluster.lock:
            obj = self.server.cluster.objects.pop(self._key(m), None)
        if obj is None:
            self._send(404, _not_found(m, self._key(m)[3]))
        else:
            self._send(200, _status(200, "", "deleted"))

    def do_PATCH(self) -> None:
        routed = self._route()
        if routed is None:
            return
        m, q = routed
        body = self._body()
        ctype = self.headers.get("Content-Type", "")
        if ctype == "application/apply-patch+yaml":
            self._apply(m, q, body)
        elif ctype == "application/merge-patch+json":
            self._merge_patch(m, body)
        elif ctype == "application/json-patch+json":
            self._json_patch(m, body)
        else:
            self._send(415, _status(415, "UnsupportedMediaType", f"unsupported media type {ctype!r}"))

    def _merge_patch(self, m: re.Match[str], body: dict[str, Any]) -> None:
        cluster = self.server.cluster
        key = self._key(m)
        with cluster.lock:
            obj = cluster.objects.get(key)
            if obj is None:
                self._send(404, _not_found(m, self._key(m)[3]))
                return
            if m.group("sub") == "status":
                obj["status"] = _merge(obj.get("status") or {}, body.get("status") or {})
                st = obj["status"]
                if st.get("abort"):  # Argo: abort -> traffic back to stable, Degraded
                    revision = obj["metadata"]["generation"]
                    st.update(phase="Degraded",
                              message=f"RolloutAborted: Rollout aborted update to revision {revision}")
                elif st.pop("promoteFull", False) or ("pauseConditions" in (body.get("status") or {})):
                    st.update(phase="Healthy", message="")
                    st.pop("pauseConditions", None)
            else:
                before = obj.get("spec")
                obj.update(_merge(obj, {k: v for k, v in body.items() if k != "status"}))
                if obj.get("spec") != before:
                    obj["metadata"]["generation"] += 1
            obj["metadata"]["resourceVersion"] = cluster._next_rv()
            self._send(200, obj)

    def _json_patch(self, m: re.Match[str], ops: list[dict[str, Any]]) -> None:
        """RFC 6902 ``replace`` (all undo needs); a new pod template is a new revision."""
        cluster = self.server.cluster
        key = self._key(m)
        with cluster.lock:
            obj = cluster.objects.get(key)
            if obj is None:
                self._send(404, _not_found(m, self._key(m)[3]))
                return
            new = copy.deepcopy(obj)
            for op in ops:
                *parents, last = [p for p in op["path"].split("/") if p]
                node = new
                for part in parents:
                    node = node[part]
                if op["op"] != "replace" or last not in node:
                    self._send(422, _status(422, "Invalid", f"unsupported op {op}"))
                    return
                node[last] = copy.deepcopy(op["value"])
            if new.get("spec") != obj.get("spec"):
                new["metadata"]["generation"] += 1
                if key[1] == "Rollout":
                    errors = schema_errors({k: v for k, v in new.items() if k != "status"})
                    if errors:
                        self._send(422, _status(422, "Invalid", errors[0]))
                        return
                    cluster.settle(new)
            new["metadata"]["resourceVersion"] = cluster._next_rv()
            cluster.objects[key] = new
            self._send(200, new)

    def _apply(self, m: re.Match[str], q: dict[str, list[str]], body: dict[str, Any]) -> None:
        cluster = self.server.cluster
        key = self._key(m)
        manager = q.get("fieldManager", [""])[0]
        if not manager:
            self._send(400, _status(400, "BadRequest", "PATCH apply requires fieldManager"))
            return
        if (body.get("apiVersion"), body.get("kind"), body.get("metadata", {}).get("name"),
                body.get("metadata", {}).get("namespace")) != (key[0], key[1], key[3], key[2]):
            self._send(400, _status(400, "BadRequest", "the body does not match the URL"))
            return
        errors = schema_errors(body)
        if errors:
            self._send(422, _status(422, "Invalid", f'{key[1]} "{key[3]}" is invalid: {errors[0]}'))
            return
        if key[2] in cluster.missing_namespaces:
            self._send(404, _status(404, "NotFound", f'namespaces "{key[2]}" not found',
                                    {"name": key[2], "kind": "namespaces"}))
            return
        dry = q.get("dryRun") == ["All"]
        force = q.get("force") == ["true"]
        with cluster.lock:
            live = cluster.objects.get(key)
            owner = cluster.owned.get((key[1], key[2], key[3]))
            if live is not None and owner and not force:
                other, path = owner
                if _get_path(body, path) is not None and _get_path(body, path) != _get_path(live, path):
                    cause = f'conflict with "{other}" using {key[0]}'
                    message = f"Apply failed with 1 conflict: {cause}: {path}"
                    self._send(409, _status(409, "Conflict", message, {"causes": [
                        {"reason": "FieldManagerConflict", "message": cause, "field": path}]}))
                    return
            if not dry and (key[1], key[3]) in cluster.fail_apply:
                self._send(500, _status(500, "InternalError", "etcdserver: request timed out"))
                return
            new = copy.deepcopy(body)
            meta = new["metadata"]
            if live is None:
                meta.update(uid=f"uid-{key[3]}", generation=1, creationTimestamp="2026-01-01T00:00:00Z")
            else:
                lm = live["metadata"]
                meta.update(uid=lm["uid"], creationTimestamp=lm["creationTimestamp"],
                            generation=lm["generation"])
                if "status" in live:
                    new["status"] = live["status"]
            meta["managedFields"] = [{"manager": manager, "operation": "Apply", "apiVersion": key[0]}]
            spec_changed = live is None or live.get("spec") != new.get("spec")
            changed = spec_changed or live is None or \
                (live["metadata"].get("labels"), live["metadata"].get("annotations")) != \
                (meta.get("labels"), meta.get("annotations"))
            if live is not None and spec_changed:
                meta["generation"] += 1
            meta["resourceVersion"] = cluster._next_rv() if changed else live["metadata"]["resourceVersion"]
            if dry:
                self._send(200, new)
                return
            if spec_changed:
                if key[1] == "Rollout" and key[3] in cluster.scripts:
                    stable = ((live or {}).get("status") or {}).get("stableRS")
                    new["status"] = {"phase": "Progressing", "message": "more replicas need to be updated",
                                     "observedGeneration": str(meta["generation"]),
                                     "currentPodHash": cluster.revision(new),
                                     **({"stableRS": stable} if stable else {})}
                else:
                    cluster.settle(new)
            cluster.objects[key] = new
            cluster.applied.append(copy.deepcopy(new))
            self._send(200, new)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cluster: FakeCluster


@dataclass
class FakeApiServer:
    cluster: FakeCluster
    url: str
    kubeconfig: Path


@pytest.fixture()
def api_server(tmp_path: Path) -> Iterator[FakeApiServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.cluster = FakeCluster()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {"token": TOKEN}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
    }))
    try:
        yield FakeApiServer(server.cluster, url, kubeconfig)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
