"""Cross-file rules: what no single file's schema can say.

:func:`check_repo` returns every problem (never raises for bad input), each at
the file:line:col of the value at fault:

* each pinned model has ``models/<key>/model.yaml`` (a pin of a model's registered name
  instead of its directory names both files); registered names are unique;
* a model.yaml's deprecated ``name`` equals its directory (``registered_name`` says
  another MLflow name), and is not written beside ``registered_name``;
* an A/B test's ``version_b`` differs from the pin;
* ``promotion.from`` names another existing environment, and the chain has no cycle;
* an environment's optional ``name`` matches its file name;
* slice names are unique within a model; thresholds name metrics of the model's task;
* data files exist and stay inside the repository; the label is not a feature;
* canary ``set_weight`` steps never go down;
* an analysis that reads logged predictions (``accuracy``, ``prediction_drift``) has them:
  the pin's ``prediction_log`` is not off (:func:`logging_notes` words what sampling costs);
* with a registry: each pin resolves to an existing, non-archived version
  (the message names the versions that exist).
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mlops_actions.config.loader import Repo
from mlops_actions.config.specs import (
    ABTestStrategy,
    AnalysisSpec,
    BlueGreenStrategy,
    CanaryStrategy,
    EnvironmentSpec,
    ModelSpec,
    Task,
    parse_semver,
)
from mlops_actions.config.yamlsafe import PathKey, format_path
from mlops_actions.errors import BadInputError, ConfigError, RegistryError


class _Version(Protocol):
    @property
    def version(self) -> str: ...
    @property
    def archived(self) -> bool: ...


class VersionLister(Protocol):
    """The one registry call the pin check makes (``ModelRegistry`` has it): config sits
    below the registry layer, so it names what it needs instead of importing the port."""

    def list_versions(self, name: str) -> Sequence[_Version]: ...

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "VersionLister",
    "check_registry",
    "check_repo",
    "logging_notes",
    "metrics_for_task",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1_score", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mse", "mae", "r2", "mape")


def metrics_for_task(task: Task) -> tuple[str, ...]:
    """Metric names a threshold may use for a task."""
    if task == "regression":
        return REGRESSION_METRICS
    return CLASSIFICATION_METRICS


def _error(repo: Repo, file: str, key: PathKey, message: str, *, hint: str | None = None,
           at_key: bool = False) -> ConfigError:
    return ConfigError(f"{format_path(key)}: {message}", hint=hint,
                       location=repo.locate(file, key, at_key=at_key))


def check_repo(repo: Repo, registry: VersionLister | None = None) -> list[ConfigError]:
    """Every cross-file problem of ``repo``; with ``registry``, also pins that do not resolve."""
    errors: list[ConfigError] = []
    errors += _check_models(repo)
    for env_name, env in repo.environments.items():
        errors += _check_environment(repo, env_name, env)
    errors += _check_promotion_order(repo)
    if registry is not None:
        errors += check_registry(repo, registry)
    return errors


# --------------------------------------------------------------------------- models


def _check_models(repo: Repo) -> list[ConfigError]:
    errors: list[ConfigError] = []
    owners: dict[str, str] = {}
    for key, model in repo.models.items():
        file = Repo.model_file(key)
        errors += _check_name(repo, key, file, model)
        if model.name in owners:
            errors.append(_error(repo, file, (_name_key(repo, file),),
                                 f"registered model name `{model.name}` is also used by "
                                 f"{Repo.model_file(owners[model.name])}",
                                 hint="each directory under models/ declares a different registered model"))
        else:
            owners[model.name] = key
        errors += _check_thresholds(repo, file, model)
        errors += _check_data(repo, key, file, model)
    return errors


def _name_key(repo: Repo, file: str) -> str:
    """The key a model.yaml declares its registered name with: ``registered_name``, else ``name``."""
    source = repo.sources.get(file)
    return "registered_name" if source is not None and source.entry(("registered_name",)) else "name"


def _check_name(repo: Repo, key: str, file: str, model: ModelSpec) -> list[ConfigError]:
    """``name:`` (deprecated) equals the directory, and is not written beside ``registered_name``."""
    legacy = model.legacy_name
    if legacy is None:
        return []
    if _name_key(repo, file) == "registered_name":
        other = repo.locate(file, ("registered_name",), at_key=True)
        return [_error(repo, file, ("name",),
                       f"both `name` and `registered_name` ({other}) are set; `name` is the deprecated "
                       "spelling of `registered_name`", hint="delete the `name:` line", at_key=True)]
    if legacy == key:
        return []
    return [_error(repo, file, ("name",),
                   f"`{legacy}` differs from the directory models/{key}/ that holds {file}; the "
                   f"environments, the gateway and the prediction log know this model as `{key}`",
                   hint=f"delete `name:` (the registered name defaults to `{key}`), rename the directory "
                   f"to models/{legacy}/, or write `registered_name: {legacy}` if the MLflow model "
                   "really has another name")]


def _check_thresholds(repo: Repo, file: str, model: ModelSpec) -> list[ConfigError]:
    allowed = metrics_for_task(model.task)
    other = REGRESSION_METRICS if model.task != "regression" else CLASSIFICATION_METRICS
    groups: list[tuple[PathKey, Iterable[str]]] = [
        (("validation", "thresholds"), model.validation.thresholds)]
    errors: list[ConfigError] = []
    first_use: dict[str, int] = {}
    for index, slice_ in enumerate(model.validation.slices):
        groups.append((("validation", "slices", index, "thresholds"), slice_.thresholds))
        if slice_.name in first_use:
            first = repo.locate(file, ("validation", "slices", first_use[slice_.name], "name"))
            errors.append(_error(repo, file, ("validation", "slices", index, "name"),
                                 f"slice name `{slice_.name}` is used twice (first at line {first.line})",
                                 hint="give each slice a different name; reports are keyed by it"))
        else:
            first_use[slice_.name] = index
    groups.append((("monitoring", "performance"), model.monitoring.performance))
    for name, threshold in model.monitoring.performance.items():
        if threshold.min_change_on != "estimate":
            errors.append(_error(repo, file, ("monitoring", "performance", name, "min_change_on"),
                                 "min_change_on applies to validation only: monitoring compares live "
                                 "figures with the baseline's, with no paired rows to put a CI on",
                                 hint="delete min_change_on here (keep it under validation.thresholds)"))
    for prefix, names in groups:
        for name in names:
            if name in allowed:
                continue
            why = (f"is a {'regression' if model.task != 'regression' else 'classification'} metric"
                   if name in other else "is not a known metric")
            errors.append(_error(repo, file, (*prefix, name),
                                 f"`{name}` {why}; a {model.task} model takes: {', '.join(allowed)}",
                                 at_key=True))
    return errors


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _check_data(repo: Repo, key: str, file: str, model: ModelSpec) -> list[ConfigError]:
    errors: list[ConfigError] = []
    base = repo.model_dir(key)
    for field_name in ("test", "reference"):
        value = getattr(model.data, field_name)
        if value is None:
            continue
        path = base / value
        where: PathKey = ("data", field_name)
        if Path(value).is_absolute() or not _inside(repo.root, path):
            errors.append(_error(repo, file, where, f"`{value}` points outside the repository",
                                 hint="data paths are relative to the model.yaml's directory and stay "
                                 "inside the repository"))
        elif not path.is_file():
            errors.append(_error(repo, file, where, f"file `{value}` not found (looked for "
                                 f"models/{key}/{value})",
                                 hint="paths are relative to the model.yaml's directory; "
                                 "commit the file or fix the path"))
    test_file = base / model.data.test
    if not errors and test_file.is_file():
        errors += _check_columns(repo, file, model, test_file)
    if model.data.features is not None and model.data.label in model.data.features:
        index = model.data.features.index(model.data.label)
        errors.append(_error(repo, file, ("data", "features", index),
                             f"the label `{model.data.label}` is listed as a feature",
                             hint="remove it from data.features"))
    return errors


def read_columns(path: Path) -> list[str] | None:
    """Column names of a CSV (its header line) or Parquet file (its schema); None for other kinds."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        return [name.strip() for name in header]
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return None


