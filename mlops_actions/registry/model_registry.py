"""Seed API, part 1: ``get_model_registry()`` and its facade (the brief's snippets run as written).

    from mlops_actions.registry.model_registry import get_model_registry

    registry = get_model_registry()
    version = registry.register_model(model_name="task_classifier", model_path="models/v1.pkl",
                                      metadata={"accuracy": 0.85})          # -> "1.0.0"
    registry.promote_to_stage("task_classifier", version, "production")  # alias + tag
    registry.setup_ab_test(model_name="task_classifier", version_a="1.0.0", version_b="1.1.0",
                           traffic_split=0.5)                              # tag on the model

A thin facade over the :class:`~mlops_actions.registry.interface.ModelRegistry`
port: no second implementation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_actions.registry.interface import (
    AB_TEST_TAG,
    STAGE_TAG,
    Bump,
    ModelRegistry,
    ModelVersion,
    bad_input,
    resolve,
)

__all__ = ["STAGES", "ModelRegistryFacade", "get_model_registry"]

STAGES = ("staging", "production", "archived")


def version_dict(mv: ModelVersion) -> dict[str, Any]:
    """A plain, JSON-ready view of a version (what the seed API and ``--json`` return)."""
    return {
        "model_name": mv.name,
        "version": mv.version,
        "registry_version": mv.registry_version,
        "uri": mv.uri,
        "source": mv.source,
        "run_id": mv.run_id,
        "created_at": mv.created_at,
        "aliases": list(mv.aliases),
        "stage": mv.stage,
        "archived": mv.archived,
        "metadata": mv.metadata,
        "description": mv.description,
    }


class ModelRegistryFacade:
    """The brief's ``ModelRegistry`` object: versions are semver strings throughout."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def register_model(self, model_name: str, model_path: str | Path,
                       metadata: Mapping[str, object] | None = None, *,
                       bump: Bump | None = None) -> str:
        """Register a pickled model, a saved MLflow model dir or a model URI; returns its semver."""
        return self.registry.register(model_name, str(model_path), metadata=metadata, bump=bump).version

    def promote_to_stage(self, model_name: str, version: str, stage: str) -> dict[str, Any]:
        """``staging``/``production``: move the alias to ``version`` and tag it; ``archived``: archive."""
        if stage not in STAGES:
            raise bad_input(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}",
                            hint="stages are MLflow aliases here; use set_alias for other names")
        target = resolve(self.registry, model_name, version)
        if stage == "archived":
            self.registry.archive(model_name, target.version)
        else:
            previous = self.registry.get_alias(model_name, stage)
            self.registry.set_alias(model_name, stage, target.version)
            self.registry.set_version_tag(model_name, target.version, STAGE_TAG, stage)
            if previous is not None and previous.version != target.version \
                    and previous.stage == stage:
                self.registry.set_version_tag(model_name, previous.version, STAGE_TAG, "none")
        return version_dict(self.registry.get(model_name, target.version))

    def setup_ab_test(self, model_name: str, version_a: str, version_b: str,
                      traffic_split: float = 0.5) -> dict[str, Any]:
        """Record an A/B test (``traffic_split`` = share of traffic to B) as tag ``mlops.ab_test``."""
        if isinstance(traffic_split, bool) or not isinstance(traffic_split, (int, float)) \
                or not 0 < float(traffic_split) < 1:
            raise bad_input(f"traffic_split {traffic_split!r} is not a share strictly between 0 and 1",
                            hint="0.5 sends half of the traffic to version_b")
        a = resolve(self.registry, model_name, version_a)
        b = resolve(self.registry, model_name, version_b)
        if a.version == b.version:
            raise bad_input(f"A/B test of {model_name} compares {a.version} with itself",
                            hint="pass two different versions")
        config = {"version_a": a.version, "version_b": b.version,
                  "traffic_split": float(traffic_split), "created_at": time.time()}
        self.registry.set_model_tag(model_name, AB_TEST_TAG, json.dumps(config, sort_keys=True))
        return {"model_name": model_name, **config}

    def get_ab_test(self, model_name: str) -> dict[str, Any] | None:
        text = self.registry.model_tags(model_name).get(AB_TEST_TAG)
        return {"model_name": model_name, **json.loads(text)} if text else None

    def get_version(self, model_name: str, version: str) -> dict[str, Any]:
        """A semver or an alias (``production``) -> the version's details."""
        return version_dict(resolve(self.registry, model_name, version))

    def get_stage_version(self, model_name: str, stage: str) -> str | None:
        found = self.registry.get_alias(model_name, stage)
        return found.version if found else None

    def list_versions(self, model_name: str) -> list[dict[str, Any]]:
        return [version_dict(mv) for mv in self.registry.list_versions(model_name)]


def get_model_registry(tracking_uri: str | None = None, *, repo_root: str | Path = ".",
                       registry: ModelRegistry | None = None) -> ModelRegistryFacade:
    """The seed API's entry point; embedded MLflow under ``<repo_root>/.mlops`` by default."""
    if registry is None:
        from mlops_actions.registry.mlflow_registry import get_registry

        registry = get_registry(tracking_uri, repo_root=repo_root)
    return ModelRegistryFacade(registry)
