"""Each sink against a receiver on 127.0.0.1 that checks that service's payload format."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlops_actions.monitoring.alerts import Alert, AlertError, AlertStatus, Severity
from mlops_actions.monitoring.alerts.github_issue import GitHubIssueSink, marker
from mlops_actions.monitoring.alerts.pagerduty import PagerDutySink
from mlops_actions.monitoring.alerts.slack import SlackSink
from mlops_actions.monitoring.alerts.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSink,
    sign,
    verify_signature,
)
from tests.alerting.conftest import Receiver, Request

ASSETS = Path(__file__).parent.parent / "assets" / "alerting"
FAST = {"retries": 2, "backoff": 0.01, "timeout": 5.0}

ALERT = Alert(key="churn/production/accuracy", severity=Severity.ERROR,
              summary="churn in production: accuracy 0.81 < threshold 0.90 (n=412)",
              details={"check": "accuracy", "version": "1.3.0", "actual": 0.81, "expected": ">= 0.90"},
              model="churn", environment="production")


# --------------------------------------------------------------------------- Slack
def slack_receiver(req: Request) -> tuple[int, Any]:
    """Slack's incoming webhook: 400 no_text when text is missing, 'ok' otherwise."""
    body = req.json()
    if not isinstance(body.get("text"), str) or not body["text"]:
        return 400, b"no_text"
    for block in body.get("blocks", []):
        if block["type"] not in ("section", "context", "header", "divider"):
            return 400, b"invalid_blocks"
        if block["type"] == "section":
            if "text" not in block and "fields" not in block:
                return 400, b"invalid_blocks"
            if len(block.get("fields", [])) > 10:
                return 400, b"invalid_blocks"
            for t in [block.get("text"), *block.get("fields", [])]:
                if t is not None and (t["type"] not in ("mrkdwn", "plain_text") or len(t["text"]) > 3000):
                    return 400, b"invalid_blocks"
    return 200, b"ok"


def test_slack_fire_and_resolve(receiver: Receiver) -> None:
    receiver.handler = slack_receiver
    sink = SlackSink(receiver.url + "/services/T000/B000/XXXXSECRET", **FAST)
    sink.send(ALERT)
    sink.send(ALERT.resolved())
    assert [r.path for r in receiver.requests] == ["/services/T000/B000/XXXXSECRET"] * 2
    fired, resolved = (r.json() for r in receiver.requests)
    assert fired["text"].startswith(":large_orange_circle: ERROR: churn in production")
    assert any(f["text"] == "*version*\n1.3.0" for f in fired["blocks"][1]["fields"])
    assert resolved["text"].startswith(":white_check_mark: RESOLVED")
    assert receiver.requests[0].headers["content-type"] == "application/json"


def test_slack_retries_5xx_then_succeeds(receiver: Receiver) -> None:
    answers = iter([(503, b"busy"), (200, b"ok")])
    receiver.handler = lambda r: next(answers)
    SlackSink(receiver.url + "/hook", **FAST).send(ALERT)
    assert len(receiver.requests) == 2


def test_slack_4xx_is_not_retried_and_error_hides_the_url(receiver: Receiver) -> None:
    receiver.handler = lambda r: (404, b"no_service")
    sink = SlackSink(receiver.url + "/services/T/B/TOPSECRET", **FAST)
    with pytest.raises(AlertError) as err:
        sink.send(ALERT)
    assert len(receiver.requests) == 1
    assert "TOPSECRET" not in str(err.value) and "TOPSECRET" not in repr(sink)
    assert "HTTP 404" in str(err.value)


def test_unreachable_endpoint_fails_after_bounded_retries() -> None:
    from tests.conftest import free_port
    start = time.monotonic()
    with pytest.raises(AlertError, match="ConnectionError"):
        SlackSink(f"http://127.0.0.1:{free_port()}/x", **FAST).send(ALERT)
    assert time.monotonic() - start < 5


