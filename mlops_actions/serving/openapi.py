"""The gateway's HTTP API as an OpenAPI 3.0 document, served at ``GET /openapi.json``.

Why a hand-written document rather than one generated from the code: the scoring path
is a raw ASGI function (no framework objects to introspect) and the admin routes take
plain JSON, so the document is the contract, written once here; a test checks that it
names exactly the routes the application has, and schemathesis fuzzes the running
gateway against it (no 5xx for client errors, responses as documented).

Also here: ``GET /version`` (toolkit and environment), so the two routes the gateway
gets from this module sit next to the document that describes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from mlops_actions import __version__
from mlops_actions.serving.auth import ENVIRONMENT_HEADER


class _Backend(Protocol):
    @property
    def input_columns(self) -> Sequence[str] | None: ...


class _Cache(Protocol):
    def loaded(self, uri: str) -> _Backend | None: ...


class _Route(Protocol):
    @property
    def stable_uri(self) -> str: ...


class ServedGateway(Protocol):
    """What the two routes read from the gateway (``serving.gateway.Gateway`` has it): named
    here, not imported, so the gateway module may import this one without a cycle."""

    @property
    def routes(self) -> Mapping[str, _Route]: ...
    @property
    def cache(self) -> _Cache: ...
    @property
    def environment(self) -> str: ...

__all__ = ["SCORING_PATHS", "api_routes", "openapi_document"]

#: Paths served by the gateway's raw ASGI scoring function (not Starlette routes): POST only.
SCORING_PATHS = ("/invocations", "/models/{model}/invocations")

_ERROR = {"$ref": "#/components/schemas/Error"}
_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {400: "bad request", 401: "missing or wrong bearer token", 404: "not found",
             409: "conflict: an active rollout, or (WRONG_ENVIRONMENT) the gateway serves another "
                  "environment than X-Mlops-Environment names",
             413: "body too large", 500: "the model raised",
             501: "no prediction store", 503: "not ready, or overloaded"}
    return {str(code): _json(_ERROR, words[code]) for code in codes}


def _scoring_operation(summary: str, with_path_model: bool, served: Mapping[str, Sequence[str] | None]
                       ) -> dict[str, Any]:
    rows = {"type": "array", "minItems": 1, "items": {"type": "array", "items": {}}}
    records = {"type": "array", "minItems": 1, "items": {"type": "object"}}
    body_schema = {"oneOf": [
        {"type": "object", "required": ["dataframe_split"], "properties": {"dataframe_split": {
            "type": "object", "required": ["data"],
            "properties": {"columns": {"type": "array", "items": {"type": "string"}}, "data": rows}}}},
        {"type": "object", "required": ["dataframe_records"], "properties": {"dataframe_records": records}},
        {"type": "object", "required": ["instances"], "properties": {"instances": {"type": "array"}}},
        {"type": "object", "required": ["inputs"], "properties": {"inputs": {}}},
    ]}
    model, columns = next(iter(served.items()), ("my_model", None))
    columns = list(columns or ["x"])
    example = {"dataframe_split": {"columns": columns, "data": [[0.0] * len(columns)]}}
    parameters: list[dict[str, Any]] = [
        {"name": "X-Request-Id", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "echoed back; also the key of /feedback (generated when absent or over 128 chars)"},
        {"name": "X-User-Id", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "A/B tests: the sticky key (the header is configurable per strategy)"},
        {"name": "X-Preview", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "blue-green: a true value scores the preview version"},
    ]
    if with_path_model:
        parameters.insert(0, {"name": "model", "in": "path", "required": True, "schema": _NAME,
                              "example": model})
    else:
        parameters.insert(0, {"name": "X-Model", "in": "header", "required": False, "schema": _NAME,
                              "example": model, "description": "the model, when more than one is served"})
    return {
        "summary": summary, "tags": ["scoring"], "parameters": parameters,
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": body_schema, "example": example},
            "text/csv": {"schema": {"type": "string"},
                         "example": ",".join(columns) + "\n" + ",".join("0" for _ in columns) + "\n"}}},
        "responses": {"200": _json({"type": "object", "required": ["predictions"],
                                    "properties": {"predictions": {"type": "array"}}},
                                   "one prediction per row, as `mlflow models serve` answers"),
                      **_errors(400, 404, 413, 500, 503)},
    }


_ENVIRONMENT_PARAM = {
    "name": ENVIRONMENT_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
    "description": "the environment the caller acts for; a gateway of another environment answers 409 "
                   "WRONG_ENVIRONMENT (mlops-actions sends it, so a URL pasted into the wrong "
                   "environment file cannot deploy)"}


def _admin(summary: str, ok: dict[str, Any], *, errors: tuple[int, ...] = (),
           params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": ["admin"], "security": [{"bearerAuth": []}],
                          "parameters": [*(params or []), _ENVIRONMENT_PARAM],
                          "responses": {"200": _json(ok, "ok"), **_errors(401, 409, *errors)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def openapi_document(served: Mapping[str, Sequence[str] | None] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of every route the gateway serves.

    ``served``: model name -> the input columns its signature requires (None: unknown); the
    first one gives the examples, so a client (or a fuzzer) starts from a request that scores.
    """
    served = served or {}
    obj = {"type": "object"}
    model_param = {"name": "model", "in": "path", "required": True, "schema": _NAME,
                   "example": next(iter(served), "my_model")}
    rollout = {"type": "object", "required": ["rollout"], "properties": {"rollout": obj}}
    ready = {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}}
    health = {"get": {"summary": "liveness", "tags": ["health"],
                      "responses": {"200": _json({"type": "object", "required": ["status"],
                                                  "properties": {"status": {"type": "string"}}}, "alive")}}}
    strategy = {"type": "object", "required": ["type"], "properties": {
        "type": {"type": "string", "enum": ["full", "canary", "blue_green", "ab_test"]}}}
    declare = {"type": "object", "required": ["model", "version", "uri"], "properties": {
        "model": _NAME, "version": {"type": "string"},
        "uri": {"type": "string", "description": "registry URI: models:/NAME/N, models:/NAME@ALIAS, "
                "models:/m-ID or runs:/RUN/PATH (paths and file: are refused)"},
        "version_b_uri": {"type": "string"}, "strategy": strategy, "actor": {"type": "string"}}}
    paths: dict[str, Any] = {
        "/invocations": {"post": _scoring_operation("score with the model's route (X-Model when several)",
                                                    False, served)},
        "/models/{model}/invocations": {"post": _scoring_operation("score one named model", True, served)},
        "/ping": health, "/health": health, "/healthz": health,
        "/readyz": {"get": {"summary": "readiness: routes loaded", "tags": ["health"], "responses": {
            "200": _json(ready, "ready"), "503": _json(ready, "starting or stopping")}}},
        "/version": {"get": {"summary": "toolkit version and environment", "tags": ["health"], "responses": {
            "200": _json({"type": "object", "required": ["version", "environment"], "properties": {
                "version": {"type": "string"}, "environment": {"type": "string"}}}, "versions")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "tags": ["health"], "responses": {
            "200": {"description": "text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "this document", "tags": ["health"],
                                  "responses": {"200": _json(obj, "OpenAPI 3.0 document")}}},
        "/feedback": {"post": {
            "summary": "late labels for logged predictions", "tags": ["scoring"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                {"type": "object", "required": ["request_id", "actual"],
                 "properties": {"request_id": {"type": "string"}, "actual": {}}},
                {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["request_id", "actual"],
                    "properties": {"request_id": {"type": "string"}, "actual": {}}}},
                {"type": "object", "required": ["actuals"], "properties": {"actuals": obj}}]}}}},
            "responses": {"200": _json({"type": "object", "required": ["received", "matched"], "properties": {
                "received": {"type": "integer"}, "matched": {"type": "integer"}}}, "labels attached"),
                **_errors(400, 501)}}},
        "/admin/status": {"get": _admin("routes, rollouts and prediction log of the environment", {
            "type": "object", "required": ["environment", "ready", "routes", "rollouts"], "properties": {
                "environment": {"type": "string"}, "ready": {"type": "boolean"}, "routes": obj,
                "rollouts": obj, "prediction_log": obj}})},
        "/admin/rollouts": {"post": {**_admin(
            "declare a rollout (idempotent: the same declaration again changes nothing)",
            {"type": "object", "required": ["changed"], "properties": {"changed": {"type": "boolean"}}},
            errors=(400, 409), body=declare),
            "responses": {"200": _json({"type": "object", "required": ["changed"],
                                        "properties": {"changed": {"type": "boolean"}}}, "nothing to change"),
                          "201": _json({"type": "object", "required": ["changed", "rollout"],
                                        "properties": {"changed": {"type": "boolean"}, "rollout": obj}},
                                       "rollout declared"),
                          **_errors(400, 401, 409)}}},
        "/admin/rollouts/{model}/promote": {"post": _admin(
            "skip the current pause or analysis (full=true: to 100%)", rollout, errors=(404,),
            params=[model_param, {"name": "full", "in": "query", "required": False,
                                  "schema": {"type": "string", "enum": ["1", "true", "0", "false"]}}])},
        "/admin/rollouts/{model}/abort": {"post": _admin(
            "abort the active rollout: traffic back to stable", rollout, errors=(404,),
            params=[model_param])},
        "/admin/rollouts/{model}/measurements": {"get": _admin(
            "analysis measurements of the model's latest rollout",
            {"type": "object", "required": ["measurements"],
             "properties": {"measurements": {"type": "array", "items": obj}}},
            errors=(404,), params=[model_param])},
        "/admin/rollback/{model}": {"post": _admin(
            "abort the active rollout, or go back to the previous version", rollout, errors=(404, 409),
            params=[model_param, {"name": "actor", "in": "query", "required": False,
                                  "schema": {"type": "string", "maxLength": 128}}])},
        "/admin/history": {"get": _admin(
            "deploy history of the environment",
            {"type": "object", "required": ["history"],
             "properties": {"history": {"type": "array", "items": obj}}},
            params=[{"name": "model", "in": "query", "required": False, "schema": _NAME}])},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "mlops-actions gateway", "version": __version__,
                 "description": "MLflow-compatible scoring, health, metrics, late labels and the "
                                "token-protected admin API of one environment's gateway."},
        "paths": paths,
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["error_code", "message"], "properties": {
                "error_code": {"type": "string"}, "message": {"type": "string"}}}},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "MLOPS_GATEWAY_TOKEN or .mlops/gateway.token"}},
        },
    }


def api_routes(gateway: ServedGateway) -> list[HttpRoute]:
    """``GET /openapi.json`` and ``GET /version``, for the gateway's route table."""

    async def openapi(request: Request) -> Response:
        served: dict[str, Sequence[str] | None] = {}
        for name, route in sorted(gateway.routes.items()):
            backend = gateway.cache.loaded(route.stable_uri)
            served[name] = backend.input_columns if backend is not None else None
        return JSONResponse(openapi_document(served))

    async def version(request: Request) -> Response:
        return JSONResponse({"version": __version__, "environment": gateway.environment})

    return [HttpRoute("/openapi.json", openapi, methods=["GET"]),
            HttpRoute("/version", version, methods=["GET"])]
