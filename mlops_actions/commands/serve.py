"""``mlops-actions serve``: run the gateway of one environment, or of one model (a pod)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops_actions.github import actions

ORDER = 50


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the model gateway of an environment (local target) or of one model URI",
        description="With --env: serve every model pinned in environments/ENV.yaml with MLflow's scoring "
        "protocol, run rollouts declared by `apply`, log predictions; state lives in .mlops/ under the "
        "repo. With --model-uri: serve one model version (single-model mode, as in a Kubernetes pod).")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--env", help="environment name (environments/ENV.yaml)")
    which.add_argument("--model-uri", help="serve this one MLflow model URI (e.g. models:/churn/3)")
    p.add_argument("--host", default=None,
                   help="address to listen on (default: --env: the host of target.url; else 127.0.0.1)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default: --env: the port of target.url; else 8080)")
    p.add_argument("--store", default=None,
                   help="prediction store URL (default: sqlite:///<repo>/.mlops/predictions.db; "
                   "memory://, postgresql://...)")
    p.add_argument("--tick", type=float, default=0.1, help="rollout controller tick in seconds")
    p.add_argument("--max-inflight", type=int, default=512,
                   help="scoring requests in progress at once; more get 503 with Retry-After (default 512)")
    p.add_argument("--model", help="--model-uri: model name for headers and metrics (default: "
                   "$MLOPS_MODEL or the name in the URI)")
    p.add_argument("--model-version", help="--model-uri: version label (default: $MLOPS_MODEL_VERSION)")
    p.add_argument("--environment", help="--model-uri: environment label (default: $MLOPS_ENVIRONMENT)")
    p.add_argument("--state-dir", type=Path, help="--model-uri: where the token and state go "
                   "(default: a temp dir)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.serving.local_plane import build_gateway, build_single_model_gateway
    from mlops_actions.serving.server import run as run_server

    if args.model_uri is not None:
        from mlops_actions.registry.uris import check_model_uri

        check_model_uri(args.model_uri, what="--model-uri")  # before anything starts: exit 2
        gateway = build_single_model_gateway(args.model_uri, model=args.model, version=args.model_version,
                                             environment=args.environment, store_url=args.store,
                                             state_dir=args.state_dir, tick_seconds=args.tick,
                                             max_inflight=args.max_inflight)
        host, port = args.host or "127.0.0.1", args.port or 8080
    else:
        host, port = _env_address(Path(args.repo), args.env, args.host, args.port)
        gateway = build_gateway(Path(args.repo), args.env, args.store, args.tick,
                                max_inflight=args.max_inflight)
    actions.add_mask(gateway.config.token)  # generated or read from a file: GitHub does not know it
    run_server(gateway, host, port)
    return 0


def _env_address(repo: Path, env: str, host: str | None, port: int | None) -> tuple[str, int]:
    """Listen where the environment's ``target.url`` says; --host/--port win (behind a proxy)."""
    from mlops_actions.config.specs import LocalTarget
    from mlops_actions.deploy.apply import load_env
    from mlops_actions.serving.server import listen_address

    target = load_env(repo, env).target
    if not isinstance(target, LocalTarget):
        return host or "127.0.0.1", port or 8080  # build_gateway says why it cannot serve it
    return listen_address(target.url, host, port)
