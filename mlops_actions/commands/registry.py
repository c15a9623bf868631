"""``mlops-actions register``, ``versions``, ``resolve``: thin over the registry port."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from mlops_actions.config.loader import load_model
from mlops_actions.errors import ConfigError
from mlops_actions.registry.interface import BUMPS, ModelRegistry, ModelVersion, by_registry_version, resolve
from mlops_actions.registry.model_registry import version_dict

ORDER = 20

__all__ = ["add_parser", "model_name", "parse_meta", "versions_table"]


def add_parser(sub: Any) -> None:
    env_help = ("MLflow: MLFLOW_TRACKING_URI, else the embedded SQLite under <repo>/.mlops/ "
                "(see docs/registry.md)")
    p: argparse.ArgumentParser = sub.add_parser(
        "register", help="register a model version with the next semantic version",
        description="Register a logged model (runs:/..., models:/m-...), a saved MLflow model "
        "directory or a pickled scikit-learn model (.pkl/.joblib) as the next semantic version "
        "(1.0.0 first; major when the signature changes incompatibly, minor otherwise). " + env_help,
        epilog="example: mlops-actions register models/wine --source runs:/<run_id>/model "
        "--meta accuracy=0.97 --meta training_data=data/train.csv")
    p.add_argument("model", metavar="MODEL_DIR_OR_NAME",
                   help="models/<dir> (its model.yaml names the model) or a registered model name")
    p.add_argument("--source", required=True, metavar="URI_OR_PATH", help="model URI or path")
    p.add_argument("--bump", choices=BUMPS, help="override the automatic bump")
    p.add_argument("--version", dest="set_version", metavar="SEMVER",
                   help="use exactly this version (refused if it exists)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata stored as tag mlops.meta.KEY (repeatable; numbers kept as numbers)")
    p.add_argument("--json", action="store_true", help="print the new version as JSON")
    p.set_defaults(func=run_register)

    p = sub.add_parser(
        "versions", help="list a model's versions with aliases and metadata",
        description="List every version of a model: semver, MLflow version, aliases, created, run, "
        "key metrics. " + env_help)
    p.add_argument("model", metavar="MODEL_DIR_OR_NAME")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_versions)

    p = sub.add_parser(
        "resolve", help="semver or alias -> MLflow version, and back",
        description="Resolve a semantic version (1.2.0), an alias (production) or an MLflow version "
        "number (3) of a model to the others. " + env_help)
    p.add_argument("model", metavar="MODEL_DIR_OR_NAME")
    p.add_argument("ref", metavar="VERSION_OR_ALIAS")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_resolve)


def _registry(args: argparse.Namespace) -> ModelRegistry:
    from mlops_actions.registry.mlflow_registry import get_registry

    return get_registry(repo_root=getattr(args, "repo", "."))


def model_name(arg: str, repo: str | Path = ".") -> str:
    """``models/wine``, ``wine`` (a dir under models/) or a path to model.yaml -> its ``name``."""
    root = Path(repo)
    for candidate in (Path(arg), root / arg, root / "models" / arg):
        yaml_path = candidate if candidate.name == "model.yaml" else candidate / "model.yaml"
        if yaml_path.is_file():
            return load_model(yaml_path).name
    return arg


def parse_meta(items: list[str]) -> dict[str, object]:
    meta: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--meta {item!r} is not KEY=VALUE", hint="e.g. --meta accuracy=0.93")
        parsed: object = value
        try:
            number = float(value)
            parsed = int(value) if value.lstrip("-").isdigit() else number
        except ValueError:
            pass
        meta[key.strip()] = parsed
    return meta


def run_register(args: argparse.Namespace) -> int:
    name = model_name(args.model, args.repo)
    meta = parse_meta(args.meta)
    source = args.source
    if "://" not in source and not source.startswith(("runs:/", "models:/")) \
            and not Path(source).exists() and (Path(args.repo) / source).exists():
        source = str(Path(args.repo) / source)
    mv = _registry(args).register(name, source, metadata=meta, bump=args.bump, version=args.set_version)
    if args.json:
        print(json.dumps(version_dict(mv), indent=2, sort_keys=True))
    else:
        print(f"registered {mv.name} {mv.version} (MLflow version {mv.registry_version}, {mv.uri})")
    return 0


def _created(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else "-"


def _key_metrics(mv: ModelVersion, limit: int = 3) -> str:
    shown = []
    for key, value in mv.metadata.items():
        try:
            number = float(value)
        except ValueError:
            continue
        shown.append(f"{key}={number:.4g}")
        if len(shown) == limit:
            break
    return " ".join(shown) or "-"


def versions_table(versions: list[ModelVersion]) -> str:
    header = ("VERSION", "MLFLOW", "ALIASES", "CREATED (UTC)", "RUN", "METRICS")
    rows = [header]
    for mv in versions:
        aliases = ",".join(mv.aliases) + (" (archived)" if mv.archived else "")
        rows.append((mv.version, mv.registry_version, aliases.strip() or "-", _created(mv.created_at),
                     (mv.run_id or "-")[:8], _key_metrics(mv)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def run_versions(args: argparse.Namespace) -> int:
    name = model_name(args.model, args.repo)
    versions = _registry(args).list_versions(name)
    if args.json:
        print(json.dumps([version_dict(mv) for mv in versions], indent=2, sort_keys=True))
    elif not versions:
        print(f"{name}: no versions registered")
    else:
        print(versions_table(versions))
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    name = model_name(args.model, args.repo)
    registry = _registry(args)
    ref: str = args.ref
    # a plain number is an MLflow version (-> semver); anything else a semver or an alias
    mv = by_registry_version(registry, name, ref) if ref.isdigit() else resolve(registry, name, ref)
    if args.json:
        print(json.dumps(version_dict(mv), indent=2, sort_keys=True))
    else:
        aliases = ", ".join(mv.aliases) or "none"
        print(f"{name} {mv.version} = MLflow version {mv.registry_version} ({mv.uri}); aliases: {aliases}")
    return 0
