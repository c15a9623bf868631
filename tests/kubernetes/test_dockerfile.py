"""docs/operations/Dockerfile, checked structurally (no Docker engine here; GitHub builds it in k8s-e2e)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from mlops_actions.deploy.targets.kubernetes.render import CONTAINER_PORT, LIVENESS_PATH, READINESS_PATH

ROOT = Path(__file__).parent.parent.parent
DOCKERFILE = ROOT / "docs" / "operations" / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    assert not current, "dangling line continuation"
    return out


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def test_python_slim_base_pinned_to_a_version(steps: list[tuple[str, str]]) -> None:
    bases = [arg for op, arg in steps if op == "FROM"]
    assert len(bases) == 1
    assert re.match(r"^python:3\.\d+-slim", bases[0]) and "latest" not in bases[0]


def test_runs_as_a_non_root_user(steps: list[tuple[str, str]]) -> None:
    users = [arg for op, arg in steps if op == "USER"]
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and user.isdigit() and int(user) >= 1000
    # the user the pod's securityContext runs as is the image's user
    from tests.kubernetes.test_render import render

    pod = next(m for m in render("staging") if m["kind"] == "Rollout")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user)
    # USER comes after every RUN, so nothing later runs as root
    last_run = max(i for i, (op, _) in enumerate(steps) if op == "RUN")
    assert last_run < max(i for i, (op, _) in enumerate(steps) if op == "USER")


def test_exposes_the_port_the_manifests_use(steps: list[tuple[str, str]]) -> None:
    assert [arg for op, arg in steps if op == "EXPOSE"] == [str(CONTAINER_PORT)]
    env = " ".join(arg for op, arg in steps if op == "ENV")
    assert f"PORT={CONTAINER_PORT}" in env


def test_no_add_no_remote_sources_and_copies_exist(steps: list[tuple[str, str]]) -> None:
    assert not [arg for op, arg in steps if op == "ADD"], "use COPY; ADD fetches URLs and unpacks archives"
    for op, arg in steps:
        if op == "COPY":
            *sources, _dest = shlex.split(arg)
            for src in sources:
                assert not re.match(r"^[a-z]+://", src)
                assert (ROOT / src).exists(), f"COPY source {src} is missing from the repository"
        if op == "RUN":
            assert not re.search(r"\b(curl|wget)\b", arg), "no downloads at build time besides pip"


def test_healthcheck_and_probes_use_the_servers_endpoints(steps: list[tuple[str, str]]) -> None:
    checks = [arg for op, arg in steps if op == "HEALTHCHECK"]
    assert len(checks) == 1 and LIVENESS_PATH in checks[0] and "--timeout=" in checks[0]
    assert READINESS_PATH == "/readyz"


def test_entrypoint_serves_model_uri_in_single_model_mode(steps: list[tuple[str, str]]) -> None:
    entry = [arg for op, arg in steps if op == "ENTRYPOINT"]
    assert len(entry) == 1
    argv = json.loads(entry[0])  # exec form, so signals reach the server
    assert argv[:2] == ["/bin/sh", "-c"] and argv[2].startswith("exec mlops-actions serve")
    assert '--model-uri "$MODEL_URI"' in argv[2] and "--host 0.0.0.0" in argv[2]


def test_dockerignore_keeps_the_context_small() -> None:
    ignore = (ROOT / "docs" / "operations" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[1] == "*" or "*" in ignore
    assert "!mlops_actions/" in ignore
