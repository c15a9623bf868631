"""Loading model.yaml and environments/*.yaml into specs, with every error at file:line:col.

The YAML is read by :mod:`mlops_actions.config.yamlsafe` (no aliases, no
duplicate keys, size and depth caps, YAML 1.1 surprises refused), then checked
by the pydantic specs; pydantic's error locations are mapped back to the line
and column of the offending key or value, and its messages rewritten to say what
was expected, what was found and what to do. An environment's ``depends_on``
entries are checked here too (unknown models, cycles: :mod:`mlops_actions.config.order`),
since they only refer to the same file.

``load_repo`` reads every file before raising, so one ``ConfigError`` lists all
problems of all files. Cross-file rules (pins, promotion order, data files) are
in :mod:`mlops_actions.config.rules`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from mlops_actions.config.order import order_problems
from mlops_actions.config.specs import (
    APPROVER_PATTERN,
    DURATION_RE,
    NAME_PATTERN,
    EnvironmentSpec,
    ModelSpec,
)
from mlops_actions.config.yamlsafe import (
    ParsedYaml,
    PathKey,
    SourceMap,
    format_path,
    parse_yaml,
    read_yaml_file,
)
from mlops_actions.errors import ConfigError, Location

__all__ = [
    "Repo",
    "load_environment",
    "load_model",
    "load_repo",
    "load_text",
    "parse_text",
    "registered_name",
    "registered_names",
    "scan_repo",
    "validate_data",
]

SpecT = TypeVar("SpecT", bound=pydantic.BaseModel)
VERSION_KEYS = ("version", "version_b")


@dataclass(frozen=True)
class Repo:
    """Every declared model and environment of a repository."""

    root: Path
    models: dict[str, ModelSpec] = field(default_factory=dict)  # key: directory under models/
    environments: dict[str, EnvironmentSpec] = field(default_factory=dict)  # key: file stem
    # Where each file's values are, for cross-file rules and reports (keys: the display path,
    # e.g. "models/iris/model.yaml"); files that failed to load are absent.
    sources: dict[str, SourceMap] = field(default_factory=dict)

    def model_dir(self, key: str) -> Path:
        return self.root / "models" / key

    @staticmethod
    def model_file(key: str) -> str:
        """Display path of a model's file, relative to the root: ``models/<key>/model.yaml``."""
        return f"models/{key}/model.yaml"

    @staticmethod
    def environment_file(name: str) -> str:
        return f"environments/{name}.yaml"

    def locate(self, file: str, key: PathKey, *, at_key: bool = False) -> Location:
        """file:line:col of a value of a loaded file (line 1 when unknown)."""
        source = self.sources.get(file)
        if source is None:
            return Location(file, 1, 1)
        return source.location(key, at_key=at_key)


# --------------------------------------------------------------------------- pydantic -> messages


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _field_keys(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """Key as written in YAML (alias if any) -> annotation."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _literal_type(model: type[pydantic.BaseModel]) -> str | None:
    info = model.model_fields.get("type")
    if info is None:
        return None
    args = typing.get_args(_unwrap(info.annotation))
    return str(args[0]) if len(args) == 1 and isinstance(args[0], str) else None


def _keys_at(tp: Any, loc: Sequence[str | int]) -> list[str] | None:
    """The keys a mapping at ``loc`` (pydantic's loc, union tags included) accepts, if a spec."""
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        fields = _field_keys(tp)
        if not loc:
            return list(fields)
        head = loc[0]
        return _keys_at(fields[head], loc[1:]) if head in fields else None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        members = [_unwrap(a) for a in args if a is not type(None)]
        if loc and isinstance(loc[0], str):
            for member in members:
                if isinstance(member, type) and issubclass(member, pydantic.BaseModel) \
                        and _literal_type(member) == loc[0]:
                    return _keys_at(member, loc[1:])
        for member in members:
            found = _keys_at(member, loc)
            if found is not None:
                return found
        return None
    if origin is list and loc and isinstance(loc[0], int):
        return _keys_at(args[0], loc[1:])
    if origin is dict and loc:
        return _keys_at(args[1], loc[1:])
    return None


def _data_path(data: Any, loc: Sequence[str | int]) -> PathKey:
    """Follow pydantic's loc through the data, skipping union tags and validator names."""
    path: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and isinstance(part, str) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            current = current[part]
            path.append(part)
    return tuple(path)


def _value_at(data: Any, path: PathKey) -> Any:
    for part in path:
        data = data[part]
    return data


def _describe(value: Any, written: str | None) -> str:
    if value is None:
        return "nothing (null)" if not written else f"null (written `{written}`)"
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "integer"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, str):
        return f'"{value}"'
    elif isinstance(value, list):
        return "a list"
    elif isinstance(value, dict):
        return "a mapping"
    else:
        return type(value).__name__
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    if written is not None and written != shown:
        return f"{kind} {shown} (written `{written}`)"
    return f"{kind} {shown}"


def _closest(word: str, choices: Sequence[str]) -> str | None:
    """The choice ``word`` most likely misspells: a transposition first, then difflib's best."""
    swapped = [c for c in choices if sorted(c.lower()) == sorted(word.lower()) and c != word]
    close = swapped or difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = _closest(word, choices)
    return f"did you mean `{close}`?" if close else ""


def _strip_quotes(expected: str) -> list[str]:
    return [part.strip().strip("'\"") for part in expected.replace(" or ", ", ").split(",") if part.strip()]


_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}
_TYPE_WORDS = {"int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
               "float_parsing": "a number", "bool_type": "true or false", "bool_parsing": "true or false",
               "list_type": "a list", "dict_type": "a mapping of keys to values",
               "model_type": "a mapping of keys to values",
               "model_attributes_type": "a mapping of keys to values"}


