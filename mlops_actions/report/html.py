"""A self-contained HTML page: inline CSS, plots embedded as base64 PNG (uploadable as one artifact).

Rendered from Jinja2 templates shipped in ``report/templates/`` with autoescape on, rather than
by string concatenation: a value can only reach the page escaped, and the markup sits in one
file per piece. Values are escaped as ``html.escape`` does (the finalizer), so pages read the same.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import jinja2
import markupsafe

__all__ = ["escape", "figure_png", "img", "page", "render", "table"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mlops_actions.report", "templates"),
    autoescape=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
    finalize=lambda value: _escaped(value),
)


def _escaped(value: object) -> markupsafe.Markup:
    """Every ``{{ value }}`` of a template, escaped as ``html.escape`` does (``&#x27;`` for a
    quote, where markupsafe writes ``&#39;``), so the pages read byte for byte as before."""
    if isinstance(value, markupsafe.Markup):
        return value
    return markupsafe.Markup(escape(value))  # noqa: S704 - escaped on this line


def render(template: str, **context: Any) -> str:
    """A template of ``report/templates/`` rendered with ``context`` (autoescaped)."""
    return _ENV.get_template(template).render(**context)


def escape(value: object) -> str:
    return html.escape("" if value is None else str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          classes: Sequence[Sequence[str]] | None = None) -> str:
    """An HTML table; every value is escaped; ``classes[i][j]`` styles a cell."""
    styled = [[(classes[i][j] if classes and i < len(classes) and j < len(classes[i]) else "", v)
               for j, v in enumerate(row)] for i, row in enumerate(rows)]
    return _ENV.get_template("table.html").render(headers=headers, rows=styled)


def figure_png(fig: Any, *, dpi: int = 110) -> str:
    """A matplotlib figure as a base64 PNG string; closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def img(png_b64: str, caption: str) -> str:
    return _ENV.get_template("figure.html").render(png_b64=png_b64, caption=caption)


def page(title: str, body: str) -> str:
    """A complete HTML document; ``body`` is trusted HTML built with the helpers above."""
    trusted = markupsafe.Markup(body)  # noqa: S704 - built with the helpers above, values escaped
    return _ENV.get_template("page.html").render(title=title, body=trusted)
