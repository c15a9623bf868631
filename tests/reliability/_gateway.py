"""A real gateway process whose models are row-wise stand-ins: ``python -m tests.reliability._gateway``.

Everything but the model is what ``mlops-actions serve`` runs: the same :class:`Gateway`,
rollout controller, state database, prediction store and uvicorn server. Only the model
loader differs (``tests.serving._support.FakeLoader``: any URI loads, in microseconds), so a
start takes about a second instead of MLflow's imports and model loading, and a test can
SIGKILL and restart it dozens of times. The prediction tests use the real ``serve`` command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_actions.deploy.interface import Route
from mlops_actions.monitoring.store import open_store
from mlops_actions.serving.gateway import GatewayConfig
from mlops_actions.serving.local_plane import local_gateway
from mlops_actions.serving.server import run
from tests.serving._support import TOKEN, FakeLoader


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--env", default="prod")
    p.add_argument("--model", default="m")
    p.add_argument("--version", default="1.0.0", help="initial stable version (when the database has none)")
    p.add_argument("--uri", default="fake://v1")
    p.add_argument("--store", default=None, help="default: sqlite under --state-dir")
    p.add_argument("--tick", type=float, default=0.05)
    args = p.parse_args()
    store = open_store(args.store or f"sqlite:///{args.state_dir / 'predictions.db'}")
    gateway = local_gateway(GatewayConfig(
        environment=args.env, state_dir=args.state_dir, token=TOKEN, store=store, loader=FakeLoader(),
        initial_routes={args.model: Route(model=args.model, stable=args.version, stable_uri=args.uri)},
        tick_seconds=args.tick))
    run(gateway, "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