def _translate(err: Any, data: Any, source: SourceMap, spec: type[pydantic.BaseModel]) -> ConfigError:
    """One pydantic error -> ConfigError at the key (unknown/missing keys) or value (wrong values)."""
    kind: str = err["type"]
    loc: tuple[str | int, ...] = tuple(err["loc"])
    ctx: dict[str, Any] = err.get("ctx") or {}
    value = err.get("input")
    path = _data_path(data, loc)
    entry = source.entry(path)
    written = entry.text if entry is not None else None
    where = format_path(path)
    hint: str | None = None
    at_key = False

    if kind == "extra_forbidden":
        at_key = True
        key = str(loc[-1])
        parent = format_path(path[:-1])
        allowed = _keys_at(spec, loc[:-1]) or []
        message = f"{parent}: unknown key `{key}`"
        suggestion = _did_you_mean(key, allowed)
        if suggestion:
            message += f"; {suggestion}"
        hint = f"valid keys here: {', '.join(sorted(allowed))}" if allowed else "remove the key"
    elif kind in ("missing", "union_tag_not_found"):
        at_key = True
        key = str(loc[-1]) if kind == "missing" else str(ctx.get("discriminator", "type")).strip("'\"")
        message = f"{where}: missing required key `{key}`"
        if kind == "union_tag_not_found":
            hint = f"add `{key}:` naming which kind this is"
    elif kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        choices = _strip_quotes(str(ctx.get("expected_tags", "")))
        discriminator = str(ctx.get("discriminator", "type")).strip("'\"")
        if isinstance(_value_at(data, path), dict) and discriminator in _value_at(data, path):
            path = (*path, discriminator)
        where = format_path(path)
        message = f"{where}: unknown {discriminator} `{tag}`; expected one of {', '.join(choices)}"
        suggestion = _did_you_mean(tag, choices)
        if suggestion:
            message += f"; {suggestion}"
    elif kind == "literal_error":
        choices = _strip_quotes(str(ctx.get("expected", "")))
        message = f"{where}: expected one of {', '.join(choices)}, got {_describe(value, written)}"
        suggestion = _did_you_mean(str(value), choices)
        if suggestion:
            message += f"; {suggestion}"
    elif kind == "string_type":
        if path and path[-1] in VERSION_KEYS:
            message = (f'{where}: expected a quoted semantic version like "1.2.0", '
                       f"got {_describe(value, written)}")
            hint = f'quote it, "{written}", and use MAJOR.MINOR.PATCH' if written else \
                'write the version quoted, e.g. "1.2.0"'
        else:
            message = f"{where}: expected a string, got {_describe(value, written)}"
            hint = f'quote it: "{written}"' if written and not isinstance(value, list | dict) else None
    elif kind in _TYPE_WORDS:
        message = f"{where}: expected {_TYPE_WORDS[kind]}, got {_describe(value, written)}"
        if kind in ("float_type", "int_type") and isinstance(value, str) and entry is not None \
                and entry.quoted:
            hint = "numbers are written without quotes"
    elif kind in _BOUNDS:
        name, op = _BOUNDS[kind]
        bound = ctx.get(name)
        shown = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        message = f"{where}: expected a value {op} {shown}, got {_describe(value, written)}"
    elif kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        message = f"{where}: expected {word} {bound} item(s), got {ctx.get('actual_length')}"
    elif kind in ("string_too_short", "string_too_long"):
        bound = ctx.get("min_length") if kind == "string_too_short" else ctx.get("max_length")
        word = "at least" if kind == "string_too_short" else "at most"
        message = f"{where}: expected {word} {bound} character(s), got {_describe(value, written)}"
    elif kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        if pattern == DURATION_RE.pattern:
            message = f"{where}: expected a duration such as 30s, 5m or 1h, got {_describe(value, written)}"
            hint = "a number and one of the units ms, s, m, h, d"
        elif pattern == NAME_PATTERN:
            message = (f"{where}: expected a name of letters, digits, `_`, `.` and `-` (starting with a "
                       f"letter or digit, at most 128), got {_describe(value, written)}")
        elif pattern == APPROVER_PATTERN:
            message = (f"{where}: expected a GitHub login or org/team-slug, got "
                       f"{_describe(value, written)}")
            hint = "e.g. `alice` or `octo-org/ml-leads` (the team's slug, as in its URL)"
        else:
            message = f"{where}: expected text matching {pattern}, got {_describe(value, written)}"
    elif kind == "union_type":
        message = f"{where}: expected {ctx['expected']}, got {_describe(value, written)}"
    elif kind == "finite_number":
        message = f"{where}: expected a finite number, got {_describe(value, written)}"
    elif kind == "one_action_per_step":  # config.specs.CanaryStep
        message = f"{where}: {err['msg']}"
        hint = "split it into one list item per action: `- set_weight: 10` then `- pause: {}`"
    elif kind == "value_error":
        text = str(err["msg"]).removeprefix("Value error, ")
        message = f"{where}: {text}"
        if path and path[-1] in VERSION_KEYS:
            hint = 'write MAJOR.MINOR.PATCH in quotes, e.g. "1.2.0" (pre-releases: "1.2.0-rc.1")'
    else:
        message = f"{where}: {err['msg']}"
    location = source.location(path, at_key=at_key)
    return ConfigError(message, hint=hint, location=location)


