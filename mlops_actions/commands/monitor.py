"""``mlops-actions monitor --env ENV``: is every model pinned in an environment still healthy?

For each model pinned in ``environments/ENV.yaml``: performance of the pinned
version over the window (from the prediction store, against the stored
baseline and ``monitoring.performance`` thresholds), data drift and data
quality against the reference data (``data.reference``, else ``data.test``, or
``--reference``), and prediction drift against the stored prediction baseline;
a model in an A/B test (strategy ``ab_test``) also gets its A/B analysis
(docs/monitoring.md, "A/B tests"). Prints a Markdown report (or JSON with
``--json``); ``--out DIR`` also writes ``monitor-ENV.{md,html,json}``. Exit 1
when a model is unhealthy (a check failed, an A/B test's traffic split or
guardrail included), else 5 when a pinned model had no prediction in the window
(nothing was checked, so it never passes silently), 0 otherwise.

Alerting plugs in through :func:`register_alert_hook`: each hook receives the
flat list of findings (worst first) and the context; the command never sends
anything itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_actions.config.loader import Repo, load_repo
from mlops_actions.config.specs import ModelSpec, duration_seconds
from mlops_actions.errors import (
    EXIT_CHECK_FAILED,
    EXIT_NO_DATA,
    EXIT_OK,
    ConfigError,
    MlopsActionsError,
    ValidationError,
)

if TYPE_CHECKING:  # pandas and scipy load only when the command runs, not on every CLI start
    from mlops_actions.monitoring.health import Finding, ModelHealth
    from mlops_actions.monitoring.profile import ReferenceProfile

ORDER = 60
OUTPUTS = frozenset({"rollback-models"})  # step outputs written to $GITHUB_OUTPUT

__all__ = ["ALERT_HOOKS", "AlertContext", "AlertHook", "ab_comment", "add_parser", "dispatch_findings",
           "register_alert_hook", "run", "run_monitor", "write_ab_comments"]


@dataclass(frozen=True)
class AlertContext:
    """What an alert sink may need beside the findings."""

    environment: str
    repo: Repo
    healths: tuple[ModelHealth, ...]
    markdown: str  # the report, for sinks that post it (GitHub issue, Slack)


AlertHook = Callable[["list[Finding]", AlertContext], None]
#: Sinks registered by the alerting module; called in order after every monitor run.
ALERT_HOOKS: list[AlertHook] = []


def register_alert_hook(hook: AlertHook) -> AlertHook:
    """Add an alert sink (usable as a decorator)."""
    ALERT_HOOKS.append(hook)
    return hook


def dispatch_findings(findings: list[Finding], context: AlertContext) -> None:
    """THE hook point: hand every finding (passed ones too, so sinks can resolve) to each sink."""
    for hook in ALERT_HOOKS:
        hook(findings, context)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "monitor", help="performance, drift and data quality of the models pinned in an environment",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--env", required=True, help="environment name (environments/ENV.yaml)")
    p.add_argument("--window", default=None,
                   help="look back this far, e.g. 30m, 1h, 1d (default: each model's monitoring.window)")
    p.add_argument("--since", default=None, metavar="ISO8601",
                   help="look back to this time instead (e.g. 2026-11-26T07:00:00+00:00); "
                   "overrides --window")
    p.add_argument("--reference", default=None, metavar="PATH",
                   help="reference data (CSV/Parquet) for every model instead of model.yaml's")
    p.add_argument("--out", default=None, metavar="DIR", help="also write monitor-ENV.md/.html/.json here")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.add_argument("--ab-comments", default=None, metavar="DIR",
                   help="also write each A/B test's analysis as DIR/MODEL.md, the body of the comment "
                   "`comment --kind ab-test:MODEL --pin MODEL` posts on the PR that started the test")
    p.add_argument("--store", default=None, metavar="URL",
                   help="prediction store URL (default: $MLOPS_PREDICTION_STORE or .mlops/predictions.db)")
    p.add_argument("--model", action="append", default=None, metavar="KEY",
                   help="only this model (directory under models/); repeatable")
    p.add_argument("--all-versions", action="store_true",
                   help="count rows of every version, not only the pinned one")
    p.add_argument("--any-environment", action="store_true",
                   help="count rows logged for any environment (default: rows tagged ENV when there are any)")
    p.add_argument("--fixed-horizon", action="store_true",
                   help="judge A/B tests with fixed-horizon p-values and CIs instead of the sequential "
                   "(always-valid) default; only for one look at a planned sample size")
    p.add_argument("--retention", default=None, metavar="AGE",
                   help="first delete logged predictions older than AGE, e.g. 30d (retention)")
    p.set_defaults(func=run)


def _reference(repo: Repo, key: str, spec: ModelSpec,
               override: str | None) -> tuple[ReferenceProfile, list[str]]:
    if override:
        path = Path(override)
    else:
        rel = spec.data.reference or spec.data.test
        path = repo.model_dir(key) / rel
    if not path.exists():
        raise ValidationError(f"reference data {path} for model {key} does not exist",
                              hint="set data.reference in model.yaml or pass --reference PATH")
    from mlops_actions.monitoring.columnar import cached_profile

    label = spec.data.label
    # profiled column by column (Arrow), the label left out; cached until the file changes
    profile = cached_profile(path, repo.root / ".mlops" / "profiles", exclude=(label,))
    features = list(spec.data.features) if spec.data.features else [c for c in profile.columns if c != label]
    return profile, features


def run_monitor(repo: Repo, env_name: str, *, window: str | None = None, reference: str | None = None,
                store_url: str | None = None, models: list[str] | None = None,
                all_versions: bool = False, now: float | None = None,
                any_environment: bool = False, sequential: bool | None = None) -> list[ModelHealth]:
    """The command's work, callable from Python: one :class:`ModelHealth` per pinned model.
    A model pinned with an ``ab_test`` strategy also gets its A/B analysis (``health.ab``);
    ``sequential`` overrides model.yaml's ``monitoring.ab_test.sequential``."""
    from mlops_actions.monitoring.ab import assess_ab
    from mlops_actions.monitoring.health import assess_model
    from mlops_actions.monitoring.store import open_store

    if env_name not in repo.environments:
        raise ConfigError(f"no environment {env_name!r} in {repo.root / 'environments'}",
                          hint=f"environments: {', '.join(sorted(repo.environments)) or '(none)'}")
    env = repo.environments[env_name]
    window_s: float | None = None
    if window is not None:
        try:
            window_s = duration_seconds(window)
        except ValueError as exc:
            raise ConfigError(f"--window: {exc}") from None
    keys = list(env.models)
    if models:
        unknown = [m for m in models if m not in env.models]
        if unknown:
            raise ConfigError(f"--model {', '.join(unknown)}: not pinned in {env_name}",
                              hint=f"pinned: {', '.join(keys) or '(none)'}")
        keys = [k for k in keys if k in models]
    store = open_store(store_url, repo_root=repo.root)
    now = time.time() if now is None else now
    out: list[ModelHealth] = []
    try:
        for key in keys:
            pin = env.models[key]
            spec = repo.models.get(key)
            if spec is None:
                raise ConfigError(f"environment {env_name} pins {key!r} but models/{key}/model.yaml "
                                  "is missing",
                                  hint="add the model.yaml or remove the pin")
            notes: list[str] = []
            try:
                profile, features = _reference(repo, key, spec, reference)
            except MlopsActionsError as exc:
                profile, features = None, None
                notes.append(f"reference data unusable: {exc.message}"
                             + (f" ({exc.hint})" if exc.hint else ""))
            win = window_s if window_s is not None else duration_seconds(spec.monitoring.window)
            # the gateway logs predictions under the model's key (its directory), whatever MLflow calls it
            health = assess_model(store, key, version=None if all_versions else pin.version,
                                  environment=env_name, window_seconds=win, spec=spec.monitoring,
                                  task=spec.task, reference=profile, features=features, now=now,
                                  environment_filter=False if any_environment else None)
            health.notes = notes + health.notes
            if pin.strategy.type == "ab_test":
                health.ab = assess_ab(store, key, version_a=pin.version, version_b=pin.strategy.version_b,
                                      share_b=pin.strategy.traffic_split, spec=spec.monitoring.ab_test,
                                      environment=env_name, window_seconds=win, now=now,
                                      sequential=sequential,
                                      environment_filter=False if any_environment else None)
            out.append(health)
    finally:
        store.close()
    return out


