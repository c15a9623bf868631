# The registry snippet of the brief (seed/mlops-infrastructure.md, "3. Model Registry"),
# copied verbatim with only `mlops` renamed to `mlops_actions`.
from mlops_actions.registry.model_registry import get_model_registry

registry = get_model_registry()

# Register model
version = registry.register_model(
    model_name="task_classifier",
    model_path="models/v1.pkl",
    metadata={
        'accuracy': 0.85,
        'training_data': 'data/train.csv',
        'algorithm': 'transformer'
    }
)

# Promote to production
registry.promote_to_stage("task_classifier", version, "production")

# Setup A/B test
registry.setup_ab_test(
    model_name="task_classifier",
    version_a="1.0.0",
    version_b="1.1.0",
    traffic_split=0.5
)
