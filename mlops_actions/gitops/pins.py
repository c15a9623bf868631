"""Editing a pin in an environment file (keeping its comments and layout) and finding
the last good pin from the file's git history, for the promote and rollback buttons."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pydantic
import yaml

from mlops_actions.config.specs import EnvironmentSpec, parse_semver
from mlops_actions.errors import ConfigError, Location
from mlops_actions.gitops.sources import ENV_DIR, git, pin_location

__all__ = ["HistoryEntry", "drop_strategy", "env_path", "last_good_version", "pin_commit", "pin_history",
           "pinned_version", "set_pin"]


def env_path(env: str) -> str:
    return f"{ENV_DIR}/{env}.yaml"


def pinned_version(text: str, model: str) -> str | None:
    """The version of ``model`` pinned in an environment file's text, or None."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return None
    pin = (data.get("models") or {}).get(model) if isinstance(data, dict) else None
    version = pin.get("version") if isinstance(pin, dict) else None
    return str(version) if version is not None else None


def set_pin(text: str, path: str, model: str, version: str) -> str:
    """``text`` with ``models.<model>.version`` set to ``version``; everything else byte for byte."""
    try:
        parse_semver(version)
    except ValueError as exc:
        raise ConfigError(str(exc), hint='versions look like "1.3.0"') from None
    loc = pin_location(text, path, model)
    if loc.line is None or loc.column is None:
        new = _add_pin(text, path, model, version)
    else:
        lines = text.splitlines(keepends=True)
        line = lines[loc.line - 1]
        start = loc.column - 1
        rest = line[start:]
        if rest[:1] in ("'", '"'):
            end = start + 1 + rest[1:].index(rest[0]) + 1
        else:
            end = start + len(rest.split("#", 1)[0].rstrip())
        lines[loc.line - 1] = f'{line[:start]}"{version}"{line[end:]}'
        new = "".join(lines)
    try:
        spec = EnvironmentSpec.model_validate(yaml.safe_load(new))
    except (yaml.YAMLError, pydantic.ValidationError) as exc:  # pragma: no cover - defensive
        raise ConfigError(f"editing {path} would break it: {exc}", location=loc) from None
    if spec.models[model].version != version:  # pragma: no cover - defensive
        raise ConfigError(f"could not edit the pin of {model} in {path}", location=loc)
    return new


def drop_strategy(text: str, path: str, model: str) -> str:
    """``text`` without ``models.<model>.strategy`` (so the pin serves its version alone, the
    default full strategy: how an A/B test ends); everything else byte for byte."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", location=Location(path)) from None

    def get(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            return None
        return next(((k, v) for k, v in node.value
                     if isinstance(k, yaml.ScalarNode) and k.value == key), None)

    models = get(root, "models")
    pin = get(models[1] if models else None, model)
    if pin is None:
        raise ConfigError(f"{model} is not pinned in {path}", location=Location(path))
    entry = get(pin[1], "strategy")
    if entry is None:
        return text
    key, value = entry
    if isinstance(pin[1], yaml.MappingNode) and pin[1].flow_style:
        raise ConfigError(f"the pin of {model} in {path} is written inline ({{...}}): cannot remove its "
                          "strategy", location=Location(path, key.start_mark.line + 1),
                          hint=f"write the pin of {model} as a block (one key per line), or remove its "
                          "strategy by hand")
    lines = text.splitlines(keepends=True)
    end = _end_of_block(value)
    last = end.line if end.column > 0 else end.line - 1  # the line holding the value's last character
    new = "".join(lines[:key.start_mark.line] + lines[last + 1:])
    try:
        spec = EnvironmentSpec.model_validate(yaml.safe_load(new))
    except (yaml.YAMLError, pydantic.ValidationError) as exc:  # pragma: no cover - defensive
        raise ConfigError(f"editing {path} would break it: {exc}", location=Location(path)) from None
    if spec.models[model].strategy.type != "full":  # pragma: no cover - defensive
        raise ConfigError(f"could not remove the strategy of {model} in {path}", location=Location(path))
    return new


def _end_of_block(node: yaml.Node) -> yaml.Mark:
    """Where the last value inside a block node ends (a block node's own end mark lies past the
    comments and blank lines that follow it)."""
    while isinstance(node, yaml.MappingNode | yaml.SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    return node.end_mark


def _add_pin(text: str, path: str, model: str, version: str) -> str:
    """``text`` with a new pin ``models.<model>: {version}`` (the default strategy, full): the
    first promotion of a model to an environment (``init`` writes ``models: {}``)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        root = None
    models = None
    if isinstance(root, yaml.MappingNode):
        models = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "models"),
                      None)
    entry = [f"{model}:", f'  version: "{version}"']
    if models is None:  # no models: key at all
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + sep + "models:\n" + "".join(f"  {row}\n" for row in entry)
    if isinstance(models, yaml.MappingNode) and not models.value:  # models: {}
        start, end = models.start_mark.index, models.end_mark.index
        return text[:start].rstrip(" ") + "".join(f"\n  {row}" for row in entry) + text[end:]
    if isinstance(models, yaml.MappingNode) and not models.flow_style:
        indent = " " * models.value[0][0].start_mark.column
        last = _end_of_block(models)
        lines = text.splitlines(keepends=True)
        at = last.line if last.column == 0 else last.line + 1  # the line after the last pin
        if at >= len(lines) and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines[at:at] = [f"{indent}{row}\n" for row in entry]
        return "".join(lines)
    raise ConfigError(f"{model} is not pinned in {path}, and its models: is not a block to add it to",
                      location=Location(path),
                      hint=f"add `{model}: {{version: \"{version}\"}}` under models: by hand first")


