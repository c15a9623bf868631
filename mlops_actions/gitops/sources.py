"""Where desired state comes from: ``environments/*.yaml`` at a git ref or in a directory.

A git ref is read with ``git ls-tree`` and ``git show REF:path`` (no checkout),
written to a temporary directory and loaded with the normal loader, so errors
are the loader's, with the path rewritten to ``REF:environments/<env>.yaml``.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from mlops_actions.config.loader import load_environment
from mlops_actions.config.specs import EnvironmentSpec
from mlops_actions.errors import ConfigError, ExternalError, Location

__all__ = [
    "EnvSource",
    "git",
    "key_location",
    "pin_location",
    "read_dir",
    "read_git",
    "read_source",
]

ENV_DIR = "environments"


@dataclass(frozen=True)
class EnvSource:
    """The environments of one side of a plan (base or head)."""

    label: str  # "main (1a2b3c4)" or "working tree" or a directory
    envs: Mapping[str, EnvironmentSpec]
    texts: Mapping[str, str]  # env -> raw YAML (for line numbers)
    paths: Mapping[str, str]  # env -> path to show in messages


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git in ``repo``; a failure is bad input (an unknown ref) unless git is missing."""
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=60, check=False)
    except FileNotFoundError:
        raise ExternalError("git is not installed", hint="install git (Actions runners have it)") from None
    except subprocess.TimeoutExpired:
        raise ExternalError(f"git {' '.join(args)} timed out after 60s") from None
    if check and proc.returncode != 0:
        raise ConfigError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}",
                          hint="is the ref fetched? In Actions use actions/checkout with fetch-depth: 0")
    return proc.stdout


def _load_texts(texts: Mapping[str, str], shown: Mapping[str, str]) -> dict[str, EnvironmentSpec]:
    envs: dict[str, EnvironmentSpec] = {}
    problems: list[ConfigError] = []
    with tempfile.TemporaryDirectory(prefix="mlops-plan-") as tmp:
        for env, text in texts.items():
            path = Path(tmp) / f"{env}.yaml"
            path.write_text(text, encoding="utf-8")
            try:
                envs[env] = load_environment(path)
            except ConfigError as exc:
                for e in exc.errors:
                    loc = e.location
                    e.location = (replace(loc, path=shown[env]) if loc is not None
                                  and loc.path == str(path) else loc or Location(shown[env]))
                    e.message = e.message.replace(str(path), shown[env])
                    problems.append(e)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in environment files", errors=problems)
    return envs


def read_git(repo: Path, ref: str) -> EnvSource:
    sha = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    names = git(repo, "ls-tree", "--name-only", sha, f"{ENV_DIR}/").split()
    texts: dict[str, str] = {}
    shown: dict[str, str] = {}
    for name in names:
        if not name.endswith(".yaml"):
            continue
        env = Path(name).stem
        texts[env] = git(repo, "show", f"{sha}:{name}")
        shown[env] = f"{ref}:{name}"
    label = ref if sha.startswith(ref) else f"{ref} ({sha[:7]})"
    return EnvSource(label=label, envs=_load_texts(texts, shown), texts=texts, paths=shown)


def read_dir(root: Path, label: str | None = None) -> EnvSource:
    envs: dict[str, EnvironmentSpec] = {}
    texts: dict[str, str] = {}
    paths: dict[str, str] = {}
    problems: list[ConfigError] = []
    for path in sorted((root / ENV_DIR).glob("*.yaml")):
        shown = str(path.relative_to(root)) if label is None else str(path)
        texts[path.stem] = path.read_text(encoding="utf-8")
        paths[path.stem] = shown
        try:
            envs[path.stem] = load_environment(path)
        except ConfigError as exc:
            for e in exc.errors:
                if e.location is not None and e.location.path == str(path):
                    e.location = replace(e.location, path=shown)
                problems.append(e)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in environment files", errors=problems)
    return EnvSource(label=label or "working tree", envs=envs, texts=texts, paths=paths)


def read_source(repo: Path, spec: str | None) -> EnvSource:
    """``None``: the working tree of ``repo``; an existing directory; else a git ref."""
    if spec is None:
        return read_dir(repo)
    candidate = Path(spec)
    if candidate.is_dir():
        return read_dir(candidate, label=str(candidate))
    return read_git(repo, spec)


def pin_location(text: str, path: str, model: str, key: str = "version") -> Location:
    """Line and column of ``models.<model>.<key>`` in an environment file (best effort)."""
    return key_location(text, path, "models", model, key)


def key_location(text: str, path: str, *keys: str) -> Location:
    """Line and column of the value at ``keys`` in a YAML file; just the path when absent."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return Location(path)
    node: yaml.Node | None = root
    for step in keys:
        if not isinstance(node, yaml.MappingNode):
            return Location(path)
        found = None
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == step:
                found = v
                break
        if found is None:
            return Location(path)
        node = found
    assert node is not None
    return Location(path, node.start_mark.line + 1, node.start_mark.column + 1)
