"""Mutated YAML never escapes as anything but a clean spec or a ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import VALID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_actions.config.loader import load_text, parse_text, validate_data
from mlops_actions.config.specs import EnvironmentSpec, ModelSpec
from mlops_actions.config.yamlsafe import parse_yaml
from mlops_actions.errors import ConfigError

SOURCES = [
    (VALID / "models" / "cancer" / "model.yaml", ModelSpec),
    (VALID / "models" / "diabetes" / "model.yaml", ModelSpec),
    (VALID / "environments" / "staging.yaml", EnvironmentSpec),
    (VALID / "environments" / "production.yaml", EnvironmentSpec),
]
TEXTS = [(path.read_text(), spec) for path, spec in SOURCES]
NOISE = st.sampled_from([*" \t\n:-[]{},&*!|>'\"#%@`?~.0123456789ayno", "\u00e9", "\x00", "\ufeff"])


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, type]:
    text, spec = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 6))):
        lines = text.splitlines(keepends=True)
        op = draw(st.sampled_from(["delete_char", "insert_char", "duplicate_char", "delete_line",
                                   "duplicate_line", "swap_lines", "indent_line"]))
        if op.endswith("char") and text:
            i = draw(st.integers(0, len(text) - 1))
            if op == "delete_char":
                text = text[:i] + text[i + 1:]
            elif op == "insert_char":
                text = text[:i] + draw(NOISE) + text[i:]
            else:
                text = text[:i] + text[i] + text[i:]
        elif lines:
            i = draw(st.integers(0, len(lines) - 1))
            if op == "delete_line":
                del lines[i]
            elif op == "duplicate_line":
                lines.insert(i, lines[i])
            elif op == "swap_lines":
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = "  " + lines[i]
            text = "".join(lines)
    return text, spec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_yaml_gives_a_spec_or_a_config_error(case: tuple[str, type]) -> None:
    text, spec = case
    value, _, errors = parse_text(text, spec, "mutated.yaml")  # the loader's whole per-file path
    assert (value is None) == bool(errors)
    if value is None:
        assert errors  # no spec means at least one error to say why
    for error in errors:
        assert isinstance(error, ConfigError)
        assert error.location is not None and error.location.line is not None
        assert error.location.path == "mutated.yaml"
        assert error.message
    if value is None:  # the raising form agrees
        with pytest.raises(ConfigError):
            load_text(text, spec, "mutated.yaml")
    else:
        assert isinstance(value, spec)
        assert load_text(text, spec, "mutated.yaml") == value


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=200))
def test_arbitrary_text_gives_a_value_or_a_config_error(text: str) -> None:
    try:
        parsed = parse_yaml(text, "any.yaml")
    except ConfigError:
        return
    validate_data(parsed.data, parsed.source, ModelSpec, skip=parsed.error_paths)


def test_unmutated_sources_are_clean(tmp_path: Path) -> None:
    for text, spec in TEXTS:
        parsed = parse_yaml(text, "x.yaml")
        value, errors = validate_data(parsed.data, parsed.source, spec)
        assert errors == [] and parsed.errors == [] and isinstance(value, spec)
