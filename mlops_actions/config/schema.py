"""JSON Schemas of model.yaml and environments/*.yaml, generated from the pydantic specs.

The package ships them in ``mlops_actions/schemas/``; a test checks the shipped
files equal a fresh export, so they never go stale. Editors use them through a
first-line comment such as
``# yaml-language-server: $schema=../../mlops_actions/schemas/model.schema.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic

from mlops_actions.config.specs import SEMVER_RE, EnvironmentSpec, ModelSpec

__all__ = ["SCHEMA_FILES", "SHIPPED_DIR", "export_schemas", "schema_for", "schema_text"]

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_FILES: dict[str, type[pydantic.BaseModel]] = {
    "model.schema.json": ModelSpec,
    "environment.schema.json": EnvironmentSpec,
}
_TITLES = {
    "model.schema.json": ("mlops-actions model.yaml",
                          "models/<name>/model.yaml: how mlops-actions judges a model"),
    "environment.schema.json": ("mlops-actions environment",
                                "environments/<env>.yaml: the desired state of one environment"),
}


def _add_version_pattern(node: Any) -> None:
    """Semantic-version fields carry the semver pattern so editors flag `1.10` and `v1`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("version", "version_b") and isinstance(value, dict) and value.get("type") == "string":
                value.setdefault("pattern", SEMVER_RE.pattern)
            _add_version_pattern(value)
    elif isinstance(node, list):
        for item in node:
            _add_version_pattern(item)


def schema_for(file_name: str) -> dict[str, Any]:
    spec = SCHEMA_FILES[file_name]
    body = spec.model_json_schema(by_alias=True, mode="validation")
    _add_version_pattern(body.get("$defs", {}))
    _add_version_pattern(body.get("properties", {}))
    title, description = _TITLES[file_name]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:mlops-actions:schema:{file_name.removesuffix('.schema.json')}:v1",
        **body,
        "title": title,
        "description": description,
    }


def schema_text(file_name: str) -> str:
    return json.dumps(schema_for(file_name), indent=2, sort_keys=True) + "\n"


def export_schemas(out_dir: Path) -> list[Path]:
    """Write both schema files into ``out_dir`` (created if needed); return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name in SCHEMA_FILES:
        path = out_dir / file_name
        path.write_text(schema_text(file_name), encoding="utf-8")
        written.append(path)
    return written
