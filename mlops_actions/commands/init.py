"""``mlops-actions init``: set up a repository to run its models through the toolkit."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, get_args

from mlops_actions.config.specs import NAME_PATTERN, Task
from mlops_actions.errors import ConfigError

ORDER = 5


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "init", help="set up this repository: environments, a model skeleton, the workflows",
        description="Write environments/staging.yaml and production.yaml, models/NAME/model.yaml "
        "(with --model), the trigger workflows (pr, review, pr-fork, apply, promote, rollback, conclude, "
        "monitor-schedule) calling this toolkit's reusable workflows pinned by commit SHA, and the "
        ".gitignore lines of the toolkit's local state; then print the next steps. Running it again "
        "changes nothing; a file of yours that differs is kept unless --force.",
        epilog="The toolkit's repository and commit default to where mlops-actions was installed from "
        "(pip install \"git+https://github.com/OWNER/REPO@SHA\", or a git checkout).")
    p.add_argument("--model", metavar="NAME", help="write models/NAME/model.yaml (NAME: the directory and "
                   "the registered model's name)")
    p.add_argument("--task", choices=get_args(Task), default="binary_classification",
                   help="the model's task (default: binary_classification)")
    p.add_argument("--toolkit-repository", metavar="OWNER/REPO",
                   help="the GitHub repository of mlops-actions the workflows call")
    p.add_argument("--ref", metavar="SHA", help="the full commit SHA of it to pin")
    p.add_argument("--staging-url", default="http://127.0.0.1:8080", metavar="URL",
                   help="where the staging gateway listens (default: http://127.0.0.1:8080)")
    p.add_argument("--production-url", default="http://127.0.0.1:8081", metavar="URL",
                   help="where the production gateway listens (default: http://127.0.0.1:8081)")
    p.add_argument("--force", action="store_true", help="overwrite files that differ from what init writes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.gitops.scaffold import Outcome, Scaffold, next_steps, render, resolve_pin, write

    root = Path(args.repo)
    if not root.is_dir():
        raise ConfigError(f"-C {args.repo}: not a directory", hint="run init in your repository's root")
    if args.model is not None and not re.fullmatch(NAME_PATTERN, args.model):
        raise ConfigError(f"--model {args.model!r} is not a valid model name",
                          hint=f"a name matching {NAME_PATTERN} (it is a directory under models/)")
    scaffold = Scaffold(resolve_pin(args.toolkit_repository, args.ref), model=args.model, task=args.task,
                        staging_url=args.staging_url, production_url=args.production_url)
    for item in write(root, render(scaffold), force=args.force):
        hint = "; --force to overwrite" if item.outcome is Outcome.KEPT else ""
        print(f"{item.outcome.value}: {item.path}{hint}")
    print(next_steps(scaffold), end="")
    return 0
