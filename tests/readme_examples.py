"""The README's shell and Python examples, by name, for the tests that run them.

Every fenced ``bash`` or ``python`` block in README.md is preceded by a marker
``<!-- example: NAME -->``; a test runs it through :func:`example`, and
``tests/test_readme.py`` checks that each named example is claimed by a test, so an
example nobody runs cannot be added.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKED = re.compile(r"<!-- example: ([a-z0-9-]+) -->\n```([a-z]+)\n(.*?)```", re.S)
FENCE = re.compile(r"^```([a-z]+)\n", re.M)
RUNNABLE = ("bash", "sh", "shell", "console", "python", "py")


def examples() -> dict[str, tuple[str, str]]:
    """name -> (language, text) of every marked block."""
    text = README.read_text(encoding="utf-8")
    found: dict[str, tuple[str, str]] = {}
    for name, language, body in MARKED.findall(text):
        assert name not in found, f"README: two examples are named {name}"
        found[name] = (language, body)
    return found


def unmarked_runnable_blocks() -> list[str]:
    """The first line of every shell or Python block with no marker before it."""
    text = README.read_text(encoding="utf-8")
    marked = {m.start(2) - 3 for m in MARKED.finditer(text)}
    return [text[m.end():].split("\n", 1)[0] for m in FENCE.finditer(text)
            if m.group(1) in RUNNABLE and m.start() not in marked]


def example(name: str, **substitute: str) -> str:
    """The example's text, with placeholders a reader replaces (OWNER, SHA, a port) replaced."""
    _, body = examples()[name]
    for placeholder, value in substitute.items():
        assert placeholder in body, f"README example {name} has no {placeholder}"
        body = body.replace(placeholder, value)
    return body