def _typo_targets(errors: list[Any], data: Any, spec: type[pydantic.BaseModel]) -> set[tuple[PathKey, str]]:
    """(mapping path, key) pairs that an unknown key in that mapping looks like a typo of."""
    targets: set[tuple[PathKey, str]] = set()
    for err in errors:
        if err["type"] != "extra_forbidden":
            continue
        loc = tuple(err["loc"])
        close = _closest(str(loc[-1]), _keys_at(spec, loc[:-1]) or [])
        if close is not None:
            targets.add((_data_path(data, loc)[:-1], close))
    return targets


_TYPE_KINDS = {"string_type": "a string", **_TYPE_WORDS}
_TYPE_ORDER = ["a string", "an integer", "a number", "true or false", "a list", "a mapping of keys to values"]


def _merge_union_type_errors(errors: list[Any], data: Any) -> list[Any]:
    """A value that fits no member of a union (``str | int | float | bool``) gives one error per member;
    merge them into one ``expected a string, an integer or ...`` error, and keep only the deepest
    such error when a list member failed inside (``value: [[1]]`` is wrong at ``value[0]``)."""
    groups: dict[PathKey, list[Any]] = {}
    for err in errors:
        if err["type"] in _TYPE_KINDS:
            groups.setdefault(_data_path(data, tuple(err["loc"])), []).append(err)
    merged_paths = {path for path, group in groups.items() if len(group) > 1}
    if not merged_paths:
        return errors
    result: list[Any] = []
    emitted: set[PathKey] = set()
    for err in errors:
        path = _data_path(data, tuple(err["loc"])) if err["type"] in _TYPE_KINDS else None
        if path is None or path not in merged_paths:
            result.append(err)
            continue
        if path in emitted or any(other[: len(path)] == path and other != path for other in merged_paths):
            continue
        emitted.add(path)
        words = sorted({_TYPE_KINDS[e["type"]] for e in groups[path]}, key=_TYPE_ORDER.index)
        words = [word.replace("true or false", "true/false") for word in words]
        expected = ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]
        result.append({**err, "type": "union_type", "ctx": {"expected": expected}})
    return result


