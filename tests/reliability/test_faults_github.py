"""The GitHub REST client behind the fault proxy, in front of the strict loopback GitHub.

Proven: a reset, cut answer, refused connection or 503 at any request of a sticky comment,
a Deployment with its status, or the promote button's branch + commit + PR leaves exactly one
comment / deployment / branch / PR with the right content (looked up before a resend, never
sent blindly twice); ``Retry-After`` is honoured; a GitHub that stays down gives one clear
error after the bound (exit 3 with ``--strict``), the token in no message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.errors import EXIT_EXTERNAL, GitHubError
from mlops_actions.github.rest import GitHubClient, marker
from tests.github.fakegithub import FakeGitHub
from tests.reliability.faultproxy import FaultKind, FaultProxy
from tests.reliability.figures import record

TOKEN = "ghs_CANARYtoken0123456789abcdef"
KINDS: tuple[FaultKind, ...] = ("reset", "cut", "refuse", "http_503")
CUT_BYTES = 150  # past the headers: a body shorter than its Content-Length


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub(page_size=2) as server:
        yield server


@pytest.fixture
def proxy(gh: FakeGitHub) -> Iterator[FaultProxy]:
    with FaultProxy(int(gh.url.rsplit(":", 1)[1])) as p:
        yield p


class Sleeps:
    """The client's waits, recorded (and slept for a token 10 ms, to keep the suite fast)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(min(seconds, 0.01))


def client(proxy: FaultProxy, sleeps: Sleeps, **kw: float) -> GitHubClient:
    return GitHubClient("octo/repo", TOKEN, api_url=proxy.url, timeout=2, backoff=0.5, max_retries=3,
                        sleep=sleeps, **kw)  # type: ignore[arg-type]


def sweep(proxy: FaultProxy, run: object, requests_per_run: int) -> int:
    """Call ``run(kind, k)`` with one fault of each kind aimed at each request in turn."""
    runs = 0
    for kind in KINDS:
        for k in range(requests_per_run):
            proxy.drop_connections()
            proxy.clear()
            proxy.inject(kind, after=k, nbytes=CUT_BYTES, retry_after=1)
            run(kind, k)  # type: ignore[operator]
            assert proxy.pending() == 0, f"{kind} at request {k} was never reached"
            runs += 1
    return runs


def test_sticky_comment_is_never_duplicated(gh: FakeGitHub, proxy: FaultProxy) -> None:
    sleeps = Sleeps()
    c = client(proxy, sleeps)
    prs = iter(range(100, 10_000))

    def run(kind: str, k: int) -> None:
        pr = next(prs)  # a PR of its own, with 3 other comments (2 pages of 2)
        gh.state.comments[pr] = [{"id": i, "body": f"chatter {i}"} for i in range(3)]
        c.upsert_comment(pr, "plan", "production", "first")  # create
        c.upsert_comment(pr, "plan", "production", "second")  # update
        bodies = [x["body"] for x in gh.state.comments[pr] if marker("plan", "production") in x["body"]]
        assert len(bodies) == 1 and bodies[0].endswith("second"), (kind, k, bodies)

    # requests of a create + an update on a fresh environment, fault-free (pages grow as comments do)
    start = proxy.exchanges
    run("clean", 0)
    per_run = proxy.exchanges - start
    runs = sweep(proxy, run, per_run)
    assert 1.0 in sleeps.waits  # the 503s' Retry-After: 1 was honoured
    assert gh.rejected == []
    record("github-sticky-comment-under-faults", "faults",
           f"GitHub sticky comment (create then update, {per_run} requests): {runs} runs with a reset, cut "
           f"answer, refused connection or 503 at each request in turn: 1 comment per marker every time, "
           f"0 duplicates (a lost POST is looked up before a resend)", runs=runs, requests_per_run=per_run,
           faults_injected=proxy.total_faults(), duplicates=0)


def test_deployment_status_and_commit_status_exactly_once(gh: FakeGitHub, proxy: FaultProxy) -> None:
    sleeps = Sleeps()
    c = client(proxy, sleeps)
    sha = "a" * 40

    def run(kind: str, k: int) -> None:
        env = f"{kind}-{k}"
        before = len(gh.state.deployments)
        dep = c.create_deployment(sha, env, description="rolled out")
        c.create_deployment_status(int(dep["id"]), "success", description="Healthy")
        c.create_status(sha, "success", f"mlops-actions/{env}", "ok")
        mine = [d for d in gh.state.deployments[before:] if d["environment"] == env]
        assert len(mine) == 1 and mine[0]["id"] == dep["id"], (kind, k, mine)
        assert sum(s["context"] == f"mlops-actions/{env}" for s in gh.state.statuses) >= 1

    start = proxy.exchanges
    run("clean", 0)
    runs = sweep(proxy, run, proxy.exchanges - start)
    assert gh.rejected == []
    record("github-deployments-under-faults", "faults",
           f"GitHub Deployment + deployment status + commit status: {runs} runs with one reset, cut answer, "
           "refused connection or 503 at each request: exactly 1 Deployment each (found again by its "
           "request id after a lost answer)", runs=runs)


