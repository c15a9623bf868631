"""MLflow behind the fault proxy: registry operations and apply's alias steps under latency,
resets, cut answers, refused and hung connections and 503s.

The server is a real ``mlflow server`` (SQLite backend) on 127.0.0.1; the toolkit talks to
it through :class:`~tests.reliability.faultproxy.FaultProxy`. Proven here: a single fault
anywhere in a register / alias / resolve sequence is retried away with no duplicate version
and the alias right; a fault that persists gives up after 1 + ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``
attempts with one error line naming the URI (exit 3); an apply that loses MLflow part-way
says what it had already done, and a rerun converges.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.deploy.apply import apply_environment
from mlops_actions.errors import EXIT_EXTERNAL, RegistryError
from mlops_actions.registry.mlflow_registry import MlflowRegistry, get_registry
from tests.deploy.test_apply import CANARY, TickingTarget
from tests.registry.conftest import SERVER_START_TIMEOUT, MlflowServer, log_sources, unique
from tests.reliability.faultproxy import FaultKind, FaultProxy
from tests.reliability.figures import record
from tests.serving._support import FakeLoader

pytestmark = pytest.mark.slow

TIMEOUT_S = 2  # MLFLOW_HTTP_REQUEST_TIMEOUT in these tests (the default is 8)
RETRIES = 2  # MLFLOW_HTTP_REQUEST_MAX_RETRIES: the toolkit's default
CUT_BYTES = 200  # past the status line and headers: a body shorter than its Content-Length


@dataclass
class Mlflow:
    server: MlflowServer
    sources: dict[str, str]
    work: Path


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlflow]:
    work = tmp_path_factory.mktemp("mlflow-faults")
    server = MlflowServer(f"sqlite:///{work / 'mlflow.db'}", work)
    try:
        server.wait(time.monotonic() + SERVER_START_TIMEOUT)
        sources = log_sources(get_registry(server.url, repo_root=work))
        yield Mlflow(server, sources, work)
    finally:
        server.stop()


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toolkit's retry count, a short timeout and no backoff sleep, so giving up is quick."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(RETRIES))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", str(TIMEOUT_S))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    monkeypatch.delenv("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", raising=False)  # the toolkit's


@pytest.fixture
def proxy(mlflow: Mlflow) -> Iterator[FaultProxy]:
    with FaultProxy(mlflow.server.port) as p:
        yield p


def through(proxy: FaultProxy, mlflow: Mlflow) -> MlflowRegistry:
    return get_registry(proxy.url, repo_root=mlflow.work)


def lifecycle(registry: MlflowRegistry, name: str, source: str) -> None:
    """Register, point an alias at it, resolve the alias: what a release does to the registry."""
    mv = registry.register(name, source)
    registry.set_alias(name, "staging", mv.version)
    assert registry.get_alias(name, "staging") is not None


def test_one_fault_anywhere_in_a_release_is_retried_away(mlflow: Mlflow, proxy: FaultProxy,
                                                         short_waits: None) -> None:
    registry = through(proxy, mlflow)
    direct = get_registry(mlflow.server.url, repo_root=mlflow.work)
    lifecycle(registry, unique(), mlflow.sources["base"])  # the first one also makes one-off reads
    proxy.drop_connections()
    start = proxy.exchanges
    lifecycle(registry, unique(), mlflow.sources["base"])
    exchanges = proxy.exchanges - start  # HTTP requests of one clean release
    plan: list[tuple[FaultKind, int]] = [(kind, k) for kind in ("reset", "cut") for k in range(exchanges)]
    plan += [(kind, k) for kind in ("refuse", "http_503") for k in range(0, exchanges, 2)]
    failures: list[str] = []
    requests_sent = 0
    for kind, k in plan:
        name = unique()
        proxy.drop_connections()  # the fault must hit exchange k of this release, not a pooled one
        proxy.clear()
        proxy.inject(kind, after=k, nbytes=CUT_BYTES)
        before = proxy.exchanges
        try:
            lifecycle(registry, name, mlflow.sources["base"])
        except RegistryError as exc:
            failures.append(f"{kind}@{k}: {exc.message}")
        requests_sent += proxy.exchanges - before
        assert proxy.pending() == 0, f"{kind} at request {k} was never reached"
        versions = direct.list_versions(name)
        assert [v.version for v in versions] == ["1.0.0"], f"{kind} at request {k}: {versions} {failures}"
        alias = direct.get_alias(name, "staging")
        assert alias is not None and alias.version == "1.0.0", f"{kind} at request {k}"
    assert failures == []
    faults = proxy.total_faults()
    assert faults == len(plan)
    record("mlflow-one-fault-per-release", "faults",
           f"MLflow: {faults} releases (register, alias, resolve; {exchanges} requests each), each with "
           f"one fault: a reset or a cut answer at each request in turn, a refused connection or a 503 "
           f"at every second: {len(plan) - len(failures)}/{len(plan)} succeeded after retries, "
           "0 duplicate versions, every alias right",
           releases=len(plan), requests_per_release=exchanges, faults_injected=faults,
           by_kind=dict(proxy.injected), requests_sent=requests_sent, failed=len(failures),
           duplicate_versions=0)


def test_a_lost_create_answer_leaves_one_version(mlflow: Mlflow, proxy: FaultProxy,
                                                  short_waits: None) -> None:
    """MLflow's client retries a POST whose answer was lost: the server created the version twice;
    the toolkit keeps its first one and deletes the retry's copy, instead of failing as a duplicate."""
    registry = through(proxy, mlflow)
    direct = get_registry(mlflow.server.url, repo_root=mlflow.work)
    name = unique()
    registry.register(name, mlflow.sources["base"])  # 1.0.0
    proxy.drop_connections()
    start = proxy.exchanges
    registry.register(name, mlflow.sources["retrained"])  # 1.1.0, clean: count its requests
    per_register = proxy.exchanges - start
    for k in range(per_register):
        proxy.drop_connections()
        proxy.inject("reset", after=k)
        mv = registry.register(name, mlflow.sources["retrained"])
        assert proxy.pending() == 0
        semvers = [v.version for v in direct.list_versions(name)]
        assert semvers.count(mv.version) == 1 and len(semvers) == len(set(semvers)) == 3 + k
    assert direct.get(name, "1.2.0").registry_version == "3"  # the first attempt's version, kept


