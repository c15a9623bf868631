"""The strict YAML reader: scalar rules, marks, and what it refuses."""

from __future__ import annotations

import math

import pytest

from mlops_actions.config.yamlsafe import MAX_DEPTH, format_path, parse_yaml
from mlops_actions.errors import ConfigError


@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("False", False), ("TRUE", True),
    ("null", None), ("~", None), ("", None),
    ("0", 0), ("-12", -12), ("+7", 7),
    ("1.5", 1.5), ("1.10", 1.1), ("1e3", 1000.0), (".5", 0.5), ("-1.", -1.0),
    ("1.2.0", "1.2.0"), ("v1", "v1"), ("y", "y"), ("n", "n"), ("hello world", "hello world"), ("30s", "30s"),
    ("'no'", "no"), ('"0x1F"', "0x1F"), ('"2024-01-01"', "2024-01-01"), ("!!str 017", "017"),
    ("!!float 3", 3.0), ("!!int 3", 3), ("!!bool true", True),
])
def test_scalars_follow_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    parsed = parse_yaml(f"k: {text}\n", "f.yaml")
    assert parsed.errors == []
    assert parsed.data == {"k": value}
    assert type(parsed.data["k"]) is type(value)


def test_infinity_and_nan() -> None:
    data = parse_yaml("a: .inf\nb: -.Inf\nc: .nan\n").data
    assert data["a"] == math.inf and data["b"] == -math.inf and math.isnan(data["c"])


@pytest.mark.parametrize(("text", "fragment"), [
    ("yes", "YAML 1.1 boolean (true)"), ("No", "YAML 1.1 boolean (false)"), ("on", "(true)"),
    ("OFF", "(false)"),
    ("0x1F", "hexadecimal"), ("0o17", "octal number"), ("0b101", "binary"), ("017", "leading zero"),
    ("1_000", "underscores"), ("1:20", "base-60"), ("190:20:30", "base-60"),
    ("2024-01-01", "date"), ("2001-12-14t21:59:43.10-05:00", "date"), ("2001-12-14 21:59:43.10 -5", "date"),
])
def test_yaml_1_1_surprises_are_errors_with_a_hint_to_quote(text: str, fragment: str) -> None:
    parsed = parse_yaml(f"key: {text}\n", "f.yaml")
    assert len(parsed.errors) == 1
    error = parsed.errors[0]
    assert str(error.location) == "f.yaml:1:6"
    assert error.message.startswith(f"key: unquoted `{text}`")
    assert fragment in error.message
    assert error.hint is not None and "quote" in error.hint
    assert parsed.error_paths == {("key",)}
    assert parsed.data == {"key": text}  # kept as text so validation can go on


def test_every_value_has_the_line_and_column_of_its_key_and_value() -> None:
    text = "a:\n  b: [1, {c: x}]\n  d:\n    - e\n"
    source = parse_yaml(text, "f.yaml").source
    assert str(source.location(("a",), at_key=True)) == "f.yaml:1:1"
    assert str(source.location(("a", "b"))) == "f.yaml:2:6"
    assert str(source.location(("a", "b", 1, "c"))) == "f.yaml:2:14"
    assert str(source.location(("a", "b", 1, "c"), at_key=True)) == "f.yaml:2:11"
    assert str(source.location(("a", "d", 0))) == "f.yaml:4:7"
    # a path that is not there falls back to its nearest parent
    assert str(source.location(("a", "d", 5, "zz"))) == "f.yaml:4:5"
    assert str(source.location(("nothing",))) == "f.yaml:1:1"


def test_quoting_is_recorded() -> None:
    source = parse_yaml('a: "1.2.0"\nb: 1.2.0\nc: |\n  text\n').source
    assert [source.entries[(k,)].quoted for k in "abc"] == [True, False, True]
    assert source.entries[("b",)].text == "1.2.0"


def test_format_path() -> None:
    assert format_path(("models", "iris", "strategy", "steps", 2, "set_weight")) == \
        "models.iris.strategy.steps[2].set_weight"
    assert format_path(()) == "(top level)"
    assert format_path((0, "a")) == "[0].a"


