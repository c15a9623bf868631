"""A safe, strict YAML reader that remembers where every value came from.

Built on PyYAML's event parser (libyaml's when available; events carry marks)
and our own composer and scalar rules instead of PyYAML's YAML 1.1 resolver:

* no anchors or aliases (a billion-laughs document cannot expand), no duplicate
  keys, no tags other than the core ones (``!!str``, ``!!int``, ``!!float``,
  ``!!bool``, ``!!null``, ``!!map``, ``!!seq``): ``!!python/object`` and local
  ``!tags`` are errors;
* a size cap (:data:`MAX_BYTES`), a nesting cap (:data:`MAX_DEPTH`), no tabs in
  indentation, exactly one document, keys are plain strings;
* unquoted scalars follow the YAML 1.2 core schema (``true``/``false``, ``null``,
  decimal integers, floats) and anything YAML 1.1 would read differently is an
  error with a hint to quote it: ``yes``/``no``/``on``/``off``,
  ``0x1F``, ``017``, ``0o17``, ``0b101``, ``1_000``, ``1:20`` (base 60), dates
  and timestamps.

:func:`parse_yaml` returns the plain Python value and a :class:`SourceMap` from
each value's path (a tuple of keys and indices) to its key's and value's
line:column, which the loader uses to turn pydantic's ``loc`` into
``file:line:col``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from mlops_actions.errors import ConfigError, Location

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "Entry",
    "ParsedYaml",
    "SourceMap",
    "format_path",
    "parse_yaml",
    "read_yaml_file",
]

MAX_BYTES = 1024 * 1024
"""Files larger than this are refused before parsing (1 MiB)."""

MAX_DEPTH = 64
"""Mappings and lists nested deeper than this are refused."""

PathKey = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {f"{_CORE}{t}": t for t in ("str", "int", "float", "bool", "null", "map", "seq")}

_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
# PyYAML's YAML 1.1 booleans. The spec's `y`/`n` are left as text: PyYAML reads them as text too,
# and `label: y` is the most common label column name there is.
_YAML11_BOOL = {
    "yes": True, "Yes": True, "YES": True, "on": True, "On": True, "ON": True,
    "no": False, "No": False, "NO": False, "off": False, "Off": False, "OFF": False,
}
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_HEX = re.compile(r"[-+]?0x[0-9a-fA-F_]+")
_OCT = re.compile(r"[-+]?0o[0-7_]+")
_BIN = re.compile(r"[-+]?0b[01_]+")
_UNDERSCORED = re.compile(r"[-+]?[0-9][0-9_]*_[0-9_]*(?:\.[0-9_]*)?")
_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_MAX_INT_DIGITS = 1000
"""Longer unquoted integers are refused (found by fuzzing: Python's int() raises past 4300 digits)."""
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9].*)?")


@dataclass(frozen=True)
class Entry:
    """Where one value sits: its key (for mapping entries) and the value itself."""

    value_line: int
    value_column: int
    key_line: int | None = None
    key_column: int | None = None
    text: str | None = None  # the scalar as written, for messages
    quoted: bool = False  # a scalar written in quotes (or a block scalar)


@dataclass(frozen=True)
class SourceMap:
    """Path of each value (``("models", "iris", "version")``) -> where it is in ``path``."""

    path: str
    entries: dict[PathKey, Entry] = field(default_factory=dict)

    def location(self, key: PathKey, *, at_key: bool = False) -> Location:
        """Line:column of a value (or of its key), falling back to the nearest parent."""
        probe = tuple(key)
        while probe not in self.entries and probe:
            probe = probe[:-1]
        entry = self.entries.get(probe)
        if entry is None:
            return Location(self.path, 1, 1)
        if at_key and entry.key_line is not None and entry.key_column is not None:
            return Location(self.path, entry.key_line, entry.key_column)
        return Location(self.path, entry.value_line, entry.value_column)

    def entry(self, key: PathKey) -> Entry | None:
        return self.entries.get(tuple(key))


@dataclass(frozen=True)
class ParsedYaml:
    data: Any
    source: SourceMap
    errors: list[ConfigError]  # value-level problems; the data still holds the raw text there
    error_paths: frozenset[PathKey]  # paths those errors are about


