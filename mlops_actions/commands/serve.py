"""``mlops-actions serve --env ENV``: run the gateway of one environment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

ORDER = 50


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the model gateway of an environment (local target)",
        description="Serve every model pinned in environments/ENV.yaml with MLflow's scoring protocol, "
        "run rollouts declared by `apply`, log predictions. State lives in .mlops/ under the repo.")
    p.add_argument("--env", required=True, help="environment name (environments/ENV.yaml)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.add_argument("--store", default=None,
                   help="prediction store URL (default: sqlite:///<repo>/.mlops/predictions.db)")
    p.add_argument("--tick", type=float, default=0.1, help="rollout controller tick in seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.serving.server import build_gateway
    from mlops_actions.serving.server import run as run_server

    gateway = build_gateway(Path(args.repo), args.env, args.store, args.tick)
    run_server(gateway, args.host, args.port)
    return 0
