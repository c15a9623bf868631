"""Fixtures for the config tests: a valid repository to break, and the in-memory registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from config_helpers import VALID, FakeRegistry, make_registry


@pytest.fixture
def registry() -> FakeRegistry:
    return make_registry()


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """A copy of the valid repository, free to break."""
    target = tmp_path / "repo"
    shutil.copytree(VALID, target)
    return target