def validate_data(data: Any, source: SourceMap, spec: type[SpecT], *,
                  skip: frozenset[PathKey] = frozenset()) -> tuple[SpecT | None, list[ConfigError]]:
    """Validate parsed YAML against a spec; errors under a path in ``skip`` are already reported."""
    if data is None or not isinstance(data, dict):
        found = "an empty file" if data is None else _describe(data, None)
        keys = ", ".join(k for k, info in spec.model_fields.items() if info.is_required())
        return None, [ConfigError(f"(top level): expected a mapping of keys ({keys}, ...), got {found}",
                                  location=source.location(()),
                                  hint="see docs/config.md for an example of this file")]
    try:
        return spec.model_validate(data), []
    except pydantic.ValidationError as exc:
        errors: list[ConfigError] = []
        seen: set[tuple[str, str]] = set()
        raw = [err for err in exc.errors(include_url=False)
               if not any(_data_path(data, tuple(err["loc"]))[: len(bad)] == bad for bad in skip)]
        typos = _typo_targets(raw, data, spec)
        for err in _merge_union_type_errors(raw, data):
            if err["type"] == "missing" and (_data_path(data, tuple(err["loc"])), err["loc"][-1]) in typos:
                continue  # `taks:` is reported as "did you mean `task`?", not also as `task` missing
            error = _translate(err, data, source, spec)
            signature = (str(error.location), error.message)
            if signature not in seen:
                seen.add(signature)
                errors.append(error)
        return None, errors


def _quoted_versions(data: Any, source: SourceMap) -> list[ConfigError]:
    """Pins must be quoted: ``version: 1.10`` would be a float, so every version is written quoted."""
    errors: list[ConfigError] = []
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        return errors
    for key, pin in models.items():
        if not isinstance(pin, dict):
            continue
        candidates: list[PathKey] = [("models", key, "version")]
        strategy = pin.get("strategy")
        if isinstance(strategy, dict) and "version_b" in strategy:
            candidates.append(("models", key, "strategy", "version_b"))
        for path in candidates:
            entry = source.entry(path)
            if entry is None or entry.quoted or entry.text is None:
                continue
            value = pin.get("version") if path[-1] == "version" else strategy.get("version_b")  # type: ignore[union-attr]
            if not isinstance(value, str):
                continue  # a number: pydantic's type error says it
            errors.append(ConfigError(
                f'{format_path(path)}: write versions quoted, "{entry.text}", not {entry.text}',
                hint="unquoted versions like 1.10 turn into numbers; quotes keep them exact",
                location=source.location(path)))
    return errors


Loaded = tuple[SpecT | None, SourceMap | None, list[ConfigError]]


def _load(file: Path, spec: type[SpecT], display: str | None = None) -> Loaded[SpecT]:
    try:
        parsed = read_yaml_file(file, display)
    except ConfigError as exc:
        return None, None, list(exc.errors)
    return _named(_check_parsed(parsed, spec), file.resolve().parent.name)


def _named(loaded: Loaded[SpecT], directory: str) -> Loaded[SpecT]:
    """A model.yaml's ``registered_name`` defaults to its directory's name."""
    value, source, errors = loaded
    if isinstance(value, ModelSpec):
        value = value.named(directory)  # type: ignore[assignment]
    return value, source, errors


def parse_text(text: str, spec: type[SpecT], path: str) -> Loaded[SpecT]:
    """Text of a model.yaml or environment file (e.g. ``git show base:environments/prod.yaml``)
    -> (spec or None, source map or None, every error). Never raises for bad input."""
    try:
        parsed = parse_yaml(text, path)
    except ConfigError as exc:
        return None, None, list(exc.errors)
    return _named(_check_parsed(parsed, spec), Path(path).parent.name)


def load_text(text: str, spec: type[SpecT], path: str) -> SpecT:
    """Like :func:`load_model` / :func:`load_environment`, from text; ``path`` is for messages."""
    value, _, errors = parse_text(text, spec, path)
    if errors or value is None:
        _raise(errors, path)
    assert value is not None
    return value


