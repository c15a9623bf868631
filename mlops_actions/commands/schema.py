"""``mlops-actions schema``: write the JSON Schemas of model.yaml and environments/*.yaml."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops_actions.errors import ConfigError, Location

ORDER = 15


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "schema", help="write model.schema.json and environment.schema.json",
        description="Write the JSON Schemas of models/<name>/model.yaml and environments/<env>.yaml "
        "(generated from the specs; the same files ship in the package under mlops_actions/schemas/).")
    p.add_argument("--out", metavar="DIR", default="schemas",
                   help="directory to write into, relative to -C (default: schemas)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.config.schema import export_schemas

    out = Path(args.out)
    if not out.is_absolute():
        out = Path(args.repo) / out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {args.out}: exists and is not a directory", location=Location(str(out)),
                          hint="name a directory")
    try:
        written = export_schemas(out)
    except OSError as exc:
        raise ConfigError(f"--out {args.out}: cannot write: {exc.strerror or exc}",
                          hint="name a writable directory") from None
    for path in written:
        print(path)
    return 0
