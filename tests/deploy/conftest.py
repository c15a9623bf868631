from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_actions.deploy.targets.interface import Desired
from mlops_actions.serving.memory_target import MemoryTarget
from tests.serving._support import FakeLoader, Registry, shared_registry


@pytest.fixture(scope="session")
def mlflow_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return shared_registry(tmp_path_factory)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir()
    return tmp_path


@pytest.fixture()
def target(tmp_path: Path) -> Iterator[MemoryTarget]:
    """A memory target serving model m at 1.0.0 (fake backends)."""
    t = MemoryTarget(tmp_path / ".mlops", FakeLoader())
    t.reconcile(Desired(model="m", version="1.0.0", uri="fake://v1"))
    t.advance()
    yield t
    t.close()
