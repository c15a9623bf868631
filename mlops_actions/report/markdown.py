"""Small Markdown helpers shared by PR comments, job summaries and CLI output."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["GITHUB_COMMENT_LIMIT", "cell", "fit", "inert", "table"]

#: GitHub rejects issue/PR comments longer than this many characters
GITHUB_COMMENT_LIMIT = 65_536


def cell(value: object) -> str:
    """Text safe inside a table cell: pipes escaped, newlines folded."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]()!#~|"})
_LINK_SPECIAL = str.maketrans({c: "\\" + c for c in "[]|"})


def inert(value: object, *, keep_code: bool = False) -> str:
    """Text from outside (a commit subject, a dispatch input, a freeze reason from a PR) made
    inert in a comment: no HTML, links, images, mentions or table breaks, one line.

    HTML becomes entities, ``@`` becomes ``&#64;`` (no one gets pinged), newlines become
    spaces and Markdown punctuation is backslash-escaped; ``keep_code`` escapes only what
    makes links, images and table cells (``[``, ``]``, ``|``), for messages of our own that
    quote names in backticks around an outside value.
    """
    table = _LINK_SPECIAL if keep_code else _MARKDOWN_SPECIAL
    text = " ".join(("" if value is None else str(value)).splitlines()).translate(table)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("@", "&#64;")


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
