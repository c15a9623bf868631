from __future__ import annotations

from pathlib import Path

import pytest

from tests.serving._support import Registry, build_registry


@pytest.fixture(scope="session")
def mlflow_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return build_registry(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir()
    return tmp_path
