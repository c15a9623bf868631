"""A self-contained HTML page: inline CSS, plots embedded as base64 PNG (uploadable as one artifact)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

__all__ = ["escape", "figure_png", "img", "page", "table"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#1f2328;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#1a7f37}.failed{color:#cf222e;font-weight:600}.inconclusive{color:#9a6700}.error{color:#8250df}
.badge{display:inline-block;padding:.15em .6em;border-radius:1em;color:#fff;font-weight:600}
.badge.passed{background:#1a7f37}.badge.failed{background:#cf222e}.badge.inconclusive{background:#9a6700}
.badge.error{background:#8250df}
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:.85em;color:#57606a}
"""


def escape(value: object) -> str:
    return html.escape("" if value is None else str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          classes: Sequence[Sequence[str]] | None = None) -> str:
    """An HTML table; every value is escaped; ``classes[i][j]`` styles a cell."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        tds = []
        for j, v in enumerate(row):
            cls = classes[i][j] if classes and i < len(classes) and j < len(classes[i]) else ""
            tds.append(f'<td class="{escape(cls)}">{escape(v)}</td>' if cls else f"<td>{escape(v)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure_png(fig: Any, *, dpi: int = 110) -> str:
    """A matplotlib figure as a base64 PNG string; closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def img(png_b64: str, caption: str) -> str:
    return (f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{png_b64}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def page(title: str, body: str) -> str:
    """A complete HTML document; ``body`` is trusted HTML built with the helpers above."""
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")