# --------------------------------------------------------------------------- PagerDuty
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def pagerduty_receiver(req: Request) -> tuple[int, Any]:
    """Events API v2 /v2/enqueue: validates the v2 schema, answers 202."""
    invalid = (400, {"status": "invalid event", "message": "Event object is invalid", "errors": []})
    if req.path != "/v2/enqueue":
        return 404, {}
    e = req.json()
    if not isinstance(e.get("routing_key"), str) or len(e["routing_key"]) != 32:
        return invalid
    if e.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        return invalid
    if "dedup_key" in e and (not isinstance(e["dedup_key"], str) or len(e["dedup_key"]) > 255):
        return invalid
    if e["event_action"] == "trigger":
        p = e.get("payload")
        if not isinstance(p, dict) or not p.get("summary") or not p.get("source") \
                or p.get("severity") not in PD_SEVERITIES or len(p["summary"]) > 1024:
            return invalid
        if "timestamp" in p:
            try:
                datetime.fromisoformat(p["timestamp"])
            except ValueError:
                return invalid
    elif "dedup_key" not in e:
        return invalid
    return 202, {"status": "success", "message": "Event processed", "dedup_key": e.get("dedup_key", "gen")}


def test_pagerduty_trigger_and_resolve_share_dedup_key(receiver: Receiver) -> None:
    receiver.handler = pagerduty_receiver
    sink = PagerDutySink("R0UTINGKEY0123456789abcdef012345", url=receiver.url + "/v2/enqueue", **FAST)
    assert sink.send(ALERT) == ALERT.key
    sink.send(ALERT.resolved())
    trig, res = (r.json() for r in receiver.requests)
    assert trig["event_action"] == "trigger" and res["event_action"] == "resolve"
    assert trig["dedup_key"] == res["dedup_key"] == "churn/production/accuracy"
    assert trig["payload"]["severity"] == "error" and trig["payload"]["source"] == "mlops-actions"
    assert trig["payload"]["custom_details"]["version"] == "1.3.0"


def test_pagerduty_spec_severity_overrides(receiver: Receiver) -> None:
    receiver.handler = pagerduty_receiver
    PagerDutySink("R0UTINGKEY0123456789abcdef012345", severity="critical",
                  url=receiver.url + "/v2/enqueue", **FAST).send(ALERT)
    assert receiver.requests[0].json()["payload"]["severity"] == "critical"


def test_pagerduty_invalid_event_is_an_error(receiver: Receiver) -> None:
    receiver.handler = pagerduty_receiver
    with pytest.raises(AlertError, match="HTTP 400"):
        PagerDutySink("short", url=receiver.url + "/v2/enqueue", **FAST).send(ALERT)


# --------------------------------------------------------------------------- webhook
def test_webhook_is_signed_and_verifiable(receiver: Receiver) -> None:
    seen: list[bool] = []

    def check(req: Request) -> tuple[int, Any]:
        ok = verify_signature("s3cret", req.headers[TIMESTAMP_HEADER.lower()], req.body,
                              req.headers[SIGNATURE_HEADER.lower()])
        seen.append(ok)
        return (200, {}) if ok else (401, {})

    receiver.handler = check
    WebhookSink(receiver.url + "/alerts", secret="s3cret", **FAST).send(ALERT)
    assert seen == [True]
    req = receiver.requests[0]
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", req.headers[SIGNATURE_HEADER.lower()])
    body = req.json()
    assert body["key"] == ALERT.key and body["status"] == "firing" and body["details"]["actual"] == 0.81
    # a wrong secret, a changed body or an old timestamp does not verify
    ts = req.headers[TIMESTAMP_HEADER.lower()]
    assert not verify_signature("other", ts, req.body, req.headers[SIGNATURE_HEADER.lower()])
    assert not verify_signature("s3cret", ts, req.body + b" ", req.headers[SIGNATURE_HEADER.lower()])
    assert not verify_signature("s3cret", ts, req.body, sign("s3cret", ts, req.body), now=float(ts) + 3600)


def test_webhook_without_secret_sends_no_signature(receiver: Receiver) -> None:
    WebhookSink(receiver.url, **FAST).send(ALERT.resolved())
    assert SIGNATURE_HEADER.lower() not in receiver.requests[0].headers
    assert receiver.requests[0].json()["status"] == "resolved"