def _check_parsed(parsed: ParsedYaml, spec: type[SpecT]) -> Loaded[SpecT]:
    value, errors = validate_data(parsed.data, parsed.source, spec, skip=parsed.error_paths)
    errors = parsed.errors + errors
    if spec is EnvironmentSpec:
        errors += _quoted_versions(parsed.data, parsed.source)
        if isinstance(value, EnvironmentSpec):
            errors += [ConfigError(p.message, hint=p.hint, location=parsed.source.location(p.path))
                       for p in order_problems(value.models)]
    errors.sort(key=_order)
    return (value if not errors else None), parsed.source, errors


def _order(error: ConfigError) -> tuple[str, int, int, str]:
    loc = error.location
    if loc is None:
        return ("", 0, 0, error.message)
    return (loc.path, loc.line or 0, loc.column or 0, error.message)


def _raise(errors: list[ConfigError], what: str) -> None:
    if len(errors) == 1:
        raise errors[0]
    raise ConfigError(f"{len(errors)} problems in {what}", errors=errors)


def load_model(path: str | Path) -> ModelSpec:
    """Read and validate one ``model.yaml``; ConfigError listing every problem of the file."""
    spec, _, errors = _load(Path(path), ModelSpec)
    if errors or spec is None:
        _raise(errors, str(path))
    assert spec is not None
    return spec


def load_environment(path: str | Path) -> EnvironmentSpec:
    """Read and validate one ``environments/<env>.yaml``; ConfigError listing every problem."""
    spec, _, errors = _load(Path(path), EnvironmentSpec)
    if errors or spec is None:
        _raise(errors, str(path))
    assert spec is not None
    return spec


def scan_repo(root: str | Path) -> tuple[Repo, list[ConfigError]]:
    """Load every file it can; return the repo of what loaded and the errors of what did not.

    Paths in errors are relative to ``root`` (``models/iris/model.yaml``), as
    GitHub annotations want them.
    """
    base = Path(root)
    models: dict[str, ModelSpec] = {}
    environments: dict[str, EnvironmentSpec] = {}
    sources: dict[str, SourceMap] = {}
    errors: list[ConfigError] = []
    if not (base / "models").is_dir() and not (base / "environments").is_dir():
        errors.append(ConfigError(
            f"no models/ or environments/ directory under {base}", location=Location(str(base)),
            hint="run from the repository root or pass -C DIR"))
    for file in sorted(base.glob("models/*/model.yaml")):
        display = Repo.model_file(file.parent.name)
        model, source, found = _load(file, ModelSpec, display)
        errors += found
        if source is not None:
            sources[display] = source
        if model is not None:
            models[file.parent.name] = model
    for file in sorted(base.glob("models/*/model.yml")):
        errors.append(ConfigError("wrong file name `model.yml`: only model.yaml is read",
                                  location=Location(f"models/{file.parent.name}/model.yml", 1, 1),
                                  hint="rename it to model.yaml"))
    for file in sorted(base.glob("environments/*.yml")):
        errors.append(ConfigError("wrong extension `.yml`: only environments/*.yaml are read",
                                  location=Location(f"environments/{file.name}", 1, 1),
                                  hint=f"rename it to environments/{file.stem}.yaml"))
    for file in sorted(base.glob("environments/*.yaml")):
        display = Repo.environment_file(file.stem)
        env, source, found = _load(file, EnvironmentSpec, display)
        errors += found
        if source is not None:
            sources[display] = source
        if env is not None:
            environments[file.stem] = env
    return Repo(root=base, models=models, environments=environments, sources=sources), errors


def registered_name(root: str | Path, key: str) -> str:
    """The MLflow name of ``models/<key>``: its ``registered_name`` (default: ``key``)."""
    path = Path(root) / "models" / key / "model.yaml"
    return load_model(path).name if path.is_file() else key


def registered_names(root: str | Path) -> dict[str, str]:
    """Directory under models/ -> registered name, for every model.yaml that loads."""
    repo, _ = scan_repo(root)
    return {key: spec.name for key, spec in repo.models.items()}


def load_repo(root: str | Path) -> Repo:
    """Load ``models/*/model.yaml`` and ``environments/*.yaml`` under ``root``.

    Reads every file before raising: one ConfigError lists the problems of all
    of them. Cross-file rules are :func:`mlops_actions.config.rules.check_repo`.
    """
    repo, errors = scan_repo(root)
    if errors:
        _raise(errors, str(root))
    return repo