def test_persistent_faults_give_up_bounded_with_one_clear_line(mlflow: Mlflow, proxy: FaultProxy,
                                                               short_waits: None) -> None:
    registry = through(proxy, mlflow)
    name = unique()
    direct = get_registry(mlflow.server.url, repo_root=mlflow.work)
    direct.register(name, mlflow.sources["base"])
    results: dict[str, dict[str, float]] = {}
    for kind in ("refuse", "reset", "cut", "http_503", "blackhole"):
        proxy.drop_connections()
        proxy.clear()
        proxy.inject(kind, times=1000, nbytes=CUT_BYTES)  # type: ignore[arg-type]
        before = proxy.exchanges
        started = time.monotonic()
        with pytest.raises(RegistryError) as err:
            registry.aliases(name)
        elapsed = time.monotonic() - started
        attempts = proxy.exchanges - before
        results[kind] = {"attempts": attempts, "seconds": round(elapsed, 2)}
        assert exit_code_for(err.value) == EXIT_EXTERNAL
        assert err.value.message.startswith(f"cannot reach MLflow at {proxy.url} while reading registered")
        assert len(err.value.message.splitlines()) == 1 and "Traceback" not in str(err.value)
        assert attempts == 1 + RETRIES, kind
        bound = (1 + RETRIES) * TIMEOUT_S + 10 if kind == "blackhole" else 10
        assert elapsed < bound, kind
    assert results["blackhole"]["seconds"] >= (1 + RETRIES) * TIMEOUT_S * 0.9  # it did wait each timeout
    proxy.clear()
    proxy.latency = TIMEOUT_S + 1.0  # each new connection is slower than the timeout: also bounded
    proxy.drop_connections()
    connections = proxy.connections
    started = time.monotonic()
    with pytest.raises(RegistryError, match="cannot reach MLflow"):
        registry.aliases(name)
    results["latency"] = {"attempts": proxy.connections - connections,
                          "seconds": round(time.monotonic() - started, 2)}
    assert results["latency"]["attempts"] == 1 + RETRIES  # each attempt timed out on a new connection
    proxy.clear()
    record("mlflow-gives-up-bounded", "faults",
           f"MLflow failing for good (refused, reset, cut, 503, hung, too slow): gave up after "
           f"{1 + RETRIES} attempts each with one `cannot reach MLflow at <uri>` line, exit 3; "
           f"{results['http_503']['seconds']:.1f} s for 503s, {results['blackhole']['seconds']:.1f} s "
           f"for a hung server at a {TIMEOUT_S} s timeout",
           timeout_s=TIMEOUT_S, retries=RETRIES, **{k: v for k, v in results.items()})