@dataclass(frozen=True)
class HistoryEntry:
    commit: str
    subject: str
    version: str | None


def pin_history(repo: Path, env: str, model: str, ref: str = "HEAD",
                limit: int = 200) -> list[HistoryEntry]:
    """The pin of ``model`` after each commit that touched the env file, newest first."""
    path = env_path(env)
    log = git(repo, "log", f"-n{limit}", "--format=%H%x00%s", ref, "--", path)
    entries: list[HistoryEntry] = []
    for row in log.splitlines():
        sha, _, subject = row.partition("\x00")
        text = git(repo, "show", f"{sha}:{path}", check=False)
        entries.append(HistoryEntry(sha, subject, pinned_version(text, model) if text else None))
    return entries


def _pin(text: str, model: str) -> object:
    """``models.<model>`` of an environment file's text as parsed (version and strategy), or None."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return None
    return (data.get("models") or {}).get(model) if isinstance(data, dict) else None


def pin_commit(repo: Path, env: str, model: str, ref: str = "HEAD", limit: int = 200) -> str | None:
    """The commit of ``ref``'s first-parent history (the merges and squashes on the branch) that
    made ``model``'s pin in the env file what it is now, version and strategy: the oldest of the
    newest run of commits holding today's pin. Commits that changed other pins, or only comments,
    are passed over. None when ``model`` is not pinned or git knows no commit of the file; in a
    shallow clone, the oldest commit fetched that holds the pin (check out with fetch-depth: 0)."""
    path = env_path(env)
    shas = git(repo, "log", "--first-parent", f"-n{limit}", "--format=%H", ref, "--", path,
               check=False).split()
    if not shas:
        return None
    current = _pin(git(repo, "show", f"{shas[0]}:{path}", check=False), model)
    if current is None:
        return None
    found = shas[0]
    for sha in shas[1:]:
        if _pin(git(repo, "show", f"{sha}:{path}", check=False), model) != current:
            break
        found = sha
    return found


ROLLBACK_SUBJECT = "Roll back "  # the title and commit message rollback-pr gives its PRs
ROLLBACK_BRANCH = "mlops/rollback-"  # its branch, named in GitHub's merge commit subjects


def last_good_version(repo: Path, env: str, model: str, ref: str = "HEAD") -> HistoryEntry:
    """The newest earlier pin that is neither the current one nor one that was rolled back.

    A commit whose subject starts with "Roll back" (what rollback-pr opens) marks the
    version pinned just before it as bad. Raises ConfigError when the history has no such
    version (a shallow clone, or the model was only ever pinned once).
    """
    history = pin_history(repo, env, model, ref)
    if not history or history[0].version is None:
        raise ConfigError(f"{model} is not pinned in {env_path(env)} at {ref}",
                          hint="check --model and --env")
    current = history[0].version
    bad = {current}
    for newer, older in itertools.pairwise(history):
        rolled_back = ROLLBACK_SUBJECT in newer.subject or ROLLBACK_BRANCH in newer.subject
        if rolled_back and older.version is not None:
            bad.add(older.version)
    for entry in history[1:]:
        if entry.version is not None and entry.version not in bad:
            return entry
    raise ConfigError(
        f"no earlier good version of {model} in the git history of {env_path(env)} "
        f"({len(history)} commit(s) read; current {current}, rolled back: "
        f"{', '.join(sorted(bad - {current})) or 'none'})",
        hint="in Actions, check out with fetch-depth: 0; or pass --to VERSION")
