"""Model registry port and its MLflow adapter."""
