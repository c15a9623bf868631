"""Small Markdown helpers shared by PR comments, job summaries and CLI output."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["GITHUB_COMMENT_LIMIT", "cell", "fit", "table"]

#: GitHub rejects issue/PR comments longer than this many characters
GITHUB_COMMENT_LIMIT = 65_536


def cell(value: object) -> str:
    """Text safe inside a table cell: pipes escaped, newlines folded."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` items are "l", "r" or "c"."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    sep = [marks.get(a, "---") for a in (align or ["l"] * len(headers))]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fit(text: str, limit: int = GITHUB_COMMENT_LIMIT,
        note: str = "\n\n_…truncated: the full report is in the workflow artifacts._\n") -> str:
    """``text`` cut at a line boundary so that it (with ``note``) stays under ``limit`` characters."""
    if len(text) < limit:
        return text
    budget = limit - len(note) - 1
    cut = text.rfind("\n", 0, budget)
    return text[: cut if cut > 0 else budget] + note
