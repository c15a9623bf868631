"""A real gateway process serving a real (small) MLflow model, shared by the hostile-input tests.

Import the fixture into a test module (``from tests.reliability.hostile_gateway import
hostile_gateway``); it is session-scoped, so one registry and one process serve them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.serving._support import GatewayProcess, Registry, shared_registry, start_gateway, stop, write_env

ENVIRONMENT = "staging"


@dataclass(frozen=True)
class HostileGateway:
    gateway: GatewayProcess
    registry: Registry
    repo: Path


@pytest.fixture(scope="session")
def hostile_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileGateway]:
    registry = shared_registry(tmp_path_factory)
    repo = tmp_path_factory.mktemp("hostile-repo")
    port = free_port()
    write_env(repo, ENVIRONMENT, port, "1.0.0")
    gateway = start_gateway(repo, ENVIRONMENT, port, registry)
    try:
        yield HostileGateway(gateway, registry, repo)
    finally:
        stop(gateway)
