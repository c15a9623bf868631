"""GitHub's REST API on 127.0.0.1, strict: every JSON body is validated against the
official OpenAPI schema in ``tests/assets/github/rest-api-subset.json`` (top-level
unknown keys rejected too) and a request to a path outside the subset is a 404.

Answers are the spec's own examples, with state kept where a flow needs it
(comments, reviews, PRs of a commit, refs, contents, pulls, deployments). Faults
(502, secondary rate limit, 404) are queued per method + path regex.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

SPEC_PATH = Path(__file__).parent.parent / "assets" / "github" / "rest-api-subset.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(path|ref)\\\}", r"(?P<\1>.+)", re.escape(template))
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


ROUTES = [(_compile(p), p, ops) for p, ops in SPEC["paths"].items()]


def example(template: str, method: str, status: str | None = None) -> tuple[int, Any]:
    responses = SPEC["paths"][template][method]["responses"]
    for code, resp in responses.items():
        if status is not None and code != status:
            continue
        if not code.startswith("2"):
            continue
        examples = (resp.get("content", {}).get("application/json", {}) or {}).get("examples") or {}
        if examples:
            return int(code), copy.deepcopy(next(iter(examples.values()))["value"])
        return int(code), None
    raise KeyError(f"no example for {method} {template}")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class State:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    commit_pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch -> sha
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (branch, path) -> text
    pulls: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    deployment_statuses: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1000


class _QuietServer(ThreadingHTTPServer):
    """Clients that drop the connection (the reliability suite's fault proxy) are not errors."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeGitHub:
    """Start with ``with FakeGitHub() as gh:``; ``gh.url`` is the API base URL."""

    def __init__(self, page_size: int = 2) -> None:
        self.state = State()
        self.requests: list[Recorded] = []
        self.rejected: list[str] = []
        self.faults: list[Fault] = []
        self.page_size = page_size
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base = ""  # scheme://host:port of the request being answered

    # ------------------------------------------------------------------ control
    def fault(self, method: str, path_regex: str, status: int, *, times: int = 1,
              headers: dict[str, str] | None = None, message: str = "fault") -> None:
        self.faults.append(Fault(method.upper(), re.compile(path_regex), status, headers or {},
                                 {"message": message}, times))

    def __enter__(self) -> FakeGitHub:
        server = _QuietServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def calls(self, method: str, fragment: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

    def new_id(self) -> int:
        self.state.next_id += 1
        return self.state.next_id

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, body: Any,
               headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            # Link headers name the host the client called (a proxy in front, as GitHub's do)
            self._base = f"http://{headers['Host']}" if headers.get("Host") else self.url
            self.requests.append(Recorded(method, path, query, body, headers))
            for f in self.faults:
                if f.times > 0 and f.method == method and f.path.search(path):
                    f.times -= 1
                    return f.status, f.body, f.headers
            for pattern, template, ops in ROUTES:
                m = pattern.match(path)
                if m is None:
                    continue
                op = ops.get(method.lower())
                if op is None:
                    return 405, {"message": f"{method} not allowed on {template}"}, {}
                schema = (op.get("requestBody", {}).get("content", {})
                          .get("application/json", {}) or {}).get("schema")
                if schema is not None:
                    strict = dict(schema, additionalProperties=False)
                    try:
                        jsonschema.validate(body, strict)
                    except jsonschema.ValidationError as exc:
                        self.rejected.append(f"{method} {template}: {exc.message}")
                        return 422, {"message": f"Invalid request: {exc.message}"}, {}
                elif body is not None:
                    self.rejected.append(f"{method} {template}: takes no body")
                    return 422, {"message": "this endpoint takes no body"}, {}
                return self.route(method, template, m.groupdict(), query, body)
            return 404, {"message": "Not Found (outside the API subset)"}, {}

    def _page(self, items: list[Any], path: str, query: dict[str, list[str]]
              ) -> tuple[int, Any, dict[str, str]]:
        page = int(query.get("page", ["1"])[0])
        per = min(int(query.get("per_page", ["30"])[0]), self.page_size)
        chunk = items[(page - 1) * per: page * per]
        headers = {}
        if page * per < len(items):
            headers["Link"] = f'<{self._base}{path}?page={page + 1}&per_page={per}>; rel="next"'
        return 200, chunk, headers

    def route(self, method: str, template: str, params: dict[str, str],
              query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        s = self.state
        key = (method, template.removeprefix("/repos/{owner}/{repo}"))
        if key == ("GET", "/issues/{issue_number}/comments"):
            items = s.comments.get(int(params["issue_number"]), [])
            real = f"/repos/{params['owner']}/{params['repo']}/issues/{params['issue_number']}/comments"
            return self._page(items, real, query)
        if key == ("POST", "/issues/{issue_number}/comments"):
            number = int(params["issue_number"])
            if number not in s.comments:
                return 404, {"message": "Not Found"}, {}
            code, c = example(template, "post")
            c.update(id=self.new_id(), body=body["body"])
            c["html_url"] = f"https://github.com/{params['owner']}/{params['repo']}/pull/{number}#c{c['id']}"
            s.comments[number].append(c)
            return code, c, {}
        if key == ("PATCH", "/issues/comments/{comment_id}"):
            cid = int(params["comment_id"])
            for items in s.comments.values():
                for c in items:
                    if c["id"] == cid:
                        c["body"] = body["body"]
                        return 200, c, {}
            return 404, {"message": "Not Found"}, {}
        if key == ("GET", "/pulls/{pull_number}/reviews"):
            real = f"/repos/{params['owner']}/{params['repo']}/pulls/{params['pull_number']}/reviews"
            return self._page(s.reviews.get(int(params["pull_number"]), []), real, query)
        if key == ("GET", "/commits/{commit_sha}/pulls"):
            return 200, s.commit_pulls.get(params["commit_sha"], []), {}
        if key == ("GET", "/git/ref/{ref}"):
            branch = params["ref"].removeprefix("heads/")
            if branch not in s.refs:
                return 404, {"message": "Not Found"}, {}
            code, data = example(template, "get")
            data["ref"] = f"refs/heads/{branch}"
            data["object"]["sha"] = s.refs[branch]
            return code, data, {}
        if key == ("POST", "/git/refs"):
            branch = body["ref"].removeprefix("refs/heads/")
            if branch in s.refs:
                return 422, {"message": "Reference already exists"}, {}
            s.refs[branch] = body["sha"]
            code, data = example(template, "post")
            data["ref"] = body["ref"]
            return code, data, {}
        if key == ("GET", "/contents/{path}"):
            ref = query.get("ref", ["main"])[0]
            text = s.files.get((ref, params["path"]))
            if text is None:
                return 404, {"message": "Not Found"}, {}
            code, data = example(template, "get")
            data.update(type="file", path=params["path"], sha=f"blob-{hash(text) & 0xffffffff:x}",
                        content=base64.b64encode(text.encode()).decode(), encoding="base64")
            return code, data, {}
        if key == ("PUT", "/contents/{path}"):
            branch = body.get("branch", "main")
            old = s.files.get((branch, params["path"]))
            if old is not None and body.get("sha") != f"blob-{hash(old) & 0xffffffff:x}":
                return 409, {"message": "sha does not match"}, {}
            s.files[(branch, params["path"])] = base64.b64decode(body["content"]).decode()
            code, data = example(template, "put", "200" if old is not None else "201")
            return code, data, {}
        if key == ("GET", "/pulls"):  # filtered by head (owner:branch) and base, as GitHub does
            head = query.get("head", [""])[0].split(":")[-1]
            base = query.get("base", [""])[0]
            return 200, [p for p in s.pulls if (not head or p["head"]["ref"] == head)
                         and (not base or p["base"]["ref"] == base)], {}
        if key == ("POST", "/pulls"):
            if any(p["head"]["ref"] == body["head"] and p["base"]["ref"] == body["base"] for p in s.pulls):
                return 422, {"message": f"A pull request already exists for {body['head']}."}, {}
            code, data = example(template, "post")
            data.update(number=len(s.pulls) + 100, title=body.get("title"), body=body.get("body"))
            data["head"]["ref"] = body["head"]
            data["base"]["ref"] = body["base"]
            data["html_url"] = f"https://github.com/{params['owner']}/{params['repo']}/pull/{data['number']}"
            s.pulls.append(data)
            s.comments.setdefault(data["number"], [])
            return code, data, {}
        if key == ("GET", "/deployments"):  # filtered by ref and environment, newest first
            ref, env = query.get("ref", [""])[0], query.get("environment", [""])[0]
            return 200, [d for d in reversed(s.deployments) if (not ref or d["ref"] == ref)
                         and (not env or d["environment"] == env)], {}
        if key == ("POST", "/deployments"):
            code, data = example(template, "post", "201")
            data.update(id=self.new_id(), ref=body["ref"], environment=body.get("environment", "production"),
                        payload=body.get("payload", {}))
            s.deployments.append(data)
            return code, data, {}
        if key == ("POST", "/deployments/{deployment_id}/statuses"):
            if not any(d["id"] == int(params["deployment_id"]) for d in s.deployments):
                return 404, {"message": "Not Found"}, {}
            code, data = example(template, "post")
            data.update(state=body["state"], description=body.get("description", ""))
            s.deployment_statuses.append(data)
            return code, data, {}
        if key == ("POST", "/statuses/{sha}"):
            s.statuses.append(dict(body, sha=params["sha"]))
        if key == ("POST", "/check-runs"):
            s.check_runs.append(body)
        if key == ("POST", "/issues"):
            s.issues.append(body)
        code, data = example(template, method.lower())
        return code, data, {}


def _handler(gh: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._send(400, {"message": "Problems parsing JSON"}, {})
                    return
            status, data, headers = gh.handle(self.command, self.path, body, dict(self.headers))
            self._send(status, data, headers)

        def _send(self, status: int, data: Any, headers: dict[str, str]) -> None:
            payload = b"" if data is None else json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _do

    return Handler


def review(user: str, state: str, rid: int) -> dict[str, Any]:
    """A review as the API lists it (the spec's example, with user and state changed)."""
    data = example("/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "get")[1][0]
    data.update(id=rid, state=state)
    data["user"] = dict(data["user"], login=user)
    return data


def iter_rejections(gh: FakeGitHub) -> Iterator[str]:
    yield from gh.rejected