def format_path(key: PathKey) -> str:
    """``("models", "iris", "strategy", "steps", 2)`` -> ``models.iris.strategy.steps[2]``."""
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


class _Fatal(Exception):
    def __init__(self, line: int, column: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.line, self.column, self.message, self.hint = line, column, message, hint


_EventLoader: type[yaml.SafeLoader] = (
    yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader)  # type: ignore[assignment]
"""libyaml's event parser when PyYAML was built with it (about 13x faster), else PyYAML's own."""


@dataclass
class _Node:
    """A composed YAML node: 1-based position, explicit core tag (if any), and content."""

    kind: str  # "scalar", "seq" or "map"
    line: int
    column: int
    tag: str | None = None  # explicit core tag name: "str", "int", ... ("!" counts as "str")
    text: str = ""  # scalars
    style: str | None = None  # scalars: None when plain, else the quote or block style
    items: list[_Node] = field(default_factory=list)  # sequences
    pairs: list[tuple[_Node, _Node]] = field(default_factory=list)  # mappings


def _position(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return int(mark.line) + 1, int(mark.column) + 1


def _check_event(event: ScalarEvent | CollectionStartEvent) -> None:
    line, column = _position(event)
    if event.anchor is not None:
        raise _Fatal(line, column, f"anchor &{event.anchor} is not allowed",
                     "anchors and aliases are refused (they can expand a small file into a huge one); "
                     "write the value out in full")
    tag = event.tag
    if tag is not None and tag != "!" and tag not in _ALLOWED_TAGS:
        shown = "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag
        raise _Fatal(line, column, f"tag {shown} is not allowed",
                     "only the core tags !!str, !!int, !!float, !!bool, !!null, !!map, !!seq "
                     "are accepted; remove the tag")


def _compose(text: str) -> _Node | None:
    """One document's node tree, built from parser events without recursion.

    Refuses aliases, anchors, tags other than the core ones, nesting deeper than
    MAX_DEPTH and a second document, each at its line:column. Returns the root
    node, or None for an empty document.
    """
    loader = _EventLoader(text)
    # PyYAML's stubs leave get_event untyped: one typed handle instead of an ignore per call
    next_event = cast(Callable[[], yaml.Event], loader.get_event)
    try:
        next_event()  # stream start
        if loader.check_event(StreamEndEvent):
            return None
        next_event()  # document start
        root: _Node | None = None
        stack: list[tuple[_Node, list[_Node]]] = []  # collection node, pending mapping key (0 or 1)
        while True:
            event = next_event()
            if isinstance(event, DocumentEndEvent):
                break
            line, column = _position(event)
            if isinstance(event, AliasEvent):
                raise _Fatal(line, column, f"alias *{event.anchor} is not allowed",
                             "anchors and aliases are refused (they can expand a small file into a huge "
                             "one); write the value out in full")
            if isinstance(event, CollectionEndEvent):
                stack.pop()
                continue
            assert isinstance(event, ScalarEvent | CollectionStartEvent)
            _check_event(event)
            tag = None if event.tag is None else _ALLOWED_TAGS.get(event.tag, "str")
            if isinstance(event, ScalarEvent):
                node = _Node("scalar", line, column, tag, text=str(event.value), style=event.style or None)
            elif len(stack) >= MAX_DEPTH:
                raise _Fatal(line, column, f"nesting deeper than {MAX_DEPTH} levels",
                             "no valid file nests this deep; flatten the document")
            else:
                node = _Node("seq" if isinstance(event, SequenceStartEvent) else "map", line, column, tag)
            if not stack:
                root = node
            else:
                parent, pending = stack[-1]
                if parent.kind == "seq":
                    parent.items.append(node)
                elif not pending:
                    pending.append(node)
                else:
                    parent.pairs.append((pending.pop(), node))
            if node.kind != "scalar":
                stack.append((node, []))
        if not loader.check_event(StreamEndEvent):
            line, column = _position(next_event())
            raise _Fatal(line, column, "a second YAML document (`---`) is not allowed",
                         "a file holds one document; remove the `---` line and what follows, or move it "
                         "to its own file")
        return root
    finally:
        loader.dispose()


class _Builder:
    """Turns composed nodes into plain values, recording marks and value-level errors."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: dict[PathKey, Entry] = {}
        self.errors: list[ConfigError] = []
        self.error_paths: set[PathKey] = set()

    def error(self, node: _Node, key: PathKey, message: str, hint: str | None = None) -> None:
        self.errors.append(ConfigError(f"{format_path(key)}: {message}", hint=hint,
                                       location=Location(self.path, node.line, node.column)))
        self.error_paths.add(key)

    def build(self, node: _Node, key: PathKey) -> Any:
        if node.kind == "map":
            return self._mapping(node, key)
        if node.kind == "seq":
            if node.tag not in (None, "seq"):
                self.error(node, key, f"tag !!{node.tag} on a list")
            items = []
            for index, item in enumerate(node.items):
                child = (*key, index)
                self._record(child, item)
                items.append(self.build(item, child))
            return items
        return self._scalar(node, key)

    def _record(self, key: PathKey, value: _Node, key_node: _Node | None = None) -> None:
        scalar = value.kind == "scalar"
        self.entries[key] = Entry(
            value.line, value.column,
            key_node.line if key_node else None, key_node.column if key_node else None,
            text=value.text if scalar else None, quoted=scalar and value.style is not None)

    def _mapping(self, node: _Node, key: PathKey) -> dict[str, Any]:
        if node.tag not in (None, "map"):
            self.error(node, key, f"tag !!{node.tag} on a mapping")
        result: dict[str, Any] = {}
        first_seen: dict[str, _Node] = {}
        for key_node, value_node in node.pairs:
            if key_node.kind != "scalar":
                raise _Fatal(key_node.line, key_node.column, f"{format_path(key)}: a key must be a plain "
                             "name, not a list or mapping", "write keys as simple words, e.g. `name:`")
            name = key_node.text
            child = (*key, name)
            if name in first_seen:
                first_line = first_seen[name].line
                self.error(key_node, child, f"duplicate key `{name}` (first at line {first_line})",
                           "a key may appear once per mapping; delete or merge one of them")
                continue
            first_seen[name] = key_node
            self._record(child, value_node, key_node)
            result[name] = self.build(value_node, child)
        return result

    def _scalar(self, node: _Node, key: PathKey) -> Any:
        text = node.text
        tag = node.tag
        if tag == "str" or (tag is None and node.style is not None):
            return text
        if tag in ("map", "seq"):
            self.error(node, key, f"tag !!{tag} on a plain value `{text}`")
            return text
        value = _plain(text)
        if isinstance(value, _Surprise):
            if tag is None:
                self.error(node, key, value.message, value.hint)
                return text
            value = text
        if tag is None:
            return value
        expected: dict[str, tuple[type, ...]] = {
            "int": (int,), "float": (int, float), "bool": (bool,), "null": (type(None),)}
        types = expected[tag]
        if not isinstance(value, types) or (tag in ("int", "float") and isinstance(value, bool)):
            self.error(node, key, f"`{text}` is not a valid !!{tag}")
            return text
        return float(value) if tag == "float" and isinstance(value, int | float) else value


@dataclass(frozen=True)
class _Surprise:
    message: str
    hint: str


def _quote_hint(text: str) -> str:
    return f'quote it, "{text}", if you mean the text'


def _plain(text: str) -> Any:
    """An unquoted scalar under the YAML 1.2 core schema, or a _Surprise for YAML 1.1 traps."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _YAML11_BOOL:
        meaning = "true" if _YAML11_BOOL[text] else "false"
        return _Surprise(f"unquoted `{text}` is a YAML 1.1 boolean ({meaning}) to some readers and text "
                         "to others",
                         f"write {meaning} for a boolean, or {_quote_hint(text)}")
    if _INT.fullmatch(text):
        if len(text) > _MAX_INT_DIGITS:  # int() refuses past sys.get_int_max_str_digits() anyway
            return _Surprise(f"unquoted integer of {len(text)} digits is too long to be a setting",
                             f"no field takes a number this long; {_quote_hint(text[:20] + '...')}")
        return int(text)
    if _LEADING_ZERO.fullmatch(text):
        return _Surprise(f"unquoted `{text}` has a leading zero: YAML 1.1 reads it as an octal number, "
                         "YAML 1.2 as decimal", f"drop the leading zero for a number, or {_quote_hint(text)}")
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    for regex, what in ((_HEX, "a hexadecimal number"), (_OCT, "an octal number"),
                        (_BIN, "a binary number")):
        if regex.fullmatch(text):
            return _Surprise(f"unquoted `{text}` is {what} to some YAML readers and text to others",
                             f"write the number in decimal, or {_quote_hint(text)}")
    if _UNDERSCORED.fullmatch(text):
        return _Surprise(f"unquoted `{text}` is a number to YAML 1.1 readers (underscores dropped) and text "
                         "to YAML 1.2", f"write the digits without underscores, or {_quote_hint(text)}")
    if _BASE60.fullmatch(text):
        return _Surprise(f"unquoted `{text}` is a base-60 number to YAML 1.1 readers (1:20 is 80)",
                         _quote_hint(text))
    if _DATE.fullmatch(text):
        return _Surprise(f"unquoted `{text}` is a date to YAML 1.1 readers, not text",
                         f'quote it: "{text}"')
    return text


def _too_big(size: int, path: str) -> ConfigError:
    return ConfigError(f"file is {size / 1024 / 1024:.2f} MiB; the limit is {MAX_BYTES // 1024 // 1024} MiB",
                       location=Location(path, 1, 1),
                       hint="model.yaml and environment files are small; is this the right file?")


def _offset_location(text: str, offset: int, path: str) -> Location:
    before = text[:offset]
    return Location(path, before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def _byte_location(raw: bytes, offset: int, path: str) -> Location:
    """Line and column (in characters, as editors count) of the byte at ``offset``."""
    line_start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8-sig", errors="replace")) + 1
    return Location(path, raw.count(b"\n", 0, offset) + 1, column)


def _check_tabs(text: str, path: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            raise ConfigError("tab in indentation", location=Location(path, number, indent.index("\t") + 1),
                              hint="YAML indents with spaces only; replace the tab with spaces")


def parse_yaml(text: str, path: str = "<string>") -> ParsedYaml:
    """Parse one YAML document strictly; raise ConfigError for anything that stops parsing.

    Value-level problems (duplicate keys, YAML 1.1 surprises) do not stop
    parsing: they come back in ``errors`` so all of a file's problems are
    reported at once.
    """
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ConfigError("not valid Unicode text (a lone surrogate character)",
                          location=_offset_location(text, exc.start, path),
                          hint="save the file as UTF-8") from None
    if size > MAX_BYTES:
        raise _too_big(size, path)
    _check_tabs(text, path)
    try:
        node = _compose(text)
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"control character U+{exc.character:04X} is not allowed in YAML",
                          location=_offset_location(text, exc.position, path),
                          hint="remove it, or write it as an escape inside double quotes") from None
    except _Fatal as exc:
        raise ConfigError(exc.message, hint=exc.hint, location=Location(path, exc.line, exc.column)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [part for part in (exc.context, exc.problem) if part]
        message = "invalid YAML: " + (", ".join(parts) or "cannot parse")
        location = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path, 1, 1)
        raise ConfigError(message, location=location,
                          hint="check indentation, colons and quotes around this point") from None
    except yaml.YAMLError as exc:  # anything else the parser refuses, without a position
        raise ConfigError(f"invalid YAML: {exc}", location=Location(path, 1, 1)) from None
    builder = _Builder(path)
    if node is None:
        return ParsedYaml(None, SourceMap(path, {(): Entry(1, 1)}), [], frozenset())
    try:
        data = builder.build(node, ())
    except _Fatal as exc:
        raise ConfigError(exc.message, hint=exc.hint, location=Location(path, exc.line, exc.column)) from None
    builder.entries[()] = Entry(node.line, node.column)
    return ParsedYaml(data, SourceMap(path, builder.entries), builder.errors, frozenset(builder.error_paths))


def read_yaml_file(file: Path, display: str | None = None) -> ParsedYaml:
    """Read ``file`` (at most :data:`MAX_BYTES` + 1 bytes) and parse it."""
    shown = display if display is not None else str(file)
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                handle.seek(0, 2)
                raise _too_big(handle.tell(), shown)
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", location=Location(shown)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte 0x{raw[exc.start]:02X} cannot start or continue a "
                          "UTF-8 character)", location=_byte_location(raw, exc.start, shown),
                          hint="save the file as UTF-8") from None
    return parse_yaml(text, shown)
