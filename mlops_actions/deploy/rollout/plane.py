"""The RoutingPlane port: what the rollout engine needs from whatever carries the traffic.

Four calls, like Flagger's router (``SetRoutes`` / ``GetRoutes``) plus what a
model server adds: read and set a model's route (which versions get which share),
make sure a version is loaded before it gets any, and measure one window of
traffic per version. Implementations: the local gateway
(:mod:`mlops_actions.serving.local_plane`), Kubernetes Gateway API
HTTPRoute weights, and :class:`MemoryPlane` here for tests.

:meth:`RoutingPlane.measure` answers with raw per-version samples (errors 0/1,
latencies, labelled correctness, predictions), so the threshold analysis
(:mod:`mlops_actions.deploy.rollout.analysis`) and a canary-vs-stable judge read the same
window. A metrics backend that only has aggregates (Prometheus) fills
:attr:`VersionSample.computed` instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlops_actions.config.specs import AnalysisSpec
from mlops_actions.deploy.rollout.record import Route
from mlops_actions.monitoring.interface import PredictionStore

__all__ = [
    "Computed",
    "MemoryPlane",
    "RoutingPlane",
    "TrafficSource",
    "VersionSample",
    "Window",
    "sample_window",
]

#: which analysis metrics read which signal of a sample
TRAFFIC_METRICS = frozenset({"error_rate", "latency_p95_ms", "latency_p99_ms"})


@dataclass(frozen=True)
class Window:
    """One measurement window: traffic in [since, until); labels and predictions since
    ``labels_since`` (the rollout's start: feedback arrives late, so it accumulates)."""

    since: float
    until: float
    labels_since: float


@dataclass(frozen=True)
class Computed:
    """A value a metrics backend computed (no raw samples): None with no data; ``error`` when
    the backend could not be asked."""

    value: float | None
    samples: int = 0
    error: str | None = None


@dataclass(frozen=True)
class VersionSample:
    """One version's share of one window.

    ``errors`` and ``latencies_ms`` have one entry per request in [since, until);
    ``correct`` one 0/1 per labelled prediction and ``predictions`` one output per
    prediction since ``labels_since``. ``unavailable`` names a signal (``traffic``,
    ``labels``, ``predictions``) that could not be read, and why.
    """

    version: str
    errors: tuple[int, ...] = ()
    latencies_ms: tuple[float, ...] = ()
    correct: tuple[int, ...] = ()
    predictions: tuple[Any, ...] = ()
    computed: Mapping[str, Computed] = field(default_factory=dict)
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.errors)


class RoutingPlane(Protocol):
    """What the engine changes and reads; every call is idempotent."""

    def route(self, model: str) -> Route | None:
        """The model's live route, or None when it is not served."""
        ...

    def set_route(self, route: Route) -> None:
        """Apply a route (who gets which share); requests in flight finish on the old one.
        Never sends traffic to a version that is not loaded."""
        ...

    async def ensure_loaded(self, uri: str) -> None:
        """Load a version so it can take traffic (raises when it cannot be loaded)."""
        ...

    def measure(self, model: str, versions: Sequence[str], window: Window,
                spec: AnalysisSpec) -> dict[str, VersionSample]:
        """One sample per version of the window; ``spec`` says which metrics are wanted (a
        plane may skip reading the signals no metric needs)."""
        ...


class TrafficSource(Protocol):
    """Recent (time, latency ms, error) samples per model and version (the gateway's TrafficStats)."""

    def samples(self, model: str, version: str, since: float,
                until: float | None = None) -> list[tuple[float, float, bool]]: ...


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and len(a) == 1:
        a = a[0]
    try:
        return bool(float(a) == float(b))
    except (TypeError, ValueError):
        return str(a) == str(b)


def sample_window(traffic: TrafficSource, store: PredictionStore | None, model: str,
                  versions: Iterable[str], window: Window, spec: AnalysisSpec) -> dict[str, VersionSample]:
    """Samples from a traffic recorder and a prediction store, reading only what ``spec`` needs."""
    names = {m.name for m in spec.metrics}
    out: dict[str, VersionSample] = {}
    for version in versions:
        errors: tuple[int, ...] = ()
        latencies: tuple[float, ...] = ()
        correct: tuple[int, ...] = ()
        predictions: tuple[Any, ...] = ()
        unavailable: dict[str, str] = {}
        if names & TRAFFIC_METRICS:
            try:
                rows = traffic.samples(model, version, window.since, window.until)
                errors = tuple(int(r[2]) for r in rows)
                latencies = tuple(r[1] for r in rows)
            except Exception as exc:
                unavailable["traffic"] = f"{type(exc).__name__}: {exc}"
        for signal, wanted in (("labels", "accuracy" in names), ("predictions", "prediction_drift" in names)):
            if not wanted:
                continue
            if store is None:
                unavailable[signal] = "RuntimeError: " + (
                    "no prediction store configured" if signal == "labels"
                    else "prediction drift needs a prediction store and a stable version")
                continue
            try:
                frame = store.query(model, version=version, since=window.labels_since)
                if signal == "labels":
                    labelled = frame[frame["actual"].notna()]
                    correct = tuple(int(_same(o, a)) for o, a in zip(
                        labelled["output"].tolist(), labelled["actual"].tolist(), strict=True))
                else:
                    predictions = tuple(frame["output"].tolist())
            except Exception as exc:
                unavailable[signal] = f"{type(exc).__name__}: {exc}"
        out[version] = VersionSample(version, errors, latencies, correct, predictions,
                                     unavailable=unavailable)
    return out


class MemoryPlane:
    """An in-process routing plane for tests: routes in a dict, loads recorded, samples given.

    ``fail_loads`` holds URIs that refuse to load; :meth:`record` adds traffic samples and
    :attr:`store` (optional) provides labels and predictions.
    """

    def __init__(self, store: PredictionStore | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.loaded: list[str] = []
        self.fail_loads: set[str] = set()
        self.store = store
        self._traffic: dict[tuple[str, str], list[tuple[float, float, bool]]] = {}

    def route(self, model: str) -> Route | None:
        return self.routes.get(model)

    def set_route(self, route: Route) -> None:
        for uri in (route.stable_uri, route.candidate_uri):
            if uri and uri not in self.loaded:
                raise RuntimeError(f"route to {uri}, which is not loaded")
        self.routes[route.model] = route

    async def ensure_loaded(self, uri: str) -> None:
        if uri in self.fail_loads:
            raise RuntimeError(f"{uri} does not load")
        if uri not in self.loaded:
            self.loaded.append(uri)

    def record(self, model: str, version: str, latency_ms: float, error: bool,
               at: float | None = None) -> None:
        self._traffic.setdefault((model, version), []).append(
            (time.time() if at is None else at, latency_ms, error))

    def samples(self, model: str, version: str, since: float,
                until: float | None = None) -> list[tuple[float, float, bool]]:
        end = time.time() if until is None else until
        return [s for s in self._traffic.get((model, version), ()) if since <= s[0] < end]

    def measure(self, model: str, versions: Sequence[str], window: Window,
                spec: AnalysisSpec) -> dict[str, VersionSample]:
        return sample_window(self, self.store, model, versions, window, spec)
