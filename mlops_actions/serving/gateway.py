"""The gateway: MLflow-compatible scoring, routing between versions, the admin API.

Why Starlette on uvicorn: ASGI (one event loop serves many concurrent requests
while the model predicts on a worker thread, which is what makes
micro-batching possible), among the fastest Python HTTP stacks (uvicorn with
httptools and uvloop), small, typed and well maintained; MLflow's own scoring
server uses the same stack. The scoring path is a plain ASGI function (no
per-request framework objects); everything else is ordinary Starlette routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from mlops_actions.deploy.rollout.record import Route
from mlops_actions.monitoring.interface import PredictionRecord, PredictionStore
from mlops_actions.monitoring.metrics import RouteMetrics, gateway_metrics
from mlops_actions.monitoring.store import new_request_id
from mlops_actions.serving.auth import ENVIRONMENT_HEADER, WRONG_ENVIRONMENT, check_bearer
from mlops_actions.serving.batching import MicroBatcher
from mlops_actions.serving.interface import AdminError, Backend, BackendLoader, RolloutAdmin
from mlops_actions.serving.metrics import TrafficStats
from mlops_actions.serving.openapi import api_routes
from mlops_actions.serving.predlog import LogSampling, PredictionLogger, StoreUnavailable
from mlops_actions.serving.protocol import (
    BadRequest,
    ParsedInput,
    input_mismatch,
    input_problem,
    parse_request,
)
from mlops_actions.serving.pyfunc import BackendCache, load_pyfunc
from mlops_actions.serving.routing import WeightedCounter, choose
from mlops_actions.serving.sticky import StickyForwarder

__all__ = ["Gateway", "GatewayConfig"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class GatewayConfig:
    environment: str
    state_dir: Path
    token: str
    store: PredictionStore | None = None
    #: for the rollout host composed beside the gateway (``serving.local_plane``): routes to
    #: serve when its database has none for a model (from environments/<env>.yaml pins)
    initial_routes: dict[str, Route] = field(default_factory=dict)
    loader: BackendLoader = load_pyfunc
    #: single-model mode: ``initial_routes`` win over what the database holds
    pin_routes: bool = False
    max_body_bytes: int = 1 << 20
    max_log_queue: int = 50_000
    #: scoring requests in progress at once; more are refused with 503 + Retry-After, so memory
    #: stays bounded under overload instead of queueing without limit
    max_inflight: int = 512
    #: seconds a request waits for its prediction to be committed before answering 503
    log_timeout: float = 10.0
    tick_seconds: float = 0.1
    max_batch: int = 128
    predict_threads: int = 2
    #: single-model mode in an A/B test on Kubernetes: forward the other variant's sticky keys
    sticky: StickyForwarder | None = None
    #: per-model share of requests logged (environments/<env>.yaml ``prediction_log``); default all
    log_sampling: LogSampling | None = None


class Gateway:
    """The scoring server of one environment, and its admin API over a :class:`RolloutAdmin`.

    Routes are set from outside (:meth:`set_route`, by the routing plane of the rollout
    host); the gateway routes, scores, logs predictions and keeps the metrics.
    """

    def __init__(self, config: GatewayConfig, admin: RolloutAdmin | None = None) -> None:
        self.config = config
        self.environment = config.environment
        self.admin = admin
        self.store = config.store
        self.stats = TrafficStats()
        self.registry = CollectorRegistry()
        self.metrics = gateway_metrics(self.registry)
        self._route_metrics: dict[tuple[str, str, str], RouteMetrics] = {}
        self.cache = BackendCache(config.loader)
        self.executor = ThreadPoolExecutor(max_workers=config.predict_threads, thread_name_prefix="predict")
        self.logger = PredictionLogger(config.store, max_queue=config.max_log_queue,
                                       on_written=self._count_written, on_failure=self._count_store_failure,
                                       sampling=config.log_sampling) if config.store is not None else None
        self._inflight = 0
        if self.logger is not None:
            self.metrics.prediction_store_up.labels(self.environment).set(1)
        self.routes: dict[str, Route] = {}
        self._batchers: dict[str, MicroBatcher] = {}
        self._counters: dict[str, WeightedCounter] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.ready = False
        #: why loading the models at start failed (the server then stops; ``/readyz`` says it)
        self.start_error: str | None = None
        #: called with :attr:`start_error` when it is set (``serve`` stops uvicorn with it)
        self.on_start_failure: Callable[[str], None] | None = None
        self._start_task: asyncio.Task[None] | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------------ routes
    def route(self, model: str) -> Route | None:
        return self.routes.get(model)

    def set_route(self, route: Route) -> None:
        """Serve ``route`` from the next request on; requests in flight finish on the old one."""
        self.routes = {**self.routes, route.model: route}  # swap the dict: readers see old or new
        self._export_route(route)

    def _export_route(self, route: Route) -> None:
        weights = {(route.stable, "stable"): 1.0}
        if route.candidate is not None and route.mode in ("canary", "ab_test"):
            variant = "canary" if route.mode == "canary" else "b"
            weights = {(route.stable, "stable"): 1.0 - route.weight / 100.0,
                       (route.candidate, variant): route.weight / 100.0}
        elif route.candidate is not None and route.mode == "blue_green":
            weights[(route.candidate, "preview")] = 0.0
        self.metrics.set_weights(model=route.model, environment=self.environment, weights=weights)

    def _count_written(self, batch: list[PredictionRecord]) -> None:
        counts: dict[tuple[str, str, str], int] = {}
        for rec in batch:
            key = (rec.model, rec.version, rec.environment)
            counts[key] = counts.get(key, 0) + 1
        for key, n in counts.items():
            self.metrics.predictions_logged_total.labels(*key).inc(n)

    def _count_store_failure(self, reason: str) -> None:
        self.metrics.prediction_store_failures_total.labels(self.environment).inc()
        self.metrics.prediction_store_up.labels(self.environment).set(0)

    def not_ready_reason(self) -> str | None:
        """Why this gateway must not get traffic now (``/readyz``), or None."""
        if self.start_error is not None:
            return f"the gateway did not start: {self.start_error}"
        if not self.ready:
            return "the gateway is starting (loading models) or stopping"
        if self.logger is not None and self.logger.degraded is not None:
            return self.logger.degraded
        return None

    async def ensure_loaded(self, uri: str) -> None:
        if uri in self._batchers:
            return
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        backend: Backend = await loop.run_in_executor(self.executor, self.cache.get, uri)
        fast = getattr(backend, "fast", None)
        compiled = getattr(fast, "compiled", None)
        log.info("loaded %s in %.1f s (%s)", uri, time.perf_counter() - started,
                 f"compiled: {compiled.kind}" if compiled is not None
                 else "signature fast path" if fast is not None else "pyfunc.predict")
        _freeze_heap(collect=False)
        self._batchers.setdefault(uri, MicroBatcher(backend, self.executor, self.config.max_batch))

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.admin is not None:
            await self.admin.start()  # sets the routes and loads their versions
        _freeze_heap(collect=True)
        self.ready = True
        log.info("ready: %s", ", ".join(f"{m} {r.stable}" for m, r in sorted(self.routes.items())))

    async def start_in_background(self) -> None:
        """:meth:`start` while the server already answers: ``/health`` at once, ``/readyz`` (and
        scoring) once every model is loaded. A failure sets :attr:`start_error` and calls
        :attr:`on_start_failure`."""
        try:
            await self.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.start_error = f"{type(exc).__name__}: {exc}"
            log.error("the gateway did not start: %s", self.start_error)
            if self.on_start_failure is not None:
                self.on_start_failure(self.start_error)

    async def stop(self) -> None:
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._start_task
        self.ready = False
        if self.admin is not None:
            await self.admin.stop()
        if self.logger is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.logger.close)
        if self.store is not None:
            self.store.close()
        self.executor.shutdown(wait=True)

    def unload_unused(self, keep: set[str]) -> None:
        """Unload every version no route serves and ``keep`` does not name."""
        live = set(keep)
        for route in self.routes.values():
            live.add(route.stable_uri)
            if route.candidate_uri:
                live.add(route.candidate_uri)
        gone = [u for u in self._batchers if u not in live]
        for uri in gone:
            del self._batchers[uri]  # requests in flight keep their own reference
        self.cache.evict(live)
        if gone:  # a frozen model is freed by reference counting only: let the collector see it
            gc.unfreeze()
            _freeze_heap(collect=True)

    def status(self) -> dict[str, Any]:
        return {"environment": self.environment, "ready": self.ready,
                "routes": {m: r.to_dict() for m, r in self.routes.items()},
                "rollouts": self.admin.rollouts() if self.admin is not None else {},
                "prediction_log": {"queued": self.logger.depth if self.logger else 0,
                                   "written": self.logger.written if self.logger else 0,
                                   "rejected": self.logger.rejected if self.logger else 0,
                                   "write_failures": self.logger.write_failures if self.logger else 0,
                                   "sampled_out": self.logger.sampled_out if self.logger else 0,
                                   "sample_rates": self.logger.sampling.rates if self.logger else {},
                                   "degraded": self.logger.degraded if self.logger else None}}

    # ------------------------------------------------------------------ scoring
    def _resolve_model(self, path: str, headers: dict[str, str]) -> str:
        if path.startswith("/models/"):
            name = path[len("/models/"):-len("/invocations")]
        else:
            name = headers.get("x-model", "")
            if not name:
                if len(self.routes) == 1:
                    return next(iter(self.routes))
                raise AdminError(400, "BAD_REQUEST", f"{len(self.routes)} models are served here: name one "
                                 f"with the X-Model header or /models/<name>/invocations "
                                 f"(models: {', '.join(sorted(self.routes)) or 'none'})")
        if name not in self.routes:
            raise AdminError(404, "RESOURCE_DOES_NOT_EXIST", f"model {name!r} is not served in "
                             f"{self.environment}; served: {', '.join(sorted(self.routes)) or 'none'}")
        return name

    async def score(self, path: str, headers: dict[str, str], body: bytes
                    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        started = time.perf_counter()
        rid = headers.get("x-request-id") or new_request_id()
        if len(rid) > 128:
            rid = new_request_id()
        extra = [(b"x-request-id", rid.encode())]
        if not self.ready:
            return _error(503, "NOT_READY", "the gateway is starting or stopping", [*extra, RETRY_AFTER])
        if len(body) > self.config.max_body_bytes:
            return _error(413, "PAYLOAD_TOO_LARGE",
                          f"body of {len(body)} bytes exceeds the limit of "
                          f"{self.config.max_body_bytes}", extra)
        if self.config.sticky is not None:
            forwarded = await self.config.sticky.forward(path, headers, body)
            if forwarded is not None:
                return forwarded
        try:
            model = self._resolve_model(path, headers)
        except AdminError as exc:
            return _error(exc.status, exc.code, exc.message, extra)
        refused = self._refuse(model)
        if refused is not None:
            return _error(503, refused[0], refused[1], [*extra, RETRY_AFTER])
        self._inflight += 1
        try:
            return await self._score(model, rid, started, headers, body, extra)
        finally:
            self._inflight -= 1

    def _refuse(self, model: str) -> tuple[str, str] | None:
        """Overloaded or unable to log: refuse before doing any work (503, counted)."""
        why: tuple[str, str] | None = None
        if self._inflight >= self.config.max_inflight:
            why = ("OVERLOADED", f"{self._inflight} requests in progress (limit "
                   f"{self.config.max_inflight}); retry with back-off")
        elif self.logger is not None and self.logger.degraded is not None:
            why = ("STORE_UNAVAILABLE", f"{self.logger.degraded}; predictions are served only when they "
                   "can be logged; retry with back-off")
        if why is not None:
            self.metrics.predictions_rejected_total.labels(model, self.environment).inc()
        return why

    async def _score(self, model: str, rid: str, started: float, headers: dict[str, str], body: bytes,
                     extra: list[tuple[bytes, bytes]]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        route = self.routes[model]
        counter = self._counters.setdefault(model, WeightedCounter())
        choice = choose(route, headers, counter,
                        candidate_ready=route.candidate_uri is not None
                        and route.candidate_uri in self._batchers)
        extra += [(b"x-model-version", choice.version.encode()), (b"x-variant", choice.variant.encode())]
        try:
            parsed = parse_request(body, headers.get("content-type", "application/json"))
        except BadRequest as exc:
            return _error(400, "BAD_REQUEST", str(exc), extra)
        batcher = self._batchers.get(choice.uri)
        if batcher is None:
            return _error(503, "NOT_READY", f"version {choice.version} of {model} is not loaded", extra)
        missing = _missing_columns(parsed, batcher.backend)
        if missing:
            return _error(400, "BAD_REQUEST", f"missing columns {missing}; the model expects "
                          f"{list(batcher.backend.input_columns or ())}", extra)
        if route.mirror and choice.variant == "stable" and route.candidate_uri in self._batchers:
            self._mirror(model, route, rid, parsed)
        status = 200
        try:
            outputs = await batcher.submit(parsed)
            payload = _dumps({"predictions": outputs})
        except Exception as exc:
            if (mismatch := input_mismatch(exc)) is not None:
                return _error(400, "BAD_REQUEST", f"the input does not match the model's signature: "
                              f"{mismatch}", extra)
            if (problem := input_problem(parsed, exc)) is not None:  # NaN, nested values, mixed types
                return _error(400, "BAD_REQUEST", f"the model cannot score this input: {problem} "
                              f"(it raised {type(exc).__name__}: {str(exc)[:200]})", extra)
            status, outputs = 500, None
            payload = json.dumps({"error_code": "MODEL_ERROR",
                                  "message": f"the model raised {type(exc).__name__}: {exc}"}).encode()
        latency_ms = (time.perf_counter() - started) * 1000.0
        self._observe(model, choice.version, choice.variant, status, latency_ms)
        if self.logger is not None and self.logger.wants(model, rid):
            record = PredictionRecord(
                request_id=rid, model=model, version=choice.version, timestamp=time.time(),
                features=parsed.first_features(),
                output=outputs[0] if outputs and len(outputs) == 1 else outputs,
                latency_ms=latency_ms, status=status, environment=self.environment, variant=choice.variant)
            if status != 200:  # nothing acknowledged: log it if we can, don't wait for it
                self.logger.offer(record)
                return status, payload, extra
            refused = await self._log_durably(record)
            if refused is not None:
                self.metrics.predictions_rejected_total.labels(model, self.environment).inc()
                return _error(503, refused[0], refused[1], [*extra, RETRY_AFTER])
        return status, payload, extra

    async def _log_durably(self, record: PredictionRecord) -> tuple[str, str] | None:
        """Wait until the record is committed (group commit); the reason to refuse, or None."""
        assert self.logger is not None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not self.logger.submit(record, done):
            return "OVERLOADED", "the prediction log queue is full; retry with back-off"
        timer = loop.call_later(self.config.log_timeout, _expire, done)  # cheaper than wait_for
        try:
            await done
        except StoreUnavailable as exc:
            return "STORE_UNAVAILABLE", f"{exc}; the prediction was not logged, so it is not served"
        except TimeoutError:
            return "STORE_UNAVAILABLE", (f"the prediction store did not commit within "
                                         f"{self.config.log_timeout:g} s; retry with back-off")
        finally:
            timer.cancel()
        return None

    def _observe(self, model: str, version: str, variant: str, status: int, latency_ms: float) -> None:
        self.stats.record(model, version, latency_ms, status >= 500)
        key = (model, version, variant)
        route_metrics = self._route_metrics.get(key)
        if route_metrics is None:
            route_metrics = self._route_metrics[key] = self.metrics.route(
                model=model, version=version, environment=self.environment, variant=variant)
        route_metrics.observe(status, latency_ms / 1000.0)

    def _mirror(self, model: str, route: Route, rid: str, parsed: ParsedInput) -> None:
        assert route.candidate_uri is not None and route.candidate is not None
        batcher = self._batchers[route.candidate_uri]
        version = route.candidate

        async def shadow() -> None:
            started = time.perf_counter()
            status = 200
            outputs: list[Any] | None = None
            try:
                outputs = await batcher.submit(parsed)
            except Exception:
                status = 500
            latency_ms = (time.perf_counter() - started) * 1000.0
            self._observe(model, version, "shadow", status, latency_ms)
            if self.logger is not None:
                self.logger.offer(PredictionRecord(
                    request_id=f"{rid}.shadow", model=model, version=version, timestamp=time.time(),
                    features=parsed.first_features(), output=outputs, latency_ms=latency_ms, status=status,
                    environment=self.environment, variant="shadow"))

        task = asyncio.get_running_loop().create_task(shadow())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ HTTP
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and scope.get("method") == "POST" and (
                path == "/invocations" or (path.startswith("/models/") and path.endswith("/invocations"))):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                declared = int(headers.get("content-length", "0") or 0)
            except ValueError:
                declared = 0
            if declared > self.config.max_body_bytes:
                status, payload, extra = _error(
                    413, "PAYLOAD_TOO_LARGE",
                    f"body of {declared} bytes exceeds the limit of {self.config.max_body_bytes}", [])
            else:
                body, size = await _read_body(receive, self.config.max_body_bytes)
                if size > self.config.max_body_bytes:  # chunked bodies have no content-length
                    status, payload, extra = _error(
                        413, "PAYLOAD_TOO_LARGE",
                        f"body of {size} bytes exceeds the limit of {self.config.max_body_bytes}", [])
                else:
                    status, payload, extra = await self.score(path, headers, body)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode()), *extra]})
            await send({"type": "http.response.body", "body": payload})
            return
        await self.app(scope, receive, send)

    def _build_app(self) -> Starlette:
        gw = self

        async def healthz(request: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def readyz(request: Request) -> Response:
            reason = gw.not_ready_reason()
            if reason is None:
                return JSONResponse({"ready": True})
            return JSONResponse({"ready": False, "reason": reason,
                                 "degraded": gw.ready}, status_code=503)

        async def metrics(request: Request) -> Response:
            if gw.logger is not None:
                gw.metrics.prediction_queue_depth.set(gw.logger.depth)
                gw.metrics.prediction_store_up.labels(gw.environment).set(gw.logger.degraded is None)
            return Response(generate_latest(gw.registry), media_type=CONTENT_TYPE_LATEST)

        async def feedback(request: Request) -> Response:
            try:
                body = await request.json()
            except Exception as exc:
                return _json_error(400, "BAD_REQUEST", f"body is not valid JSON: {exc}")
            actuals = _actuals(body)
            if actuals is None:
                return _json_error(400, "BAD_REQUEST", 'expected {"request_id": ..., "actual": ...}, '
                                   'a list of those, or {"actuals": {request_id: actual}}')
            if gw.store is None or gw.logger is None:
                return _json_error(501, "NOT_IMPLEMENTED", "this gateway has no prediction store (--store)")
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, gw.logger.flush, 5.0)
            attach = getattr(gw.store, "attach_actuals", None)
            if attach is not None:  # the monitoring store keeps labels that overtake their prediction
                report = await loop.run_in_executor(None, attach, actuals)
                return JSONResponse({"received": report.received, "matched": report.matched,
                                     "unknown": report.unknown, "pending": report.pending})
            matched = await loop.run_in_executor(None, gw.store.record_actuals, actuals)
            return JSONResponse({"received": len(actuals), "matched": matched})

        def admin(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
            async def wrapped(request: Request) -> Response:
                if not check_bearer(request.headers.get("authorization"), gw.config.token):
                    return _json_error(401, "UNAUTHENTICATED",
                                       "admin calls need 'Authorization: Bearer <token>' "
                                       "(MLOPS_GATEWAY_TOKEN or .mlops/gateway.token)")
                meant = request.headers.get(ENVIRONMENT_HEADER)
                if meant and meant != gw.environment:
                    return _json_error(409, WRONG_ENVIRONMENT,
                                       f"this gateway serves environment {gw.environment!r}, not {meant!r}")
                try:
                    result = await handler(request)
                except AdminError as exc:
                    return _json_error(exc.status, exc.code, exc.message)
                if isinstance(result, tuple):
                    return JSONResponse(result[1], status_code=result[0])
                return JSONResponse(result)
            return wrapped

        async def _body(request: Request) -> dict[str, Any]:
            try:
                data = await request.json()
            except Exception as exc:
                raise AdminError(400, "BAD_REQUEST", f"body is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise AdminError(400, "BAD_REQUEST", "expected a JSON object")
            return data

        def host() -> RolloutAdmin:
            if gw.admin is None:
                raise AdminError(501, "NOT_IMPLEMENTED", "this gateway runs no rollout host")
            return gw.admin

        async def status(request: Request) -> Any:
            return gw.status()

        async def declare(request: Request) -> Any:
            return host().declare(await _body(request))

        async def promote(request: Request) -> Any:
            full = request.query_params.get("full", "") in ("1", "true")
            return host().promote(request.path_params["model"], full)

        async def abort(request: Request) -> Any:
            return host().abort(request.path_params["model"], "aborted through the admin API")

        async def rollback(request: Request) -> Any:
            actor = request.query_params.get("actor", "admin-api")
            return host().rollback(request.path_params["model"], actor)

        async def history(request: Request) -> Any:
            return {"history": host().history(request.query_params.get("model"))}

        async def measurements(request: Request) -> Any:
            return {"measurements": host().measurements(request.path_params["model"])}

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            # load the models after the server listens: /health answers at once, /readyz when loaded
            gw._start_task = asyncio.get_running_loop().create_task(gw.start_in_background())
            try:
                yield
            finally:
                await gw.stop()

        return Starlette(routes=[
            HttpRoute("/healthz", healthz), HttpRoute("/readyz", readyz), HttpRoute("/metrics", metrics),
            HttpRoute("/ping", healthz), HttpRoute("/health", healthz),
            HttpRoute("/feedback", feedback, methods=["POST"]),
            HttpRoute("/admin/status", admin(status)),
            HttpRoute("/admin/rollouts", admin(declare), methods=["POST"]),
            HttpRoute("/admin/rollouts/{model}/promote", admin(promote), methods=["POST"]),
            HttpRoute("/admin/rollouts/{model}/abort", admin(abort), methods=["POST"]),
            HttpRoute("/admin/rollouts/{model}/measurements", admin(measurements)),
            HttpRoute("/admin/rollback/{model}", admin(rollback), methods=["POST"]),
            HttpRoute("/admin/history", admin(history)), *api_routes(gw),
        ], lifespan=lifespan)


#: sent with every 503 refusal: the condition is transient (overload, store failing)
RETRY_AFTER = (b"retry-after", b"1")


def _freeze_heap(collect: bool) -> None:
    """Move every object alive now (MLflow, pandas, scikit-learn, the loaded models: ~250k of
    them with one scikit-learn model) out of the garbage collector's reach. Without it
    each full collection walks them all while requests wait: 0.1-0.7 s measured, the worst of
    the p99 tail. Objects made later are collected as usual. ``collect`` first frees what
    loading left behind (one full pass: at start, and when a version is unloaded)."""
    if collect:
        gc.collect()
    gc.freeze()


def _expire(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_exception(TimeoutError())


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        return json.dumps(value).encode()


def _missing_columns(parsed: ParsedInput, backend: Backend) -> list[str]:
    if backend.input_columns is None or parsed.columns is None:
        return []
    have = set(parsed.columns)
    return [c for c in backend.input_columns if c not in have]


def _actuals(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict) and isinstance(body.get("actuals"), dict):
        return {str(k): v for k, v in body["actuals"].items()}
    items = body if isinstance(body, list) else [body]
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or "request_id" not in item or "actual" not in item:
            return None
        out[str(item["request_id"])] = item["actual"]
    return out or None


def _error(status: int, code: str, message: str,
           extra: list[tuple[bytes, bytes]]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return status, json.dumps({"error_code": code, "message": message}).encode(), extra


def _json_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, int]:
    """The body (kept only up to ``limit``) and its full size."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), size