def _check_columns(repo: Repo, file: str, model: ModelSpec, test_file: Path) -> list[ConfigError]:
    """Every column the spec names (label, features, slice conditions, behavioural tests) exists."""
    try:
        columns = read_columns(test_file)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [_error(repo, file, ("data", "test"), f"cannot read the columns of `{model.data.test}`: {exc}",
                       hint="data files are CSV with a header line, or Parquet")]
    if columns is None:
        return []
    named: list[tuple[PathKey, str]] = [(("data", "label"), model.data.label)]
    named += [(("data", "features", i), name) for i, name in enumerate(model.data.features or [])]
    for i, slice_ in enumerate(model.validation.slices):
        named += [(("validation", "slices", i, "where", j, "column"), condition.column)
                  for j, condition in enumerate(slice_.where)]
    for i, test in enumerate(model.validation.behavioural):
        column = getattr(test, "column", None)
        if isinstance(column, str):
            named.append((("validation", "behavioural", i, "column"), column))
    errors = []
    for where, name in named:
        if name not in columns:
            close = [c for c in columns if c.lower() == name.lower()] or \
                difflib.get_close_matches(name, columns, n=1)
            message = f"column `{name}` is not in {model.data.test}"
            if close:
                message += f"; did you mean `{close[0]}`?"
            shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
            errors.append(_error(repo, file, where, message, hint=f"its columns: {shown}"))
    return errors


