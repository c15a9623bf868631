"""Property tests of the pure payload builders."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_actions.monitoring.alerts import Alert, AlertStatus, Severity
from mlops_actions.monitoring.alerts.github_issue import issue_body, marker
from mlops_actions.monitoring.alerts.pagerduty import pagerduty_payload
from mlops_actions.monitoring.alerts.slack import slack_payload
from mlops_actions.monitoring.alerts.webhook import sign, verify_signature

text = st.text(max_size=3500)
details = st.dictionaries(st.text(min_size=1, max_size=30), st.one_of(st.floats(allow_nan=False), text,
                                                                      st.integers()), max_size=20)
alerts = st.builds(Alert, key=st.text(min_size=1, max_size=400), severity=st.sampled_from(list(Severity)),
                   summary=text, status=st.sampled_from(list(AlertStatus)), details=details,
                   model=st.text(max_size=50), environment=st.text(max_size=50))


@settings(max_examples=40, deadline=None)
@given(alerts)
def test_slack_payload_always_within_slack_limits(alert: Alert) -> None:
    p = slack_payload(alert)
    assert isinstance(p["text"], str) and p["text"] and len(p["text"]) <= 3000
    for block in p["blocks"]:
        assert len(block.get("fields", [])) <= 10
        for t in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            assert t is None or len(t["text"]) <= 3000


@settings(max_examples=40, deadline=None)
@given(alerts)
def test_pagerduty_payload_always_within_v2_limits(alert: Alert) -> None:
    e = pagerduty_payload(alert, "R" * 32)
    assert len(e["dedup_key"]) <= 255
    if e["event_action"] == "trigger":
        assert 0 < len(e["payload"]["summary"]) <= 1024
        assert e["payload"]["severity"] in {"critical", "error", "warning", "info"}


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_issue_marker_never_closes_the_html_comment_early(key: str) -> None:
    m = marker(key)
    assert m.startswith("<!-- ") and m.endswith(" -->") and m.count("-->") == 1
    assert m in issue_body(Alert(key=key, severity=Severity.INFO, summary="s"))


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=64), st.binary(max_size=2000))
def test_signature_round_trip(secret: str, body: bytes) -> None:
    ts = "1700000000"
    assert verify_signature(secret, ts, body, sign(secret, ts, body), now=1700000000.0)
    assert not verify_signature(secret + "x", ts, body, sign(secret, ts, body), now=1700000000.0)
