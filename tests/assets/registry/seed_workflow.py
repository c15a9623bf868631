# ruff: noqa: F821  (metrics, metadata_a, metadata_b come from the test, as in the brief)
# The brief's "Workflow / 3. Model Registration" and "Setup A/B Test" snippets, verbatim
# (`mlops` renamed to `mlops_actions`; the import the brief leaves implicit added on top).
# Expects `metrics`, `metadata_a`, `metadata_b` and files models/model.pkl, path_a, path_b.
from mlops_actions.registry.model_registry import get_model_registry

# Register in registry
registry = get_model_registry()
version = registry.register_model(
    model_name="my_model",
    model_path="models/model.pkl",
    metadata=metrics
)

registry = get_model_registry()

# Register both versions
version_a = registry.register_model("model", "path_a", metadata_a)
version_b = registry.register_model("model", "path_b", metadata_b)

# Setup A/B test
registry.setup_ab_test(
    model_name="model",
    version_a=version_a,
    version_b=version_b,
    traffic_split=0.5  # 50% to each
)

registry.promote_to_stage("model", version_b, "production")
