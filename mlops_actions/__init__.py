"""mlops-actions: GitOps for the whole life of ML models on GitHub Actions."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
