"""``mlops-actions validate``: is this model version good enough for where the PR sends it?

Exit codes: 0 passed; 1 failed (a threshold, a slice, a behavioural test, the
model raised on predict, or something inconclusive without
``--allow-inconclusive``); 2 bad input; 3 MLflow failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mlops_actions.errors import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    ConfigError,
    Location,
    MlopsActionsError,
    RegistryError,
)
from mlops_actions.github import actions

ORDER = 30


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "validate", help="evaluate a model version against model.yaml (thresholds, slices, behaviour)",
        description="Evaluate a registered model version on the test data named in models/MODEL/model.yaml: "
        "metrics and thresholds (MLflow MetricThreshold semantics) against the version live in the "
        "target environment, dataset slices, behavioural tests. Writes JSON, Markdown and HTML reports "
        "and logs an evaluation run to MLflow.",
        epilog="Exit codes: 0 passed, 1 failed (or inconclusive without --allow-inconclusive), "
        "2 bad input, 3 MLflow failed.")
    p.add_argument("model", metavar="MODEL",
                   help="directory name under models/ (or a path to a model.yaml)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", metavar="X", help='semantic version to validate, e.g. "1.3.0"')
    which.add_argument("--env", metavar="ENV",
                       help="validate the version pinned in environments/ENV.yaml; "
                       "baseline: ENV's live alias")
    p.add_argument("--baseline-env", metavar="ENV",
                   help="compare with the version live in ENV (its alias) instead")
    p.add_argument("--out", metavar="DIR", help="write validation.json, validation.md, validation.html here")
    p.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown report (PR comment) here")
    p.add_argument("--no-log", action="store_true", help="do not log an evaluation run to MLflow")
    p.add_argument("--allow-inconclusive", action="store_true",
                   help="exit 0 when nothing failed but some checks were inconclusive")
    p.add_argument("--latency-rows", type=int, default=50, metavar="N",
                   help="single-row predicts timed for the latency figures (default 50; 0: skip)")
    p.set_defaults(func=run)


def _model_yaml(repo: Path, model: str) -> tuple[str, Path]:
    """``(key under models/, path of model.yaml)``."""
    given = Path(model)
    if given.name == "model.yaml" and given.is_file():
        return given.resolve().parent.name, given
    if (given / "model.yaml").is_file() and ("/" in model or given.is_absolute()):
        return given.resolve().name, given / "model.yaml"
    path = repo / "models" / model / "model.yaml"
    if not path.is_file():
        known = sorted(p.parent.name for p in (repo / "models").glob("*/model.yaml"))
        raise ConfigError(f"no model {model!r}: {path} does not exist",
                          hint=f"models in {repo / 'models'}: {', '.join(known) or 'none'}")
    return model, path


def _env_file(repo: Path, env: str) -> Path:
    path = repo / "environments" / f"{env}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (repo / "environments").glob("*.yaml"))
        raise ConfigError(f"no environment {env!r}: {path} does not exist",
                          hint=f"environments: {', '.join(known) or 'none'}")
    return path


def _pinned(repo: Path, env: str, key: str) -> tuple[str, str]:
    """``(version pinned for model key in env, the env's alias)``."""
    from mlops_actions.config.loader import load_environment

    path = _env_file(repo, env)
    spec = load_environment(path)
    pin = spec.models.get(key)
    if pin is None:
        raise ConfigError(f"environment {env!r} pins no version of model {key!r}",
                          hint=f"models pinned there: {', '.join(spec.models) or 'none'}",
                          location=Location(str(path)))
    return pin.version, spec.name or env


def _alias_of(repo: Path, env: str) -> str:
    from mlops_actions.config.loader import load_environment

    spec = load_environment(_env_file(repo, env))
    return spec.name or env


def _parse_location(text: str | None) -> Location | None:
    """``path:line:col`` (as checks carry it) back into a Location."""
    if not text:
        return None
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return Location(parts[0], int(parts[1]), int(parts[2]))
    return Location(text)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.config.loader import load_model
    from mlops_actions.report.validation import render_html, render_json, render_markdown
    from mlops_actions.validation.mlflow_log import log_evaluation
    from mlops_actions.validation.registry_access import (
        artifact_location_for,
        open_registry,
        tracking_uri_for,
    )
    from mlops_actions.validation.results import Verdict
    from mlops_actions.validation.validator import ValidationOptions, validate_version

    repo = Path(args.repo)
    key, model_yaml = _model_yaml(repo, args.model)
    spec = load_model(model_yaml)
    if args.env:
        version, alias = _pinned(repo, args.env, key)
        baseline_alias: str | None = alias
    else:
        version, baseline_alias = args.version, None
    if args.baseline_env:
        baseline_alias = _alias_of(repo, args.baseline_env)
    if args.latency_rows < 0:
        raise ConfigError("--latency-rows must be >= 0")

    registry = open_registry(repo)
    candidate = registry.get(spec.name, version)
    baseline = registry.get_alias(spec.name, baseline_alias) if baseline_alias else None
    try:
        options = ValidationOptions(latency_rows=args.latency_rows, baseline_env=baseline_alias,
                                    repo_root=repo, tracking_uri=getattr(registry, "tracking_uri", None),
                                    registry_uri=getattr(registry, "registry_uri", None))
        result = validate_version(spec, model_yaml, candidate, baseline, options)
    except MlopsActionsError as err:
        if not isinstance(err, ConfigError | RegistryError):  # these name the file or the version
            err.message = f"validating {spec.name} {version}: {err.message}"
        if err.location is None:
            err.location = Location(_relative(model_yaml, repo))
        raise

    if not args.no_log:
        tracking = getattr(registry, "tracking_uri", None) or tracking_uri_for(repo)
        reports = {"validation.json": render_json(result), "validation.md": render_markdown(result)}
        reports["validation.html"] = render_html(result)
        location = getattr(registry, "artifact_location", None) or artifact_location_for(tracking, repo)
        run_id = log_evaluation(result, candidate, tracking, reports, location,
                                registry_uri=getattr(registry, "registry_uri", None))
        result = result.with_run_id(run_id)

    md = render_markdown(result)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "validation.json").write_text(render_json(result), encoding="utf-8")
        (out / "validation.md").write_text(md, encoding="utf-8")
        (out / "validation.html").write_text(render_html(result), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(md, encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(md + "\n")
    if actions.in_actions() and not args.json:  # workflow commands go to stdout: not mixed with JSON
        for c in result.checks:
            if c.verdict is not Verdict.PASSED:
                level: actions.Level = "warning" if c.verdict is Verdict.INCONCLUSIVE else "error"
                actions.annotate(level, c.message, location=_parse_location(c.location),
                                 title=f"validate {spec.name} {version}: {c.name} {c.verdict.value}")
    if args.json:
        sys.stdout.write(render_json(result))
    else:
        for c in result.checks:
            if c.verdict is not Verdict.PASSED:
                print(f"{c.verdict.value}: {c.message}", file=sys.stderr)
        print(f"{spec.name} {version}: {result.verdict.value} "
              f"({len(result.checks)} checks; baseline {result.baseline_version or 'none'})")
    if result.verdict is Verdict.PASSED:
        return EXIT_OK
    if result.verdict is Verdict.INCONCLUSIVE and args.allow_inconclusive:
        return EXIT_OK
    return EXIT_CHECK_FAILED