# --------------------------------------------------------------------------- GitHub issue
CONTRACT = json.loads((ASSETS / "github-rest-subset.json").read_text())


def _validate(schema: dict[str, Any], body: Any) -> None:
    jsonschema.validate(body, schema)
    extra = set(body) - set(schema["properties"])
    assert not extra, f"fields outside the API: {extra}"


class FakeGitHub:
    """The handful of GitHub REST endpoints the sink uses, validating every body."""

    def __init__(self) -> None:
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: list[tuple[int, str]] = []
        example = CONTRACT["paths"]["/repos/{owner}/{repo}/issues"]["post"]["responseExample"]
        self.example = {k: v for k, v in example.items() if k != "pull_request"}  # an issue, not a PR

    def __call__(self, req: Request) -> tuple[int, Any]:
        if req.headers.get("authorization") != "Bearer ghs_token":
            return 401, {"message": "Bad credentials"}
        path, _, query = req.path.partition("?")
        if req.method == "POST" and path == "/repos/octo/models/issues":
            body = req.json()
            _validate(CONTRACT["paths"]["/repos/{owner}/{repo}/issues"]["post"]["requestSchema"], body)
            number = len(self.issues) + 1
            self.issues[number] = {**self.example, "number": number, "title": body["title"],
                                   "body": body["body"], "state": "open",
                                   "labels": [{"name": n} for n in body.get("labels", [])]}
            return 201, self.issues[number]
        m = re.fullmatch(r"/repos/octo/models/issues/(\d+)(/comments)?", path)
        if m and req.method == "POST" and m.group(2):
            body = req.json()
            _validate(CONTRACT["paths"]["/repos/{owner}/{repo}/issues/{issue_number}/comments"]["post"]
                      ["requestSchema"], body)
            self.comments.append((int(m.group(1)), body["body"]))
            return 201, {"id": len(self.comments), "body": body["body"]}
        if m and req.method == "PATCH" and not m.group(2):
            body = req.json()
            _validate(CONTRACT["not_in_contract"]["PATCH /repos/{owner}/{repo}/issues/{issue_number}"]
                      ["requestSchema"], body)
            self.issues[int(m.group(1))].update(body)
            return 200, self.issues[int(m.group(1))]
        if req.method == "GET" and path == "/repos/octo/models/issues":
            params = dict(p.split("=", 1) for p in query.split("&"))
            allowed = CONTRACT["not_in_contract"]["GET /repos/{owner}/{repo}/issues"]["query"]
            assert set(params) <= set(allowed)
            want = set(params.get("labels", "").replace("%2C", ",").split(","))
            found = [i for i in self.issues.values() if i["state"] == params.get("state", "open")
                     and want <= {lab["name"] for lab in i["labels"]}]
            return 200, found
        return 404, {"message": "Not Found"}


def test_github_issue_open_comment_close(receiver: Receiver) -> None:
    gh = FakeGitHub()
    receiver.handler = gh
    sink = GitHubIssueSink("octo/models", "ghs_token", labels=["mlops-alert", "churn"],
                           api_url=receiver.url, **FAST)
    ref = sink.send(ALERT)
    assert ref == "1" and gh.issues[1]["state"] == "open"
    assert marker(ALERT.key) in gh.issues[1]["body"] and "accuracy 0.81" in gh.issues[1]["title"]
    assert sink.send(ALERT, ref) == "1"  # an update comments on the same issue
    assert len(gh.issues) == 1 and gh.comments[0][0] == 1
    sink.send(ALERT.resolved(), ref)
    assert gh.issues[1]["state"] == "closed" and gh.issues[1]["state_reason"] == "completed"
    assert "Resolved" in gh.comments[-1][1]
    assert receiver.requests[0].headers["x-github-api-version"] == "2022-11-28"


