"""Issue 9 item 5: the gateway's HTTP API against its own OpenAPI document, fuzzed by schemathesis.

The document (``GET /openapi.json``, built by :mod:`mlops_actions.serving.openapi`) must name
exactly the routes the application has. Then schemathesis (its CLI, as a user would run it)
generates requests from the document against a real gateway process serving a real
scikit-learn model from MLflow, with the admin token, and checks two things on every
response: no 5xx for a client's mistake (``not_a_server_error``) and the body matches the
documented schema of its status (``response_schema_conformance``). What it found is fixed in
the product (``{"inputs": [null, null]}`` was a 500; it is a 400 now).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from starlette.routing import Route as StarletteRoute

from mlops_actions.serving.gateway import GatewayConfig
from mlops_actions.serving.local_plane import host_of, local_gateway
from mlops_actions.serving.openapi import SCORING_PATHS, openapi_document
from tests.reliability.figures import record
from tests.reliability.hostile_gateway import HostileGateway, hostile_gateway  # noqa: F401 - fixture
from tests.serving._support import TOKEN, FakeLoader

SEED = 20260901
EXAMPLES_PER_OPERATION = 10
CHECKS = "not_a_server_error,response_schema_conformance"


def app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """(path, method) of every route the gateway's application answers (HEAD aside)."""
    gw = local_gateway(GatewayConfig(environment="t", state_dir=tmp_path, token="x", loader=FakeLoader()))
    try:
        found = {(path, "POST") for path in SCORING_PATHS}  # the raw ASGI scoring path
        for route in gw.app.routes:
            assert isinstance(route, StarletteRoute)
            found |= {(route.path, m) for m in (route.methods or ()) if m != "HEAD"}
        return found
    finally:
        host_of(gw).db.close()
        gw.executor.shutdown()


def test_the_document_names_exactly_the_routes_the_app_has(tmp_path: Path) -> None:
    document = openapi_document({"iris": ["a", "b"]})
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    assert documented == app_routes(tmp_path)
    admin = [op for path, ops in document["paths"].items() if path.startswith("/admin/")
             for op in ops.values()]
    assert admin and all(op["security"] == [{"bearerAuth": []}] for op in admin)
    assert all("security" not in op for path, ops in document["paths"].items()
               if not path.startswith("/admin/") for op in ops.values())
    scoring = document["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    assert scoring["example"] == {"dataframe_split": {"columns": ["a", "b"], "data": [[0.0, 0.0]]}}


def test_the_live_document_and_version(hostile_gateway: HostileGateway) -> None:  # noqa: F811
    url = hostile_gateway.gateway.url
    doc = requests.get(url + "/openapi.json", timeout=10).json()
    assert doc["openapi"] == "3.0.3"
    named = doc["paths"]["/models/{model}/invocations"]["post"]
    assert named["parameters"][0]["example"] == "task_classifier"
    version = requests.get(url + "/version", timeout=10).json()
    assert version["environment"] == "staging" and version["version"]
    # what schemathesis found, fixed: a body the signature refuses is the client's fault
    bad = requests.post(url + "/invocations", json={"inputs": [None, None]}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error_code"] == "BAD_REQUEST", bad.text
    assert "signature" in bad.json()["message"]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
        hostile_gateway: HostileGateway, tmp_path: Path) -> None:  # noqa: F811
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        pytest.fail("schemathesis is not installed: it is in the dev extras (pip install -e .[dev])")
    report = tmp_path / "schemathesis.json"
    url = hostile_gateway.gateway.url
    proc = subprocess.run(
        [st, "run", f"{url}/openapi.json", "--checks", CHECKS, "--max-examples", str(EXAMPLES_PER_OPERATION),
         "--seed", str(SEED), "--workers", "1", "--phases", "examples,coverage,fuzzing",
         "--request-timeout", "20", "--header", f"Authorization: Bearer {TOKEN}",
         "--report", "json", "--report-json-path", str(report), "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(report.read_text())
    cases = result["test_cases"]
    failures = result["failures"] + result["errors"]
    operations = result["operations"]
    record("gateway-api-schemathesis", "hostile-input",
           f"gateway HTTP API: schemathesis ran {cases['generated']} generated requests over "
           f"{operations['tested']} documented operations against a live gateway and MLflow model -> "
           f"{cases['with_failures']} server errors or schema mismatches",
           cases=cases["generated"], operations=operations["tested"], failures=cases["with_failures"],
           errored=cases["errored"], seconds=round(result["running_time"], 1), seed=SEED)
    assert proc.returncode == 0 and not failures, proc.stdout[-6000:]
    assert operations["tested"] == operations["total"] >= 16
    assert cases["generated"] >= 200


@pytest.mark.parametrize("body", [
    b'{"inputs": [[NaN, 3.5, 1.4, 0.2]]}',
    b'{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"], '
    b'"data": [[5.1, Infinity, 1.4, 0.2]]}}',
    b'{"dataframe_records": [{"sepal_length": [5.1], "sepal_width": 3.5, "petal_length": 1.4, '
    b'"petal_width": 0.2}]}',
    b'{"inputs": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}",
], ids=["nan", "infinity", "nested-cell", "5000-levels"])
def test_hostile_values_are_400_on_a_real_model_and_not_counted(
        hostile_gateway: HostileGateway, body: bytes) -> None:  # noqa: F811
    # issue 16: NaN/Infinity were 500 (counted against the version: a canary would roll back for a
    # client's mistake) and 5000 levels of nesting a 500 with a RecursionError in the log
    url = hostile_gateway.gateway.url

    def errors_counted() -> float:
        text = requests.get(url + "/metrics", timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("mlops_request_errors_total{"))

    before = errors_counted()
    answer = requests.post(url + "/invocations", data=body, headers={"Content-Type": "application/json"},
                           timeout=20)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "BAD_REQUEST" and answer.json()["message"]
    assert errors_counted() == before
