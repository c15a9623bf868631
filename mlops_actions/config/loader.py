"""Loading model.yaml and environments/*.yaml into specs.

PROVISIONAL: plain ``yaml.safe_load`` + pydantic. The safe loader (no aliases,
no duplicate keys, size and depth caps, YAML 1.1 surprises rejected, every error
as ``path:line:col``) replaces the internals; the public functions keep their
signatures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pydantic
import yaml

from mlops_actions.config.specs import EnvironmentSpec, ModelSpec
from mlops_actions.errors import ConfigError, Location

__all__ = ["Repo", "load_environment", "load_model", "load_repo"]


@dataclass(frozen=True)
class Repo:
    """Every declared model and environment of a repository."""

    root: Path
    models: dict[str, ModelSpec] = field(default_factory=dict)  # key: directory under models/
    environments: dict[str, EnvironmentSpec] = field(default_factory=dict)  # key: file stem

    def model_dir(self, key: str) -> Path:
        return self.root / "models" / key


def _load(path: Path, kind: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(exc), location=Location(str(path))) from None
    try:
        return kind.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = [ConfigError(f"{'.'.join(map(str, e['loc']))}: {e['msg']}",
                              location=Location(str(path))) for e in exc.errors()]
        raise ConfigError(f"{len(errors)} problem(s) in {path}", errors=errors) from None


def load_model(path: str | Path) -> ModelSpec:
    spec = _load(Path(path), ModelSpec)
    assert isinstance(spec, ModelSpec)
    return spec


def load_environment(path: str | Path) -> EnvironmentSpec:
    spec = _load(Path(path), EnvironmentSpec)
    assert isinstance(spec, EnvironmentSpec)
    return spec


def load_repo(root: str | Path) -> Repo:
    """Load ``models/*/model.yaml`` and ``environments/*.yaml`` under ``root``."""
    base = Path(root)
    models = {p.parent.name: load_model(p) for p in sorted(base.glob("models/*/model.yaml"))}
    envs = {p.stem: load_environment(p) for p in sorted(base.glob("environments/*.yaml"))}
    return Repo(root=base, models=models, environments=envs)
