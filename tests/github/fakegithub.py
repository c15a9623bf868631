"""GitHub's REST API on 127.0.0.1, as strict as GitHub.

Every JSON body is validated against the official OpenAPI description in
``tests/assets/github/rest-api-subset.json`` (``@octokit/openapi`` 23.0.2,
``generated/api.github.com.deref.json``; unknown top-level keys rejected too) and a
request to a path outside the subset is a 404. Answers start from the spec's own
examples, with state kept where a flow needs it.

Error bodies are GitHub's (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
and the ``responses`` of the spec): ``{"message", "documentation_url", "status"}``, and for
422 an ``errors`` list whose items carry ``resource``, ``field``, ``code`` and, for
``code: custom``, the human ``message`` (e.g. a second PR for one branch:
``{"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom",
"message": "A pull request already exists for octo:branch."}]}``). Tokens: with
``tokens`` given, an unknown token is 401 "Bad credentials" and a read-only one (a fork
PR's ``GITHUB_TOKEN``) gets 403 "Resource not accessible by integration" on every write.
A repository's ``GITHUB_TOKEN`` (``write`` or ``read``) cannot read organization teams
either: 403 there too; an ``app`` token (a GitHub App or PAT with members:read) can. Team
membership is 200 with ``state`` active or pending, and 404 for a non-member, as on GitHub.

Git is modelled as GitHub does it: a commit through the contents API moves the branch
to a new commit whose parent is the old head; blob SHAs are git's; a ref update that is
not a fast-forward needs ``force``. Faults (502, secondary rate limit, 404) are queued
per method + path regex.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema

SPEC_PATH = Path(__file__).parent.parent / "assets" / "github" / "rest-api-subset.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
DOCS = "https://docs.github.com/rest"


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(path|ref)\\\}", r"(?P<\1>.+)", re.escape(template))
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


# most specific first: /git/refs/{ref} must not swallow /git/refs
ROUTES = sorted(((_compile(p), p, ops) for p, ops in SPEC["paths"].items()),
                key=lambda r: (r[1].count("{path}") + r[1].count("{ref}"), -len(r[1])))


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


def error(status: int, message: str, doc: str = DOCS, errors: list[dict[str, Any]] | None = None
          ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """An error answer shaped as GitHub's."""
    body: dict[str, Any] = {"message": message, "documentation_url": doc, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return status, body, {}


def not_found() -> tuple[int, dict[str, Any], dict[str, str]]:
    return error(404, "Not Found")


def validation_failed(doc: str, *errors: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    return error(422, "Validation Failed", doc, list(errors))


def blob_sha(text: str) -> str:
    data = text.encode("utf-8")
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


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
    status: int = 0


@dataclass
class State:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    commit_pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch -> sha
    parents: dict[str, str | None] = field(default_factory=dict)  # commit -> parent (fake commits)
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (branch, path) -> text
    pulls: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    deployment_statuses: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # repository labels by name
    issue_labels: dict[int, list[str]] = field(default_factory=dict)
    permissions: dict[str, str] = field(default_factory=dict)  # login -> admin|write|read|none
    teams: dict[str, dict[str, str]] = field(default_factory=dict)  # org/team -> login -> active|pending
    next_id: int = 1000


class _QuietServer(ThreadingHTTPServer):
    """Clients that drop the connection (the reliability suite's fault proxy) are not errors."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeGitHub:
    """Start with ``with FakeGitHub() as gh:``; ``gh.url`` is the API base URL.

    ``tokens``: token -> ``"write"``, ``"read"`` or ``"app"`` (writes, and reads org teams);
    None accepts any token as an app token (unit tests of the client), a mapping enforces
    GitHub's 401/403 answers.
    """

    def __init__(self, page_size: int = 2, tokens: dict[str, str] | None = None) -> None:
        self.state = State()
        self.requests: list[Recorded] = []
        self.rejected: list[str] = []
        self.faults: list[Fault] = []
        self.page_size = page_size
        self.tokens = tokens
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base = ""  # scheme://host:port of the request being answered
        self._commits = 0

    # ------------------------------------------------------------------ control
    def fault(self, method: str, path_regex: str, status: int, *, times: int = 1,
              headers: dict[str, str] | None = None, message: str = "fault") -> None:
        self.faults.append(Fault(method.upper(), re.compile(path_regex), status, headers or {},
                                 {"message": message, "documentation_url": DOCS, "status": str(status)},
                                 times))

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

    def seed_branch(self, branch: str, sha: str, files: dict[str, str]) -> None:
        """A branch as the repository has it (the harness mirrors its git repository here)."""
        with self.lock:
            self.state.refs[branch] = sha
            self.state.parents.setdefault(sha, None)
            for key in [k for k in self.state.files if k[0] == branch]:
                del self.state.files[key]
            for path, text in files.items():
                self.state.files[(branch, path)] = text

    def statuses_for(self, sha: str) -> list[dict[str, Any]]:
        return [s for s in self.state.statuses if s["sha"] == sha]

    def deployment_history(self, environment: str) -> list[tuple[int, list[str]]]:
        """(deployment id, its status states oldest first) per Deployment to ``environment``."""
        return [(d["id"], [s["state"] for s in self.state.deployment_statuses
                           if s["deployment_id"] == d["id"]])
                for d in self.state.deployments if d["environment"] == environment]

    def _commit(self, branch: str) -> str:
        """A new commit on ``branch`` (its parent the branch's head); returns its SHA."""
        self._commits += 1
        parent = self.state.refs.get(branch)
        sha = hashlib.sha1(f"{parent}:{branch}:{self._commits}".encode(), usedforsecurity=False).hexdigest()
        self.state.parents[sha] = parent
        self.state.refs[branch] = sha
        return sha

    def _known(self) -> set[str]:
        return set(self.state.parents) | set(self.state.refs.values())

    def _ancestors(self, sha: str) -> set[str]:
        seen: set[str] = set()
        cur: str | None = sha
        while cur is not None and cur not in seen:
            seen.add(cur)
            cur = self.state.parents.get(cur)
        return seen

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, body: Any,
               headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            # Link headers name the host the client called (a proxy in front, as GitHub's do)
            self._base = f"http://{headers['Host']}" if headers.get("Host") else self.url
            record = Recorded(method, path, query, body, headers)
            self.requests.append(record)
            answer = self._answer(method, path, query, body, headers)
            record.status = answer[0]
            return answer

    def _answer(self, method: str, path: str, query: dict[str, list[str]], body: Any,
                headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        for f in self.faults:
            if f.times > 0 and f.method == method and f.path.search(path):
                f.times -= 1
                return f.status, f.body, f.headers
        if self.tokens is not None:
            auth = headers.get("Authorization", "")
            token = auth.split(" ", 1)[1] if " " in auth else ""
            access = self.tokens.get(token)
            if access is None:
                return error(401, "Bad credentials")
            if access not in ("write", "app") and method != "GET":
                return error(403, "Resource not accessible by integration")
            if access != "app" and path.startswith("/orgs/"):  # no organization permissions
                return error(403, "Resource not accessible by integration")
        for pattern, template, ops in ROUTES:
            m = pattern.match(path)
            if m is None:
                continue
            op = ops.get(method.lower())
            if op is None:
                return error(404, "Not Found")
            schema = (op.get("requestBody", {}).get("content", {})
                      .get("application/json", {}) or {}).get("schema")
            if schema is not None:
                strict = dict(schema, additionalProperties=False) if "properties" in schema else schema
                try:
                    jsonschema.validate(body, strict)
                except jsonschema.ValidationError as exc:
                    self.rejected.append(f"{method} {template}: {exc.message}")
                    return error(422, f"Invalid request.\n\n{exc.message}")
            elif body is not None:
                self.rejected.append(f"{method} {template}: takes no body")
                return error(400, "Problems parsing JSON")
            params = {k: unquote(v) for k, v in m.groupdict().items()}
            return self.route(method, template, params, query, body)
        return error(404, "Not Found")

    def _page(self, items: list[Any], path: str, query: dict[str, list[str]]
              ) -> tuple[int, Any, dict[str, str]]:
        page = int(query.get("page", ["1"])[0])
        per = min(int(query.get("per_page", ["30"])[0]), self.page_size)
        chunk = items[(page - 1) * per: page * per]
        headers = {}
        if page * per < len(items):
            headers["Link"] = f'<{self._base}{path}?page={page + 1}&per_page={per}>; rel="next"'
        return 200, chunk, headers

    def _pull(self, number: int) -> dict[str, Any] | None:
        return next((p for p in self.state.pulls if p["number"] == number), None)

    def route(self, method: str, template: str, params: dict[str, str],
              query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        s = self.state
        key = (method, template.removeprefix("/repos/{owner}/{repo}"))
        repo = f"{params.get('owner')}/{params.get('repo')}"
        if key == ("GET", "/issues/{issue_number}/comments"):
            items = s.comments.get(int(params["issue_number"]), [])
            real = f"/repos/{repo}/issues/{params['issue_number']}/comments"
            return self._page(items, real, query)
        if key == ("POST", "/issues/{issue_number}/comments"):
            number = int(params["issue_number"])
            if number not in s.comments:
                return not_found()
            code, c = example(template, "post")
            c.update(id=self.new_id(), body=body["body"])
            c["html_url"] = f"https://github.com/{repo}/pull/{number}#issuecomment-{c['id']}"
            s.comments[number].append(c)
            return code, c, {}
        if key == ("PATCH", "/issues/comments/{comment_id}"):
            cid = int(params["comment_id"])
            for items in s.comments.values():
                for c in items:
                    if c["id"] == cid:
                        c["body"] = body["body"]
                        return 200, c, {}
            return not_found()
        if key == ("GET", "/pulls/{pull_number}/reviews"):
            real = f"/repos/{repo}/pulls/{params['pull_number']}/reviews"
            return self._page(s.reviews.get(int(params["pull_number"]), []), real, query)
        if key == ("GET", "/commits/{commit_sha}/pulls"):
            return 200, s.commit_pulls.get(params["commit_sha"], []), {}
        if key == ("GET", "/git/ref/{ref}"):
            branch = params["ref"].removeprefix("heads/")
            if branch not in s.refs:
                return not_found()
            code, data = example(template, "get")
            data["ref"] = f"refs/heads/{branch}"
            data["object"]["sha"] = s.refs[branch]
            return code, data, {}
        if key == ("POST", "/git/refs"):
            doc = "https://docs.github.com/rest/git/refs#create-a-reference"
            branch = body["ref"].removeprefix("refs/heads/")
            if not body["ref"].startswith("refs/") or body["ref"].count("/") < 2:
                return error(422, "Reference name must start with 'refs/' and have at least two slashes.",
                             doc)
            if branch in s.refs:
                return error(422, "Reference already exists", doc)
            if body["sha"] not in self._known():
                return error(422, "Object does not exist", doc)
            source = next((k for k, v in s.refs.items() if v == body["sha"]), None)
            s.refs[branch] = body["sha"]
            s.parents.setdefault(body["sha"], None)
            for (b, p), text in list(s.files.items()):  # the new branch has the commit's files
                if b == source:
                    s.files[(branch, p)] = text
            code, data = example(template, "post")
            data["ref"] = body["ref"]
            data["object"]["sha"] = body["sha"]
            return code, data, {}
        if key == ("PATCH", "/git/refs/{ref}"):
            doc = "https://docs.github.com/rest/git/refs#update-a-reference"
            branch = params["ref"].removeprefix("heads/")
            if branch not in s.refs:
                return error(422, "Reference does not exist", doc)
            if body["sha"] not in self._known():
                return error(422, "Object does not exist", doc)
            if not body.get("force") and s.refs[branch] not in self._ancestors(body["sha"]):
                return error(422, "Update is not a fast forward", doc)
            source = next((k for k, v in s.refs.items() if v == body["sha"]), None)
            s.refs[branch] = body["sha"]
            if source is not None:
                for k in [k for k in s.files if k[0] == branch]:
                    del s.files[k]
                for (b, p), text in list(s.files.items()):
                    if b == source:
                        s.files[(branch, p)] = text
            code, data = example("/repos/{owner}/{repo}/git/ref/{ref}", "get")
            data["ref"] = f"refs/heads/{branch}"
            data["object"]["sha"] = body["sha"]
            return 200, data, {}
        if key == ("GET", "/contents/{path}"):
            ref = query.get("ref", ["main"])[0]
            text = s.files.get((ref, params["path"]))
            if text is None:
                return not_found()
            code, data = example(template, "get")
            data.update(type="file", path=params["path"], sha=blob_sha(text),
                        name=params["path"].rsplit("/")[-1], encoding="base64",
                        content=base64.b64encode(text.encode()).decode())
            return code, data, {}
        if key == ("PUT", "/contents/{path}"):
            doc = "https://docs.github.com/rest/repos/contents#create-or-update-file-contents"
            branch = body.get("branch", "main")
            if branch not in s.refs:
                return error(404, f"Branch {branch} not found", doc)
            old = s.files.get((branch, params["path"]))
            if old is not None and body.get("sha") is None:
                return validation_failed(doc, {"resource": "Commit", "field": "sha", "code": "missing"})
            if old is not None and body.get("sha") != blob_sha(old):
                return error(409, f"{params['path']} does not match {body.get('sha')}", doc)
            s.files[(branch, params["path"])] = base64.b64decode(body["content"]).decode()
            commit = self._commit(branch)
            code, data = example(template, "put", "200" if old is not None else "201")
            data["commit"]["sha"] = commit
            data["content"]["sha"] = blob_sha(s.files[(branch, params["path"])])
            return code, data, {}
        if key == ("GET", "/pulls"):  # filtered by head (owner:branch), base and state, as GitHub does
            head = query.get("head", [""])[0].split(":")[-1]
            base = query.get("base", [""])[0]
            state = query.get("state", ["open"])[0]
            return 200, [p for p in s.pulls if (not head or p["head"]["ref"] == head)
                         and (not base or p["base"]["ref"] == base)
                         and (state == "all" or p["state"] == state)], {}
        if key == ("GET", "/pulls/{pull_number}"):
            pr = self._pull(int(params["pull_number"]))
            return (200, pr, {}) if pr is not None else not_found()
        if key == ("PATCH", "/pulls/{pull_number}"):
            pr = self._pull(int(params["pull_number"]))
            if pr is None:
                return not_found()
            pr.update({k: body[k] for k in ("title", "body", "state") if k in body})
            return 200, pr, {}
        if key == ("POST", "/pulls"):
            doc = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
            head, base = body["head"].split(":")[-1], body["base"]
            if head not in s.refs:
                return validation_failed(doc, {"resource": "PullRequest", "field": "head", "code": "invalid"})
            if base not in s.refs:
                return validation_failed(doc, {"resource": "PullRequest", "field": "base", "code": "invalid"})
            if any(p["head"]["ref"] == head and p["base"]["ref"] == base and p["state"] == "open"
                   for p in s.pulls):
                return validation_failed(doc, {"resource": "PullRequest", "code": "custom",
                                               "message": f"A pull request already exists for "
                                                          f"{params['owner']}:{head}."})
            if s.refs[head] == s.refs[base]:
                return validation_failed(doc, {"resource": "PullRequest", "code": "custom",
                                               "message": f"No commits between {base} and {head}"})
            code, data = example(template, "post")
            number = max([p["number"] for p in s.pulls] + list(s.comments) + [99]) + 1
            data.update(number=number, title=body.get("title"), body=body.get("body"), state="open",
                        labels=[])
            data["head"] = dict(data["head"], ref=head, sha=s.refs[head])
            data["base"] = dict(data["base"], ref=base, sha=s.refs[base])
            data["html_url"] = f"https://github.com/{repo}/pull/{number}"
            s.pulls.append(data)
            s.comments.setdefault(number, [])
            return code, data, {}
        if key == ("GET", "/deployments"):  # filtered by ref and environment, newest first
            ref, env = query.get("ref", [""])[0], query.get("environment", [""])[0]
            return 200, [d for d in reversed(s.deployments) if (not ref or d["ref"] == ref)
                         and (not env or d["environment"] == env)], {}
        if key == ("POST", "/deployments"):
            code, data = example(template, "post", "201")
            data.update(id=self.new_id(), ref=body["ref"], sha=body["ref"],
                        environment=body.get("environment", "production"),
                        description=body.get("description"), payload=body.get("payload", {}))
            s.deployments.append(data)
            return code, data, {}
        if key == ("GET", "/deployments/{deployment_id}/statuses"):
            did = int(params["deployment_id"])
            if not any(d["id"] == did for d in s.deployments):
                return not_found()
            return 200, [st for st in reversed(s.deployment_statuses) if st["deployment_id"] == did], {}
        if key == ("POST", "/deployments/{deployment_id}/statuses"):
            did = int(params["deployment_id"])
            if not any(d["id"] == did for d in s.deployments):
                return not_found()
            code, data = example(template, "post")
            data.update(id=self.new_id(), deployment_id=did, state=body["state"],
                        description=body.get("description", ""), log_url=body.get("log_url", ""),
                        environment_url=body.get("environment_url", ""))
            s.deployment_statuses.append(data)
            return code, data, {}
        if key == ("POST", "/statuses/{sha}"):
            code, data = example(template, "post")
            data.update(id=self.new_id(), state=body["state"], context=body.get("context", "default"),
                        description=body.get("description"), target_url=body.get("target_url"))
            s.statuses.append(dict(body, sha=params["sha"], id=data["id"]))
            return code, data, {}
        if key == ("GET", "/commits/{ref}/statuses"):
            return 200, [dict(st, state=st["state"]) for st in reversed(s.statuses)
                         if st["sha"] == params["ref"]], {}
        if key == ("POST", "/check-runs"):
            s.check_runs.append(body)
        if key == ("GET", "/labels/{name}"):
            label = s.labels.get(params["name"].lower())
            return (200, label, {}) if label is not None else not_found()
        if key == ("GET", "/labels"):
            return self._page(list(s.labels.values()), f"/repos/{repo}/labels", query)
        if key == ("POST", "/labels"):
            if body["name"].lower() in s.labels:
                return validation_failed("https://docs.github.com/rest/issues/labels#create-a-label",
                                         {"resource": "Label", "code": "already_exists", "field": "name"})
            return 201, self._label(body["name"], body.get("color", "ededed")), {}
        if key == ("POST", "/issues/{issue_number}/labels"):
            number = int(params["issue_number"])
            if self._pull(number) is None and not any(i["number"] == number for i in s.issues):
                return not_found()
            names = body["labels"] if isinstance(body, dict) else body
            for item in names:  # GitHub creates a label it does not know yet
                name = item if isinstance(item, str) else item["name"]
                if name.lower() not in s.labels:
                    self._label(name, "ededed")
                if name not in s.issue_labels.setdefault(number, []):
                    s.issue_labels[number].append(name)
            pr = self._pull(number)
            if pr is not None:
                pr["labels"] = [s.labels[n.lower()] for n in s.issue_labels[number]]
            return 200, [s.labels[n.lower()] for n in s.issue_labels[number]], {}
        if key == ("GET", "/issues/{issue_number}/labels"):
            return 200, [s.labels[n.lower()] for n in s.issue_labels.get(int(params["issue_number"]), [])], {}
        if key == ("GET", "/collaborators/{username}/permission"):
            permission = s.permissions.get(params["username"], "none")
            code, data = example(template, "get")
            data["permission"] = permission
            data["role_name"] = permission
            data["user"] = dict(data.get("user") or {}, login=params["username"])
            return code, data, {}
        if key == ("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}"):
            team = {k.lower(): v for k, v in s.teams.get(
                f"{params['org']}/{params['team_slug']}".lower(), {}).items()}
            state = team.get(params["username"].lower())
            if state is None:
                return not_found()
            code, data = example(template, "get")
            data.update(state=state, role="member",
                        url=f"https://api.github.com/teams/1/memberships/{params['username']}")
            return code, data, {}
        if key == ("POST", "/issues"):
            code, data = example(template, "post")
            number = max([p["number"] for p in s.pulls] + [i["number"] for i in s.issues]
                         + list(s.comments) + [0]) + 1
            data.update(number=number, title=body["title"], body=body.get("body"), state="open",
                        labels=[{"name": n} for n in body.get("labels", [])])
            s.issues.append(data)
            s.comments.setdefault(number, [])
            return code, data, {}
        code, data = example(template, method.lower())
        return code, data, {}

    def _label(self, name: str, color: str) -> dict[str, Any]:
        label = {"id": self.new_id(), "node_id": f"LA_{name}", "name": name, "color": color,
                 "default": False, "description": None,
                 "url": f"https://api.github.com/repos/octo/labels/{name}"}
        self.state.labels[name.lower()] = label
        return label


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
                    self._send(*error(400, "Problems parsing JSON"))
                    return
            status, data, headers = gh.handle(self.command, self.path, body, dict(self.headers))
            self._send(status, data, headers)

        def _send(self, status: int, data: Any, headers: dict[str, str]) -> None:
            payload = b"" if data is None else json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _do

    return Handler


def review(user: str, state: str, rid: int, *, association: str = "COLLABORATOR",
           commit_id: str | None = None) -> dict[str, Any]:
    """A review as the API lists it (the spec's example, with user, state, association and
    commit changed)."""
    data = example("/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "get")[1][0]
    data.update(id=rid, state=state, author_association=association)
    if commit_id is not None:
        data["commit_id"] = commit_id
    data["user"] = dict(data["user"], login=user)
    return data


def iter_rejections(gh: FakeGitHub) -> Iterator[str]:
    yield from gh.rejected