def purge_old(repo: Repo, age: str, store_url: str | None = None) -> int:
    """Retention: delete predictions (and pending labels) older than ``age``; returns rows deleted."""
    from mlops_actions.monitoring.store import open_store

    try:
        seconds = duration_seconds(age)
    except ValueError as exc:
        raise ConfigError(f"--retention: {exc}") from None
    store = open_store(store_url, repo_root=repo.root)
    try:
        return store.purge(older_than=time.time() - seconds)
    finally:
        store.close()


def ab_comment(health: ModelHealth, env: str, *, when: float | None = None,
               log_url: str | None = None) -> str:
    """The A/B comment's body: the verdict sentence, the per-variant figures and intervals,
    guardrails, sample size and method (``ab_markdown``), and when the monitor last looked."""
    import datetime as dt

    from mlops_actions.monitoring.reports import ab_markdown

    if health.ab is None:
        raise ValueError(f"{health.model} has no A/B analysis")
    stamp = dt.datetime.fromtimestamp(time.time() if when is None else when, dt.UTC)
    footer = f"_Updated by each scheduled monitor run; last: {stamp:%Y-%m-%d %H:%M} UTC"
    footer += f" · [run]({log_url})_" if log_url else "_"
    return "\n".join([f"### A/B test in `{env}`: monitor report", "", *ab_markdown(health.ab), "",
                      footer]) + "\n"