def test_retry_after_does_not_stall_and_latency_is_tolerated(mlflow: Mlflow, proxy: FaultProxy,
                                                             short_waits: None) -> None:
    """A 503 saying ``Retry-After: 600`` must not park the client for ten minutes (urllib3 would
    sleep it, uncapped); a slow but answering server is simply slower."""
    registry = through(proxy, mlflow)
    name = unique()
    get_registry(mlflow.server.url, repo_root=mlflow.work).register(name, mlflow.sources["base"])
    proxy.drop_connections()
    proxy.inject("http_503", retry_after=600)
    started = time.monotonic()
    assert registry.aliases(name) == {}
    retry_after_s = time.monotonic() - started
    assert retry_after_s < 30
    proxy.chunk_latency = 0.05
    proxy.latency = 0.3
    proxy.drop_connections()
    started = time.monotonic()
    lifecycle(registry, unique(), mlflow.sources["base"])
    slow_s = time.monotonic() - started
    proxy.clear()
    record("mlflow-retry-after-and-latency", "faults",
           f"MLflow 503 with Retry-After: 600: answered after {retry_after_s:.1f} s (bounded backoff, "
           f"not 600 s); a release through +0.3 s per connection and +50 ms per chunk: "
           f"{slow_s:.1f} s, no error", retry_after_seconds=round(retry_after_s, 2),
           slow_release_seconds=round(slow_s, 2))