def test_promote_pr_is_opened_once(gh: FakeGitHub, proxy: FaultProxy) -> None:
    sleeps = Sleeps()
    c = client(proxy, sleeps)
    gh.state.refs["main"] = "f" * 40
    gh.state.files[("main", "environments/production.yaml")] = 'models:\n  fraud:\n    version: "1.0.0"\n'

    def run(kind: str, k: int) -> None:
        branch = f"mlops/promote-{kind}-{k}"
        pr, _ = c.propose_change(path="environments/production.yaml", text=f"new {k}\n", base="main",
                                 branch=branch, title="Promote fraud 1.1.0", body="body", message="promote")
        assert pr["head"]["ref"] == branch
        assert [p["head"]["ref"] for p in gh.state.pulls].count(branch) == 1
        assert gh.state.files[(branch, "environments/production.yaml")] == f"new {k}\n"
        assert gh.state.parents[gh.state.refs[branch]] == "f" * 40  # one commit on main's head

    start = proxy.exchanges
    run("clean", 0)
    per_run = proxy.exchanges - start
    runs = sweep(proxy, run, per_run)
    assert gh.rejected == []
    record("github-promote-pr-under-faults", "faults",
           f"promote button (branch, commit, PR: {per_run} requests): {runs} runs with one reset, cut "
           "answer, refused connection or 503 at each request: exactly 1 branch and 1 PR each, file right",
           runs=runs, requests_per_run=per_run)


def test_github_down_gives_up_bounded_with_a_clear_error(gh: FakeGitHub, proxy: FaultProxy, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    sleeps = Sleeps()
    c = client(proxy, sleeps)
    gh.state.comments[7] = []
    results: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        proxy.clear()
        proxy.drop_connections()
        proxy.inject(kind, times=10_000, nbytes=20, retry_after=2)  # cut inside the status line
        sleeps.waits.clear()
        before = proxy.exchanges
        with pytest.raises(GitHubError) as err:
            c.upsert_comment(7, "plan", "production", "body")
        attempts = proxy.exchanges - before
        results[kind] = {"requests": attempts, "waited_s": sum(sleeps.waits)}
        message = str(err.value)
        assert exit_code_for(err.value) == EXIT_EXTERNAL
        assert message.startswith(f"GitHub API GET {proxy.url}/repos/octo/repo/issues/7/comments failed "
                                  "after 4 tries"), message
        assert TOKEN not in message and "Traceback" not in message
        assert attempts == 4  # 1 + max_retries
        if kind == "http_503":
            assert sleeps.waits == [2.0, 2.0, 2.0]  # Retry-After, each time
        else:
            assert sleeps.waits == [0.5, 1.0, 2.0]  # exponential backoff
    assert gh.state.comments[7] == []
    # a Retry-After beyond what the client waits is refused at once, not slept
    proxy.clear()
    proxy.inject("http_503", times=10, retry_after=3600)
    sleeps.waits.clear()
    with pytest.raises(GitHubError, match="asked to wait 3600s"):
        c.create_status("a" * 40, "success", "ctx")
    assert sleeps.waits == []
    # the CLI: one error line, exit 3 with --strict
    from mlops_actions.cli import main

    proxy.clear()
    proxy.inject("http_503", times=10_000)
    body = tmp_path / "body.md"
    body.write_text("hello")
    for key, value in {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "octo/repo", "GITHUB_API_URL": proxy.url,
                       "MLOPS_ACTIONS_HTTP_BACKOFF": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    code = main(["comment", "--kind", "plan", "--env", "production", "--body-file", str(body), "--pr", "7",
                 "--strict"])
    err_text = capsys.readouterr().err
    assert code == EXIT_EXTERNAL and "GitHub API GET" in err_text and "failed after 5 tries" in err_text
    assert TOKEN not in err_text and "Traceback" not in err_text
    record("github-gives-up-bounded", "faults",
           "GitHub down (reset, cut, refused, 503 for good): one error after 1 + 3 retries naming the "
           "request, token never shown; backoff 0.5/1/2 s, a 503's Retry-After honoured (2 s x 3), a "
           "Retry-After of 3600 s refused at once; `comment --strict` exits 3", **results)
