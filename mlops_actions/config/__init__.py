"""Specs for model.yaml and environments/*.yaml, the safe YAML loader, JSON Schema export."""