def test_github_issue_found_by_marker_when_state_is_lost(receiver: Receiver) -> None:
    gh = FakeGitHub()
    receiver.handler = gh
    sink = GitHubIssueSink("octo/models", "ghs_token", api_url=receiver.url, **FAST)
    sink.send(Alert(key="other/key", severity=Severity.WARNING, summary="other"))
    sink.send(ALERT)
    assert sink.send(ALERT) == "2"  # no ref given: looked up, not duplicated
    assert len(gh.issues) == 2
    sink.send(ALERT.resolved())
    assert gh.issues[2]["state"] == "closed" and gh.issues[1]["state"] == "open"
    assert sink.send(ALERT.resolved()) is None  # nothing open: nothing to do


def test_github_issue_create_whose_answer_was_lost_opens_one_issue(receiver: Receiver) -> None:
    """The first create is written but answered 502 (a proxy lost the answer): the sink looks
    the issue up before resending instead of opening a second one."""
    gh = FakeGitHub()
    posts: list[int] = []

    def losing_first_answer(req: Request) -> tuple[int, Any]:
        status, body = gh(req)
        if req.method == "POST" and req.path == "/repos/octo/models/issues":
            posts.append(status)
            if len(posts) == 1:
                return 502, {"message": "Bad Gateway"}
        return status, body

    receiver.handler = losing_first_answer
    sink = GitHubIssueSink("octo/models", "ghs_token", api_url=receiver.url, **FAST)
    assert sink.send(ALERT) == "1"
    assert len(gh.issues) == 1 and posts == [201]  # found again, never resent
    # a create that never lands is resent, within the bound, then a clear error
    receiver.handler = lambda req: (503, {"message": "unavailable"}) if req.method == "POST" else gh(req)
    other = Alert(key="other/key", severity=Severity.WARNING, summary="other")
    with pytest.raises(AlertError, match="HTTP 503"):
        sink.send(other)
    assert len(gh.issues) == 1


def test_github_bad_token_and_bad_repository(receiver: Receiver) -> None:
    receiver.handler = FakeGitHub()
    with pytest.raises(AlertError, match="HTTP 401"):
        GitHubIssueSink("octo/models", "wrong", api_url=receiver.url, **FAST).send(ALERT)
    with pytest.raises(AlertError, match="OWNER/NAME"):
        GitHubIssueSink("not a repo", "t")


def test_alert_status_values_are_stable() -> None:
    assert [s.value for s in AlertStatus] == ["firing", "resolved"]


def test_numpy_values_in_details_are_sent_as_numbers(receiver: Receiver) -> None:
    import numpy as np
    alert = Alert(key="k", severity=Severity.WARNING, summary="drift",
                  details={"score": np.float64(0.25), "n": np.int64(3), "cols": np.array([1, 2])})
    WebhookSink(receiver.url, secret="s", **FAST).send(alert)
    receiver.handler = pagerduty_receiver
    PagerDutySink("R" * 32, url=receiver.url + "/v2/enqueue", **FAST).send(alert)
    hook, pd = (r.json() for r in receiver.requests)
    assert hook["details"] == {"score": 0.25, "n": 3, "cols": [1, 2]}
    assert pd["payload"]["custom_details"]["score"] == 0.25


class MiniClient:
    """Stands in for the gitops branch's GitHubClient: json(method, path, json=, params=)."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token, self.calls = base, token, 0

    def json(self, method: str, path: str, *, json: Any = None, params: Any = None,
             max_retries: int | None = None) -> Any:
        import requests
        self.calls += 1
        r = requests.request(method, f"{self.base}/repos/octo/models/{path}", json=json, params=params,
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=5)
        r.raise_for_status()
        return r.json() if r.content else None


def test_github_issue_sink_through_an_injected_client(receiver: Receiver) -> None:
    gh = FakeGitHub()
    receiver.handler = gh
    client = MiniClient(receiver.url, "ghs_token")
    sink = GitHubIssueSink("octo/models", "unused", client=client)
    ref = sink.send(ALERT)
    sink.send(ALERT.resolved(), ref)
    assert gh.issues[1]["state"] == "closed" and client.calls == 4  # lookup, create, comment, close
    with pytest.raises(AlertError, match="401"):
        GitHubIssueSink("octo/models", "x", client=MiniClient(receiver.url, "bad")).send(ALERT)
