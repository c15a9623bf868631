"""``mlops-actions k8s ACTION --env ENV``: drive a Kubernetes environment directly.

``plan`` (server-side dry run), ``apply`` (server-side apply, then watch the
Rollouts), ``status`` (live state), ``promote`` / ``abort`` (a paused or failing
Rollout). The GitOps ``apply`` uses the same target; this command is for
operators and for the kind end-to-end test.

Exit codes: 0 ok / no change, 1 rollout failed (rolled back by Argo), plan has
changes, or status shows a Degraded rollout, 2 bad input, 3 the cluster failed or
could not be reached.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops_actions.commands.render import display_path, load_for_render
from mlops_actions.config.specs import KubernetesTarget
from mlops_actions.deploy.targets.kubernetes.client import connect
from mlops_actions.deploy.targets.kubernetes.interface import RolloutPhase
from mlops_actions.deploy.targets.kubernetes.resolve import alias_resolver, registry_resolver
from mlops_actions.deploy.targets.kubernetes.target import KubernetesDeployTarget, PlanAction
from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_OK, ConfigError

ORDER = 61
ACTIONS = ("plan", "apply", "status", "promote", "abort")

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "k8s", help="plan, apply, watch, promote or abort an environment on Kubernetes",
        description="Drive an environment whose target is kubernetes: " + ", ".join(ACTIONS) + ".")
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("--env", required=True, metavar="ENV", help="environment name or file")
    p.add_argument("--model", metavar="MODEL", help="promote/abort: the model (directory under models/)")
    p.add_argument("--full", action="store_true", help="promote: skip the remaining steps")
    p.add_argument("--no-registry", action="store_true", help="resolve pins to MLflow aliases (see render)")
    p.add_argument("--kubeconfig", metavar="FILE", help="default: $KUBECONFIG, ~/.kube/config, in-cluster")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: target.context)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="apply: how long to watch the Rollouts (default 600)")
    p.add_argument("--request-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="per API request (default 10)")
    p.add_argument("--prune", action=argparse.BooleanOptionalAction, default=None,
                   help="delete our objects the environment no longer declares (default: target.prune)")
    p.add_argument("--no-wait", action="store_true", help="apply: do not watch")
    p.add_argument("--force-conflicts", action="store_true",
                   help="apply: take ownership of fields another field manager owns")
    p.set_defaults(func=run)


def _say(message: str) -> None:
    print(message, flush=True)


def run(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    name, path, spec, models = load_for_render(repo, args.env)
    if not isinstance(spec.target, KubernetesTarget):
        raise ConfigError(f"environment {name!r} has target type {spec.target.type!r}, not kubernetes")
    if args.action in ("promote", "abort") and not args.model:
        raise ConfigError(f"k8s {args.action} needs --model MODEL",
                          hint=f"pinned models: {', '.join(sorted(spec.models))}")
    resolve = alias_resolver if args.no_registry else registry_resolver(repo_root=repo)
    api = connect(context=args.context or spec.target.context, kubeconfig=args.kubeconfig,
                  timeout=args.request_timeout)
    target = KubernetesDeployTarget(api, name, spec, models, resolve, source=str(path),
                                    display_source=display_path(repo, path), progress=_say)
    if args.action == "plan":
        items = target.plan(prune=args.prune)
        for item in items:
            print(f"{item.action.value:>9}  {item.ref}")
        changes = [i for i in items if i.action is not PlanAction.UNCHANGED]
        print(f"{len(changes)} change(s)")
        return EXIT_CHECK_FAILED if changes else EXIT_OK
    if args.action == "apply":
        result = target.reconcile(timeout=args.timeout, prune=args.prune, wait=not args.no_wait,
                                  force=args.force_conflicts)
        r = result.report
        print(f"applied {len(r.applied)}, unchanged {len(r.unchanged)}, pruned {len(r.pruned)}")
        for st in result.rollouts:
            print(st.summary())
        return EXIT_OK
    if args.action == "status":
        statuses = target.status()
        for st in statuses:
            print(st.summary())
        degraded = any(st.phase is RolloutPhase.DEGRADED for st in statuses)
        return EXIT_CHECK_FAILED if degraded else EXIT_OK
    st = target.promote(args.model, full=args.full) if args.action == "promote" else target.abort(args.model)
    print(st.summary())
    return EXIT_OK

