"""The GitHub Actions runtime: annotations, outputs, step summary, masking.

Workflow commands are documented at
https://docs.github.com/actions/reference/workflow-commands-for-github-actions
"""

from __future__ import annotations

import os
import sys
from typing import Literal

from mlops_actions.errors import Location

__all__ = ["annotate", "escape_data", "escape_property", "in_actions"]

Level = Literal["error", "warning", "notice"]


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


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
    print(f"{head}::{escape_data(message)}", file=sys.stdout, flush=True)