def write_ab_comments(out: Path, healths: list[ModelHealth], env: str, keys: dict[str, str]) -> list[Path]:
    """``out/KEY.md`` for each model in an A/B test (KEY: its directory under models/), the body
    of its sticky comment; an earlier run's files go first, so no ended test gets commented on."""
    from mlops_actions.commands._github import run_url

    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.md"):
            old.unlink()
        for h in healths:
            if h.ab is None:
                continue
            path = out / f"{keys.get(h.model, h.model)}.md"
            path.write_text(ab_comment(h, env, log_url=run_url()), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ConfigError(f"--ab-comments {out}: cannot write there: {exc.strerror or exc}",
                          hint="pass a directory this job can write (monitor.yml uses RUNNER_TEMP)") from None
    return written


def run(args: argparse.Namespace) -> int:
    repo = load_repo(args.repo)
    if args.retention:
        deleted = purge_old(repo, args.retention, args.store)
        print(f"retention: deleted {deleted} prediction(s) older than {args.retention}", file=sys.stderr)
    window = args.window
    now: float | None = None
    if args.since:
        import datetime as dt
        import time

        try:
            since = dt.datetime.fromisoformat(args.since)
        except ValueError:
            raise ConfigError(f"--since: {args.since!r} is not an ISO 8601 time",
                              hint="e.g. 2026-11-26T07:00:00+00:00") from None
        if since.tzinfo is None:
            raise ConfigError(f"--since: {args.since!r} has no time zone", hint="add +00:00")
        # the window ends now, not when run_monitor has imported pandas and scipy: measured from
        # its own clock, a window of `now - since` seconds started seconds after --since under
        # load and left out the first rows (the demo's monitor once saw 84 of 171)
        now = time.time()
        window = f"{max(now - since.timestamp(), 0.001):.3f}s"
    healths = run_monitor(repo, args.env, window=window, reference=args.reference,
                          store_url=args.store, models=args.model, all_versions=args.all_versions,
                          any_environment=args.any_environment, now=now,
                          sequential=False if args.fixed_horizon else None)
    from mlops_actions.monitoring.reports import render_html, render_markdown
    from mlops_actions.monitoring.verdict import Verdict

    markdown = render_markdown(healths, environment=args.env)
    payload = {"environment": args.env, "healthy": not any(h.verdict is Verdict.FAILED for h in healths),
               "models": [h.to_dict() for h in healths]}
    if args.ab_comments:  # before the alerts: a failing sink must not cost the PR its A/B comment
        write_ab_comments(Path(args.ab_comments), healths, args.env,
                          {spec.name: key for key, spec in repo.models.items()})
    findings = [f for h in healths for f in h.findings()]
    dispatch_findings(findings, AlertContext(args.env, repo, tuple(healths), markdown))
    from mlops_actions.github import actions

    # a failing performance check (accuracy, error rate, ...) is the version's fault: the monitor
    # workflow can open its rollback PR; drift alone is not (the previous version sees it too)
    keys = {spec.name: key for key, spec in repo.models.items()}
    failing = sorted({keys.get(f.model, f.model) for f in findings
                      if f.kind == "performance" and f.verdict is Verdict.FAILED})
    actions.set_output("rollback-models", " ".join(failing))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"monitor-{args.env}"
        (out / f"{stem}.md").write_text(markdown, encoding="utf-8")
        (out / f"{stem}.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        (out / f"{stem}.html").write_text(render_html(healths, environment=args.env), encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
    if args.json:
        print(json.dumps(payload, indent=1, default=str))
    else:
        print(markdown, end="")
    if not payload["healthy"]:
        return EXIT_CHECK_FAILED
    empty = [h for h in healths if h.no_rows]
    if empty:
        names = ", ".join(f"{h.model} {h.version or ''}".strip() for h in empty)
        print(f"warning: no predictions of {names} in the window: nothing was checked (exit "
              f"{EXIT_NO_DATA}); is the gateway serving it and logging to this store?", file=sys.stderr)
        return EXIT_NO_DATA
    return EXIT_OK
