"""The docs name only metrics `check` accepts (issue 16: docs showed names that check rejected)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_actions.config.rules import CLASSIFICATION_METRICS, REGRESSION_METRICS

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _ticked(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def metric_names_sentence() -> str:
    """What the docs say, generated from the lists `check` uses (whitespace-normalised)."""
    return (f"classification tasks take {_ticked(CLASSIFICATION_METRICS)}; "
            f"regression takes {_ticked(REGRESSION_METRICS)}")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("doc", ["README.md", "docs/config.md", "docs/validation.md"])
def test_the_metric_names_the_docs_list_are_the_ones_check_accepts(doc: str) -> None:
    assert metric_names_sentence() in _flat((ROOT / doc).read_text())


def _threshold_keys(node: Any, out: list[str]) -> list[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("thresholds", "performance") and isinstance(value, dict):
                out += [str(k) for k in value]
            _threshold_keys(value, out)
    elif isinstance(node, list):
        for value in node:
            _threshold_keys(value, out)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_threshold_in_a_yaml_example_names_a_metric_check_accepts(doc: Path) -> None:
    accepted = set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)
    for block in re.findall(r"```ya?ml\n(.*?)```", doc.read_text(), re.S):
        try:
            data = yaml.safe_load(block)
        except yaml.YAMLError:
            continue  # fragments with `...`; the loader tests cover real files
        rejected = [k for k in _threshold_keys(data, []) if k not in accepted]
        assert not rejected, f"{doc.name}: metric names `check` rejects: {rejected}\n{block}"
