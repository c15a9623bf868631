"""``mlops-actions render --env ENV --out DIR``: Kubernetes manifests for Argo CD / Flux.

One YAML file per object (``<namespace>/<kind>-<name>.yaml``, keys sorted) and a
``kustomization.yaml`` listing them. Files this command wrote before that the
environment no longer declares are removed (only files carrying our header).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from mlops_actions.config.loader import load_environment, load_model
from mlops_actions.config.specs import ModelSpec, parse_semver
from mlops_actions.deploy.targets.kubernetes.interface import Manifest, ResolvedVersion
from mlops_actions.deploy.targets.kubernetes.render import Resolver, manifest_filename, render_environment
from mlops_actions.deploy.targets.kubernetes.resolve import alias_resolver, registry_resolver
from mlops_actions.errors import ConfigError

ORDER = 60
HEADER = "# Rendered by mlops-actions from {source}; do not edit: change the environment file.\n"
_HEADER_PREFIX = "# Rendered by mlops-actions"

__all__ = ["add_parser", "display_path", "environment_path", "load_for_render", "run", "write_manifests"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "render", help="write the Kubernetes manifests of an environment (for Argo CD / Flux)",
        description="Render environments/ENV.yaml (target type kubernetes) into one YAML file per "
                    "object under DIR, plus a kustomization.yaml.")
    p.add_argument("--env", required=True, metavar="ENV",
                   help="environment name (environments/ENV.yaml) or path to the file")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--no-registry", action="store_true",
                   help="do not ask MLflow: MODEL_URI = models:/NAME@v<semver with dashes> (an alias)")
    p.add_argument("--previous", action="append", default=[], metavar="MODEL=SEMVER",
                   help="gateway-api mode: the version live now, kept beside the new one (repeatable)")
    p.set_defaults(func=run)


def environment_path(repo: Path, env: str) -> Path:
    candidate = Path(env)
    if candidate.suffix in (".yaml", ".yml") and (candidate.exists() or (repo / candidate).exists()):
        return candidate if candidate.exists() else repo / candidate
    path = repo / "environments" / f"{env}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (repo / "environments").glob("*.yaml"))
        raise ConfigError(f"environment {env!r} not found: no {path}",
                          hint=f"environments here: {', '.join(known) or 'none'}")
    return path


def load_for_render(repo: Path, env: str) -> tuple[str, Path, Any, dict[str, ModelSpec]]:
    """(name, path, EnvironmentSpec, model specs of the pinned models)."""
    from mlops_actions.deploy.targets.kubernetes.adapter import sibling_environments
    from mlops_actions.deploy.targets.kubernetes.render import check_shared_namespace

    path = environment_path(repo, env)
    spec = load_environment(path)
    name = spec.name or path.stem
    check_shared_namespace(name, spec, sibling_environments(repo, path), str(path))
    models: dict[str, ModelSpec] = {}
    for key in spec.models:
        model_file = repo / "models" / key / "model.yaml"
        if model_file.exists():
            models[key] = load_model(model_file)
    return name, path, spec, models


def _previous(values: list[str], resolve: Resolver,
              models: dict[str, ModelSpec]) -> dict[str, ResolvedVersion]:
    out: dict[str, ResolvedVersion] = {}
    for value in values:
        key, sep, version = value.partition("=")
        if not sep or key not in models:
            raise ConfigError(f"--previous {value!r}: expected MODEL=SEMVER with MODEL one of "
                              f"{', '.join(sorted(models)) or 'the pinned models'}")
        try:
            parse_semver(version)
        except ValueError as exc:
            raise ConfigError(f"--previous {value!r}: {exc}") from None
        out[key] = resolve(key, models[key], version)
    return out


def write_manifests(manifests: list[Manifest], out: Path, source: str) -> list[Path]:
    """Write one file per object with sorted keys; remove our stale files; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for m in manifests:
        path = out / manifest_filename(m)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(m, sort_keys=True, default_flow_style=False)
        path.write_text(HEADER.format(source=source) + text, encoding="utf-8")
        written.append(path)
    keep = set(written)
    for old in out.glob("*/*.yaml"):
        if old not in keep and old.read_text(encoding="utf-8").startswith(_HEADER_PREFIX):
            old.unlink()
    resources = sorted(p.relative_to(out).as_posix() for p in written)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": resources}
    (out / "kustomization.yaml").write_text(
        HEADER.format(source=source) + yaml.safe_dump(kustomization, sort_keys=True), encoding="utf-8")
    return written


def display_path(repo: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def run(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    name, path, spec, models = load_for_render(repo, args.env)
    resolve = alias_resolver if args.no_registry else registry_resolver(repo_root=repo)
    previous = _previous(args.previous, resolve, models)
    source = display_path(repo, path)
    manifests = render_environment(name, spec, models, resolve, source=str(path), display_source=source,
                                   previous=previous)
    written = write_manifests(manifests, Path(args.out), source)
    print(f"rendered {len(written)} object(s) of environment {name!r} into {args.out}")
    return 0
