"""``mlops-actions baseline --env ENV --model KEY``: set or show a model's prediction-drift baseline.

``monitor`` compares the outputs in its window with the baseline of the version
pinned in the environment (``--version`` for another). Take the baseline from a
file of predictions (``--from-file``: CSV/Parquet, ``--column`` names the column,
default ``prediction``) or from the predictions the gateway logged for that
version over a recent window (``--from-window 1d``: a week of healthy traffic is
a common choice). Without either, it prints the stored baseline. Exit 2 when
there is nothing to set it from.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mlops_actions.config.loader import load_repo
from mlops_actions.config.specs import duration_seconds
from mlops_actions.errors import EXIT_OK, ConfigError

ORDER = 62

__all__ = ["add_parser", "run", "set_prediction_baseline"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "baseline", help="set or show the prediction-drift baseline of a model pinned in an environment",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--env", required=True, help="environment name (environments/ENV.yaml)")
    p.add_argument("--model", required=True, metavar="KEY", help="model (directory under models/)")
    p.add_argument("--version", default=None, help="version (default: the one pinned in ENV)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--from-file", default=None, metavar="PATH",
                        help="predictions in a CSV/Parquet file (column --column)")
    source.add_argument("--from-window", default=None, metavar="AGE",
                        help="the predictions the gateway logged for the version over this window, e.g. 1d")
    p.add_argument("--column", default="prediction", help="the column of --from-file (default: prediction)")
    p.add_argument("--store", default=None, metavar="URL",
                   help="prediction store URL (default: $MLOPS_PREDICTION_STORE or .mlops/predictions.db)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def _from_file(path: Path, column: str) -> list[Any]:
    from mlops_actions.monitoring.profile import read_table

    if not path.is_file():
        raise ConfigError(f"--from-file {path}: no such file")
    frame = read_table(path)
    if column not in frame.columns:
        raise ConfigError(f"--from-file {path} has no column {column!r}",
                          hint=f"its columns: {', '.join(map(str, frame.columns))}; pass --column NAME")
    return [v.item() if hasattr(v, "item") else v for v in frame[column].dropna().tolist()]


def set_prediction_baseline(store: Any, model: str, version: str, predictions: list[Any],
                            source: str) -> dict[str, Any]:
    """Store ``predictions`` as the prediction baseline of ``model`` ``version`` (what monitor reads)."""
    if not predictions:
        raise ConfigError(f"no predictions to take a baseline of {model} {version} from ({source})",
                          hint="send traffic first, widen --from-window, or pass --from-file")
    from mlops_actions.monitoring.model_monitor import PREDICTION_BASELINE_SIZE  # pandas: load when used

    values = predictions[-PREDICTION_BASELINE_SIZE:]
    payload = {"predictions": values, "version": version, "source": source, "set_at": time.time()}
    store.set_baseline(model, payload, version=version, kind="prediction")
    return payload


def _summary(payload: dict[str, Any]) -> str:
    values = payload.get("predictions") or []
    common = Counter(map(str, values)).most_common(3)
    shown = ", ".join(f"{k}: {n}" for k, n in common)
    return f"{len(values)} predictions (most common {shown}) from {payload.get('source', 'Python')}"


def run(args: argparse.Namespace) -> int:
    from mlops_actions.monitoring.store import open_store

    repo = load_repo(args.repo)
    env = repo.environments.get(args.env)
    if env is None:
        raise ConfigError(f"no environment {args.env!r} in {repo.root / 'environments'}",
                          hint=f"environments: {', '.join(sorted(repo.environments)) or '(none)'}")
    version = args.version or env.pin(args.model, args.env).version
    store = open_store(args.store, repo_root=repo.root)
    try:
        if args.from_file:
            payload = set_prediction_baseline(store, args.model, version,
                                              _from_file(Path(args.from_file), args.column),
                                              f"file {args.from_file}")
            verb = "set"
        elif args.from_window:
            try:
                since = time.time() - duration_seconds(args.from_window)
            except ValueError as exc:
                raise ConfigError(f"--from-window: {exc}") from None
            rows = store.query(args.model, version=version, since=since)
            payload = set_prediction_baseline(store, args.model, version, list(rows["output"]),
                                              f"the gateway's log over {args.from_window}")
            verb = "set"
        else:
            found = store.get_baseline(args.model, version=version, kind="prediction")
            if not found:
                raise ConfigError(f"no prediction baseline of {args.model} {version}",
                                  hint=f"set one: mlops-actions baseline --env {args.env} --model "
                                  f"{args.model} --from-window 1d (or --from-file PATH)")
            payload, verb = found, "stored"
    finally:
        store.close()
    if args.json:
        print(json.dumps({"model": args.model, "version": payload.get("version", version),
                          "n": len(payload.get("predictions") or []), "source": payload.get("source")}))
    else:
        shown = payload.get("version") or version
        print(f"{args.model} {shown}: prediction baseline {verb}: {_summary(payload)}")
    return EXIT_OK