# --------------------------------------------------------------------------- environments


def _check_environment(repo: Repo, env_name: str, env: EnvironmentSpec) -> list[ConfigError]:
    errors: list[ConfigError] = []
    file = Repo.environment_file(env_name)
    if env.name is not None and env.name != env_name:
        errors.append(_error(repo, file, ("name",),
                             f"`{env.name}` differs from the file name `{env_name}`",
                             hint=f"rename the file to environments/{env.name}.yaml or drop `name:`"))
    errors += _check_freeze(repo, file, env)
    for key, pin in env.models.items():
        where: PathKey = ("models", key)
        if not (repo.model_dir(key) / "model.yaml").is_file():
            errors.append(_unknown_pin(repo, file, key))
        strategy = pin.strategy
        if isinstance(strategy, ABTestStrategy):
            if parse_semver(strategy.version_b) == parse_semver(pin.version):
                errors.append(_error(repo, file, (*where, "strategy", "version_b"),
                                     f"A/B test compares version \"{pin.version}\" with itself",
                                     hint="set version_b to the challenger's version"))
        elif isinstance(strategy, CanaryStrategy):
            highest = -1
            for index, step in enumerate(strategy.steps):
                if step.set_weight is None:
                    continue
                if step.set_weight < highest:
                    errors.append(_error(repo, file, (*where, "strategy", "steps", index, "set_weight"),
                                         f"weight {step.set_weight} is lower than an earlier step's "
                                         f"{highest}",
                                         hint="canary weights only go up; a failed analysis rolls back "
                                         "by itself"))
                highest = max(highest, step.set_weight)
        if not pin.prediction_log.enabled:
            for at, metric in _store_metrics(pin.strategy):
                errors.append(_error(
                    repo, file, (*where, "strategy", *at),
                    f"analysis metric {metric!r} reads logged predictions, but prediction_log of "
                    f"{key!r} is off (enabled: false), so it could never measure",
                    hint="turn logging on (a sample_rate below 1 is enough) or measure error_rate / "
                    "latency, which come from the gateway's counters"))
    return errors


#: analysis metrics measured from the prediction store (the others from the gateway's counters)
STORE_METRICS = ("accuracy", "prediction_drift")


def _analyses(strategy: object) -> list[tuple[tuple[str | int, ...], AnalysisSpec]]:
    found: list[tuple[tuple[str | int, ...], AnalysisSpec]] = []
    if isinstance(strategy, CanaryStrategy):
        if strategy.analysis is not None:
            found.append((("analysis",), strategy.analysis))
        found += [(("steps", i, "analysis"), step.analysis) for i, step in enumerate(strategy.steps)
                  if step.analysis is not None]
    elif isinstance(strategy, BlueGreenStrategy):
        for name in ("pre_promotion_analysis", "post_promotion_analysis"):
            spec = getattr(strategy, name)
            if spec is not None:
                found.append(((name,), spec))
    return found


def _store_metrics(strategy: object) -> list[tuple[tuple[str | int, ...], str]]:
    """(path under strategy, metric name) of every analysis metric read from logged predictions."""
    return [((*at, "metrics", i, "name"), m.name) for at, spec in _analyses(strategy)
            for i, m in enumerate(spec.metrics) if m.name in STORE_METRICS]


def logging_notes(repo: Repo) -> list[str]:
    """Warnings, not errors: a pin that samples its prediction log and whose analysis reads
    logged rows waits longer for ``min_samples`` rows (about 1 / sample_rate times the traffic)."""
    notes = []
    for env_name, env in sorted(repo.environments.items()):
        for key, pin in env.models.items():
            rate = pin.prediction_log.rate()
            metrics = sorted({m for _, m in _store_metrics(pin.strategy)})
            if 0 < rate < 1 and metrics:
                notes.append(f"{Repo.environment_file(env_name)}: {key} logs {rate:.0%} of its requests; "
                             f"its analysis ({', '.join(metrics)}) needs about {1 / rate:.3g}x the traffic "
                             "to reach min_samples logged rows, so verdicts come later")
    return notes