@pytest.mark.parametrize(("text", "expected"), [
    ("a: &x 1\n", "f.yaml:1:4: anchor &x is not allowed"),
    ("a: [&x 1, 2]\n", "f.yaml:1:5: anchor &x is not allowed"),
    ("a: *x\n", "f.yaml:1:4: alias *x is not allowed"),
    ("a: !!python/name:os.system\n", "f.yaml:1:4: tag !!python/name:os.system is not allowed"),
    ("a: !!binary aGVsbG8=\n", "f.yaml:1:4: tag !!binary is not allowed"),
    ("a: !!timestamp 2001-12-14\n", "f.yaml:1:4: tag !!timestamp is not allowed"),
    ("a: !!set {x}\n", "f.yaml:1:4: tag !!set is not allowed"),
    ("a: !local x\n", "f.yaml:1:4: tag !local is not allowed"),
    ("a:\n  b: 1\n \tc: 2\n", "f.yaml:3:2: tab in indentation"),
    ("[a, b]: 1\n", "f.yaml:1:1: (top level): a key must be a plain name, not a list or mapping"),
    ("a: 'open\n",
     "f.yaml:2:1: invalid YAML: while scanning a quoted scalar, found unexpected end of stream"),
    ("a: b: c\n", "f.yaml:1:5: invalid YAML: mapping values are not allowed in this context"),
    ("a: 1\n---\nb: 2\n",
     "f.yaml:2:1: a second YAML document (`---`) is not allowed"),
    ("a: 1\nb: x\x07\n", "f.yaml:2:5: control character U+0007 is not allowed in YAML"),
    ("a: 1\nb: x\ud800\n", "f.yaml:2:5: not valid Unicode text (a lone surrogate character)"),
])
def test_refused_documents(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "f.yaml")
    assert _text(info.value) == expected


def _text(err: ConfigError) -> str:
    return f"{err.location}: {err.message}"


def test_tabs_inside_values_are_fine() -> None:
    assert parse_yaml("a: \"x\\ty\"\nb: \"x\ty\"  # comment\n").data == {"a": "x\ty", "b": "x\ty"}


def test_nesting_cap_counts_levels() -> None:
    at_cap = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    parse_yaml(at_cap)  # accepted
    with pytest.raises(ConfigError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        parse_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    deep_blocks = "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_DEPTH + 2))
    with pytest.raises(ConfigError, match="nesting deeper"):
        parse_yaml(deep_blocks)


def test_billion_laughs_is_refused_at_the_first_anchor_without_expanding() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    with pytest.raises(ConfigError) as info:
        parse_yaml("\n".join(lines) + "\n", "lol.yaml")
    assert str(info.value.location) == "lol.yaml:1:4"


def test_duplicate_keys_at_every_level_are_all_reported() -> None:
    parsed = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "f.yaml")
    assert [f"{e.location}: {e.message}" for e in parsed.errors] == [
        "f.yaml:4:3: b.c: duplicate key `c` (first at line 3)",
        "f.yaml:5:1: a: duplicate key `a` (first at line 1)",
    ]
    assert parsed.data == {"a": 1, "b": {"c": 1}}  # the first one wins while errors are reported


def test_keys_are_always_text() -> None:
    assert parse_yaml("1: a\nyes: b\nnull: c\n").data == {"1": "a", "yes": "b", "null": "c"}


def test_explicit_core_tag_with_a_wrong_value() -> None:
    parsed = parse_yaml("a: !!int abc\n", "f.yaml")
    assert [f"{e.location}: {e.message}" for e in parsed.errors] == [
        "f.yaml:1:4: a: `abc` is not a valid !!int"]


def test_empty_document() -> None:
    parsed = parse_yaml("# only a comment\n", "f.yaml")
    assert parsed.data is None and parsed.errors == []


def test_pure_python_parser_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml, PyYAML's own event parser is used: same values, same positions."""
    import yaml

    from mlops_actions.config import yamlsafe

    text = ('a: [1, "x", {b: no}]\nc:\n  - !!str 017\n  - |\n    block\nd: 1.5\n')
    fast = parse_yaml(text, "f.yaml")
    monkeypatch.setattr(yamlsafe, "_EventLoader", yaml.SafeLoader)
    slow = parse_yaml(text, "f.yaml")
    assert slow.data == fast.data
    assert slow.source == fast.source
    assert [str(e) for e in slow.errors] == [str(e) for e in fast.errors]
    with pytest.raises(ConfigError, match="alias"):
        parse_yaml("a: *x\n", "f.yaml")
