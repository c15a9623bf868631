"""The GitHub Actions runtime: annotations, outputs, step summary, masking.

Workflow commands are documented at
https://docs.github.com/actions/reference/workflow-commands-for-github-actions
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
from collections.abc import Iterator
from typing import Any, Literal, TextIO

from mlops_actions.errors import Location

__all__ = [
    "ANNOTATION_LIMIT",
    "SUMMARY_LIMIT",
    "add_mask",
    "annotate",
    "annotate_limited",
    "annotations_dropped",
    "append_summary",
    "command_guard",
    "defuse",
    "escape_data",
    "escape_property",
    "in_actions",
    "reset_annotation_counts",
    "set_output",
]

Level = Literal["error", "warning", "notice"]


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


_COMMAND_START = re.compile(r"^([ \t]*):(?=:)", re.M)
_emitting = [False]  # True while this module prints a workflow command of its own


def defuse(text: str) -> str:
    """``text`` with every line that would start a workflow command made inert (``::`` -> ``: :``).

    The runner reads ``::name::value`` at the start of any stdout or stderr line (leading
    blanks ignored), so a PR title, branch name, commit message, freeze reason or dispatch
    input printed by a command could otherwise emit ``::add-mask::``, ``::stop-commands::``
    or ``::error`` of its own.
    """
    return _COMMAND_START.sub(r"\1: ", text)


class _Guard:
    """A text stream that defuses workflow commands it did not get from this module."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._at_line_start = True

    def write(self, text: str) -> int:
        if not _emitting[0]:
            shown = text
            if not self._at_line_start and "\n" in text:  # only the part after a newline starts lines
                head, _, tail = text.partition("\n")
                shown = head + "\n" + defuse(tail)
            elif self._at_line_start:
                shown = defuse(text)
            text = shown
        if text:
            self._at_line_start = text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def command_guard() -> Iterator[None]:
    """Inside Actions, route stdout and stderr through :func:`defuse` (what this module prints
    on purpose, annotations and masks, passes); outside Actions, do nothing."""
    if not in_actions():
        yield
        return
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Guard(sys.stdout), _Guard(sys.stderr)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = saved


def _emit(line: str) -> None:
    """Print one workflow command of ours, past the guard."""
    _emitting[0] = True
    try:
        print(line, file=sys.stdout, flush=True)
    finally:
        _emitting[0] = False


def annotate(level: Level, message: str, *, location: Location | None = None,
             title: str | None = None) -> None:
    """Print one ``::error file=...,line=...,col=...::message`` workflow command."""
    props: list[str] = []
    if location is not None:
        props.append(f"file={escape_property(location.path)}")
        if location.line is not None:
            props.append(f"line={location.line}")
        if location.column is not None:
            props.append(f"col={location.column}")
    if title:
        props.append(f"title={escape_property(title)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    _emit(f"{head}::{escape_data(message)}")


# --------------------------------------------------------------------------- limits
# GitHub shows at most 10 error and 10 warning annotations per step (and 10 notices);
# the rest are dropped silently, so we count them and say how many were left out.
ANNOTATION_LIMIT = 10
# A step summary larger than 1 MiB makes the upload fail; keep well under it.
SUMMARY_LIMIT = 1024 * 1024 - 4096

_annotation_counts: dict[str, int] = {"error": 0, "warning": 0, "notice": 0}
_annotations_dropped: dict[str, int] = {"error": 0, "warning": 0, "notice": 0}


def annotate_limited(level: Level, message: str, *, location: Location | None = None,
                     title: str | None = None) -> bool:
    """Like :func:`annotate`, but past the per-step limit print a plain log line instead.

    Returns True when the annotation was emitted as a workflow command.
    """
    if _annotation_counts[level] >= ANNOTATION_LIMIT:
        _annotations_dropped[level] += 1
        where = f"{location}: " if location is not None else ""
        print(f"{level}: {where}{message}", file=sys.stdout, flush=True)
        return False
    _annotation_counts[level] += 1
    annotate(level, message, location=location, title=title)
    return True


def annotations_dropped() -> dict[str, int]:
    """How many annotations per level went to the log only (over the per-step limit)."""
    return dict(_annotations_dropped)


def reset_annotation_counts() -> None:
    for key in _annotation_counts:
        _annotation_counts[key] = 0
        _annotations_dropped[key] = 0


def add_mask(value: str) -> None:
    """Ask the runner to replace ``value`` with ``***`` in every later log line."""
    if value and in_actions():
        for line in value.splitlines() or [value]:
            if line.strip():
                _emit(f"::add-mask::{escape_data(line)}")


def set_output(name: str, value: str) -> None:
    """Write a step output to ``$GITHUB_OUTPUT`` (heredoc form when the value spans lines).

    Outside Actions (no ``GITHUB_OUTPUT``) this does nothing.
    """
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    if not name or any(c in name for c in "\n\r=<"):
        raise ValueError(f"invalid output name {name!r}")
    if "\n" in value or "\r" in value:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        while delimiter in value:  # pragma: no cover - 128 random bits
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        text = f"{name}<<{delimiter}\n{value}\n{delimiter}\n"
    else:
        text = f"{name}={value}\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def append_summary(markdown: str) -> bool:
    """Append Markdown to ``$GITHUB_STEP_SUMMARY``, keeping the file under its 1 MiB cap.

    A body that would overflow is cut at a line boundary with a note saying so.
    Returns False outside Actions (no ``GITHUB_STEP_SUMMARY``).
    """
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    try:
        used = os.path.getsize(path)
    except OSError:
        used = 0
    room = SUMMARY_LIMIT - used
    data = markdown if markdown.endswith("\n") else markdown + "\n"
    encoded = data.encode("utf-8")
    if len(encoded) > room:
        note = "\n\n_(summary truncated: GitHub caps a step summary at 1 MiB)_\n"
        keep = max(0, room - len(note.encode("utf-8")))
        cut = encoded[:keep].decode("utf-8", errors="ignore")
        cut = cut[: cut.rfind("\n") + 1] if "\n" in cut else ""
        data = cut + note if room > len(note.encode("utf-8")) else ""
    if data:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(data)
    return True