def test_cli_exits_3_naming_the_uri(mlflow: Mlflow, proxy: FaultProxy, short_waits: None,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_actions.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    proxy.inject("http_503", times=1000)
    assert main(["versions", "wine"]) == EXIT_EXTERNAL
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach MLflow at {proxy.url}") and "Traceback" not in err
    proxy.clear()


# ----------------------------------------------------------------------------- apply


def env_file(repo: Path, name: str, version: str, strategy: str = "") -> None:
    (repo / "environments").mkdir(exist_ok=True)
    (repo / "environments" / "prod.yaml").write_text(
        f'models:\n  {name}:\n    version: "{version}"\n{strategy}')


@pytest.fixture
def target(tmp_path: Path) -> Iterator[TickingTarget]:
    """The gateway in-process (its controller, routes and history), serving fake backends:
    ``models:/NAME/1`` is fake://v1, ``models:/NAME/2`` fake://v2."""
    loader = FakeLoader()
    t = TickingTarget(tmp_path / ".mlops", loader, environment="prod")
    t.gateway.cache._loader = lambda uri: loader(f"fake://v{uri.rsplit('/', 1)[1]}")
    yield t
    t.close()


def two_versions(mlflow: Mlflow) -> str:
    name = unique()
    direct = get_registry(mlflow.server.url, repo_root=mlflow.work)
    direct.register(name, mlflow.sources["base"])
    direct.register(name, mlflow.sources["retrained"])
    return name


def test_apply_alias_steps_survive_a_fault_at_each_request(mlflow: Mlflow, proxy: FaultProxy,
                                                           short_waits: None, tmp_path: Path) -> None:
    direct = get_registry(mlflow.server.url, repo_root=mlflow.work)
    registry = through(proxy, mlflow)
    runs = faults = per_apply = 0
    for kind in ("reset", "cut", "http_503"):
        name = two_versions(mlflow)
        repo = tmp_path / f"repo-{kind}"
        loader = FakeLoader()
        target = TickingTarget(repo / ".mlops", loader, environment="prod")
        target.gateway.cache._loader = lambda uri, ld=loader: ld(f"fake://v{uri.rsplit('/', 1)[1]}")
        try:
            env_file(repo, name, "1.0.0")
            apply_environment(repo, "prod", target=target, registry=registry, poll=0.0, timeout=30,
                              progress=lambda _: None)
            env_file(repo, name, "1.1.0", CANARY)
            proxy.drop_connections()
            start = proxy.exchanges
            apply_environment(repo, "prod", target=target, registry=registry, poll=0.0, timeout=30,
                              progress=lambda _: None)
            per_apply = proxy.exchanges - start  # requests of a canary apply
            for k in range(per_apply):  # flip between the two pins with a fault at request k
                version = "1.0.0" if k % 2 == 0 else "1.1.0"
                env_file(repo, name, version, CANARY)
                proxy.drop_connections()
                proxy.inject(kind, after=k, nbytes=CUT_BYTES)
                [result] = apply_environment(repo, "prod", target=target, registry=registry, poll=0.0,
                                             timeout=30, progress=lambda _: None)
                runs += 1
                assert result.phase == "Healthy" and result.version == version, (kind, k, result)
                aliases = direct.aliases(name)
                assert aliases == {"prod": version}, (kind, k, aliases)  # canary alias came and went
                assert target.status().routes[name].stable == version
        finally:
            target.close()
        faults += proxy.total_faults()
        proxy.injected.clear()
    record("mlflow-apply-aliases-under-faults", "faults",
           f"apply (canary, MLflow aliases through the proxy): {runs} applies with a reset, cut answer or "
           f"503 at each MLflow request in turn: {runs}/{runs} converged, aliases right every time",
           applies=runs, faults_injected=faults, mlflow_requests_per_apply=per_apply)


def test_apply_that_loses_mlflow_part_way_says_so_and_a_rerun_converges(
        mlflow: Mlflow, proxy: FaultProxy, short_waits: None, tmp_path: Path, target: TickingTarget,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    name = two_versions(mlflow)
    registry = through(proxy, mlflow)
    direct = get_registry(mlflow.server.url, repo_root=mlflow.work)
    env_file(tmp_path, name, "1.0.0")
    apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0, timeout=30,
                      progress=lambda _: None)
    env_file(tmp_path, name, "1.1.0", CANARY)

    def lose_mlflow(line: str) -> None:  # once the rollout is declared, MLflow goes away for good
        if "rolling out" in line:
            proxy.inject("http_503", times=10_000)

    with pytest.raises(RegistryError) as err:
        apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0, timeout=30,
                          progress=lose_mlflow)
    text = str(err.value)
    assert exit_code_for(err.value) == EXIT_EXTERNAL
    assert text.startswith(f"apply of prod stopped part-way: cannot reach MLflow at {proxy.url}")
    assert f"{name} 1.1.0 declared to the prod target (canary)" in text
    assert f"MLflow alias {name}@prod-canary -> 1.1.0" in text
    assert f"{name} rollout Healthy: 1.1.0 live" in text and "rerun `mlops-actions apply --env prod`" in text
    # live and the registry disagree now, and the gateway's history has the rollout:
    assert target.status().routes[name].stable == "1.1.0"
    assert direct.aliases(name) == {"prod": "1.0.0", "prod-canary": "1.1.0"}
    history = target.host.db.history("prod", name)
    assert any(h["version"] == "1.1.0" and h["event"] == "declared" for h in history), history
    # the CLI prints it as one error with the record, exit 3, no traceback
    from mlops_actions.cli import main

    monkeypatch.setattr("mlops_actions.deploy.apply.target_for", lambda *_a, **_k: target)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    env_file(tmp_path, name, "1.0.0", CANARY)
    assert main(["-C", str(tmp_path), "apply", "--env", "prod", "--wait"]) == EXIT_EXTERNAL
    out = capsys.readouterr().err
    assert "Traceback" not in out and "cannot reach MLflow" in out
    # MLflow back: the rerun converges
    proxy.clear()
    env_file(tmp_path, name, "1.1.0", CANARY)
    [result] = apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0, timeout=30,
                                 progress=lambda _: None)
    assert result.phase == "Healthy" and not result.changed
    assert direct.aliases(name) == {"prod": "1.1.0"}
    record("mlflow-apply-stopped-part-way", "faults",
           "apply losing MLflow after the canary was declared: exit 3 naming the URI and listing what was "
           "done (alias, rollout declared, rollout Healthy); gateway history has the rollout; the rerun "
           "converged (alias prod moved, canary alias removed)", converged=True)