def _unknown_pin(repo: Repo, file: str, key: str) -> ConfigError:
    """A pin naming no directory under models/; when a model registers that name, say which."""
    where: PathKey = ("models", key)
    owner = next((k for k, m in repo.models.items() if m.name == key), None)
    if owner is not None:
        owner_file = Repo.model_file(owner)
        declared = repo.locate(owner_file, (_name_key(repo, owner_file),), at_key=True)
        return _error(repo, file, where,
                      f"model `{key}` has no models/{key}/model.yaml; `{key}` is the registered name "
                      f"declared at {declared} (directory models/{owner}/)",
                      hint=f"environments pin a model by its directory: write `{owner}:` here", at_key=True)
    known = sorted(p.parent.name for p in repo.root.glob("models/*/model.yaml"))
    hint = f"known models: {', '.join(known)}" if known else "no model is declared under models/"
    return _error(repo, file, where, f"model `{key}` has no models/{key}/model.yaml", hint=hint, at_key=True)


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _check_freeze(repo: Repo, file: str, env: EnvironmentSpec) -> list[ConfigError]:
    errors: list[ConfigError] = []
    for index, window in enumerate(env.promotion.freeze):
        times: list[datetime] = []
        for end in ("start", "end"):
            value = getattr(window, end)
            parsed = _parse_time(value)
            if parsed is None:
                errors.append(_error(repo, file, ("promotion", "freeze", index, end),
                                     f"expected an ISO 8601 date-time with a time zone, got \"{value}\"",
                                     hint='e.g. "2026-12-24T00:00:00Z" (quoted)'))
            else:
                times.append(parsed)
        if len(times) == 2 and times[1] <= times[0]:
            errors.append(_error(repo, file, ("promotion", "freeze", index, "end"),
                                 f"freeze window ends ({window.end}) before it starts ({window.start})",
                                 hint="swap start and end"))
    return errors


def _check_promotion_order(repo: Repo) -> list[ConfigError]:
    errors: list[ConfigError] = []
    names = sorted(repo.environments)
    for env_name in names:
        source = repo.environments[env_name].promotion.from_
        if source is None:
            continue
        file = Repo.environment_file(env_name)
        where: PathKey = ("promotion", "from")
        if source == env_name:
            errors.append(_error(repo, file, where, f"environment `{env_name}` promotes from itself",
                                 hint="name the environment a version must pass first, e.g. staging"))
        elif not (repo.root / Repo.environment_file(source)).is_file():
            known = sorted(p.stem for p in repo.root.glob("environments/*.yaml"))
            suggestion = difflib.get_close_matches(source, known, n=1)
            message = f"unknown environment `{source}`"
            if suggestion:
                message += f"; did you mean `{suggestion[0]}`?"
            errors.append(_error(repo, file, where, message, hint=f"environments: {', '.join(known)}"))
    reported: set[frozenset[str]] = set()
    for start in names:
        chain = [start]
        current = repo.environments[start].promotion.from_
        while current is not None and current in repo.environments and current != chain[-1]:
            if current in chain:
                cycle = chain[chain.index(current):]
                members = frozenset(cycle)
                if members not in reported and len(cycle) > 1:
                    reported.add(members)
                    first = min(cycle)
                    path = " -> ".join([*cycle[cycle.index(first):], *cycle[: cycle.index(first)], first])
                    errors.append(_error(repo, Repo.environment_file(first), ("promotion", "from"),
                                         f"promotion order has a cycle: {path}",
                                         hint="promotion.from must lead back to an environment that "
                                         "promotes from nowhere"))
                break
            chain.append(current)
            current = repo.environments[current].promotion.from_
    return errors


# --------------------------------------------------------------------------- registry


def check_registry(repo: Repo, registry: VersionLister) -> list[ConfigError]:
    """Each pin (and A/B ``version_b``) resolves to an existing, non-archived version.

    A registry that cannot be reached raises its ``RegistryError`` (exit 3);
    a model or version that does not exist is a ConfigError at the pin.
    """
    errors: list[ConfigError] = []
    cache: dict[str, dict[str, bool]] = {}
    for env_name, env in sorted(repo.environments.items()):
        file = Repo.environment_file(env_name)
        for key, pin in env.models.items():
            model = repo.models.get(key)
            if model is None:
                continue  # reported by the model.yaml rules
            if model.name not in cache:
                try:
                    versions = registry.list_versions(model.name)
                except RegistryError as exc:
                    if not isinstance(exc, BadInputError):  # a model that does not exist
                        raise
                    versions = []
                cache[model.name] = {v.version: v.archived for v in versions}
            known = cache[model.name]
            wanted: list[tuple[PathKey, str]] = [(("models", key, "version"), pin.version)]
            if isinstance(pin.strategy, ABTestStrategy):
                wanted.append((("models", key, "strategy", "version_b"), pin.strategy.version_b))
            for where, version in wanted:
                if version not in known:
                    exist = ", ".join(sorted(known, key=parse_semver)) or "none"
                    errors.append(_error(
                        repo, file, where,
                        f"version \"{version}\" of registered model `{model.name}` does not exist; "
                        f"versions that exist: {exist}",
                        hint="register it first (mlops-actions register) or pin an existing version"))
                elif known[version]:
                    errors.append(_error(
                        repo, file, where,
                        f"version \"{version}\" of registered model `{model.name}` is archived",
                        hint="pin a version that is not archived"))
    return errors
