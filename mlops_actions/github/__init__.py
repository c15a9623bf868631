"""GitHub: the Actions runtime (event, outputs, summary, annotations) and the REST client."""
