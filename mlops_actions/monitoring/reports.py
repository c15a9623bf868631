"""Monitoring reports: Markdown for PR comments and job summaries, HTML with plots for artifacts.

Markdown is compact: one table row per model, then each unhealthy model's
worst offenders first (at most ``max_rows``). HTML adds, per model, the
distributions of the worst features (reference vs current) and metrics over
time (accuracy, p95 latency, error rate), as base64 PNGs drawn with matplotlib
(Agg backend: no display needed).
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import jinja2
import numpy as np
import pandas as pd

from mlops_actions.monitoring.health import Finding, ModelHealth, VariantHealth
from mlops_actions.monitoring.verdict import Verdict, worst
from mlops_actions.stats.interface import Metric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlops_actions.monitoring.ab import ABReport

__all__ = ["ab_html", "ab_markdown", "ab_plot", "ci_text_plot", "render_html", "render_markdown"]

ICON = {Verdict.PASSED: "✅", Verdict.FAILED: "❌", Verdict.INCONCLUSIVE: "⚪", Verdict.ERROR: "⚠️"}


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.4g}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _part_cell(h: VariantHealth, part: str) -> str:
    if part == "performance":
        p = h.performance
        key = next((k for k in ("accuracy", "f1", "rmse", "mae") if p.metrics.get(k) is not None), None)
        text = f"{key} {_fmt(p.metrics[key])}" if key else f"n={p.n_predictions}"
        return f"{ICON[p.verdict]} {text}"
    if part == "drift":
        if h.drift is None:
            return "⚪ not tested"
        return f"{ICON[h.drift.verdict]} {len(h.drift.drifted)}/{len(h.drift.tested)} drifted"
    if part == "prediction":
        if h.prediction_drift is None:
            return "⚪ no baseline"
        pd_ = h.prediction_drift
        return f"{ICON[pd_.verdict]} {pd_.method} {_fmt(pd_.statistic)}"
    if h.quality is None:
        return "⚪ not tested"
    return f"{ICON[h.quality.verdict]} {len(h.quality.problems)} problem(s)"


def _cell(h: ModelHealth, part: str) -> str:
    """The main table's cell; with several variants, one entry per variant (checks run per variant)."""
    if h.variants and part != "performance":
        return " · ".join(f"{name}: {_part_cell(v, part)}" for name, v in h.variants.items())
    return _part_cell(VariantHealth(h.performance, h.drift, h.prediction_drift, h.quality), part)


def _name(f: Finding) -> str:
    return f"{f.name} @{f.variant}" if f.variant else f.name


def render_markdown(healths: Sequence[ModelHealth], *, environment: str = "", max_rows: int = 10,
                    title: str | None = None) -> str:
    overall = worst(h.verdict for h in healths) if healths else Verdict.INCONCLUSIVE
    word = {Verdict.PASSED: "healthy", Verdict.FAILED: "unhealthy", Verdict.INCONCLUSIVE: "inconclusive",
            Verdict.ERROR: "errors"}[overall]
    where = f": {environment}" if environment else ""
    lines = [f"### {title or 'Monitoring'}{where} — {ICON[overall]} {word}", "",
             "| model | version | verdict | rows (labelled) | performance | data drift "
             "| prediction drift | quality |", "|---|---|---|---|---|---|---|---|"]
    for h in sorted(healths, key=lambda h: (h.verdict is not Verdict.FAILED, h.model)):
        p = h.performance
        lines.append(f"| {h.model} | {h.version or '-'} | {ICON[h.verdict]} {h.verdict.value} | "
                     f"{p.n_predictions} ({p.n_labelled}) | {_cell(h, 'performance')} | "
                     f"{_cell(h, 'drift')} | {_cell(h, 'prediction')} | {_cell(h, 'quality')} |")
    empty = [h for h in healths if h.no_rows]
    if empty:
        names = ", ".join(f"`{h.model}` {h.version or ''}".strip() for h in empty)
        lines += ["", f"> [!WARNING]\n> No predictions of {names} in the window: nothing was checked. "
                  "Is the gateway serving the model and logging to this prediction store?"]
    for h in healths:
        bad = [f for f in h.findings() if f.verdict is not Verdict.PASSED]
        if not bad and not h.notes:
            continue
        lines += ["", f"**{h.model} {h.version or ''}** — worst first:", ""]
        if bad:
            lines += ["| check | name | verdict | value | limit | detail |", "|---|---|---|---|---|---|"]
            for f in bad[:max_rows]:
                lines.append(f"| {f.kind} | `{_md_escape(_name(f))}` | {ICON[f.verdict]} {f.verdict.value} | "
                             f"{_fmt(f.value)} | {_fmt(f.limit)} | {_md_escape(f.message)} |")
            if len(bad) > max_rows:
                lines.append(f"\n… and {len(bad) - max_rows} more (see the HTML report or --json)")
        lines += [f"- {n}" for n in h.notes]
    for h in healths:
        if h.variants:
            lines += ["", f"**{h.model}** by variant (checks and drift per variant):", "",
                      "| variant | verdict | rows (labelled) | accuracy | f1 | rmse | latency p95 ms "
                      "| error rate | data drift | prediction drift | quality |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            for name, v in h.variants.items():
                r = v.performance
                m = r.metrics
                cells = [_fmt(m.get(k)) for k in ("accuracy", "f1", "rmse", "latency_p95_ms", "error_rate")]
                lines.append(f"| {name} | {ICON[v.verdict]} {v.verdict.value} | {r.n_predictions} "
                             f"({r.n_labelled}) | {' | '.join(cells)} | {_part_cell(v, 'drift')} | "
                             f"{_part_cell(v, 'prediction')} | {_part_cell(v, 'quality')} |")
    for h in healths:
        if h.ab is not None:
            lines += ["", *ab_markdown(h.ab)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- A/B test


def _ab_value(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.1%}" if Metric(metric).is_proportion else f"{v:.4g} ms"


def _ab_ci(metric: str, ci: tuple[float, float] | None) -> str:
    return "-" if ci is None else f"[{_ab_value(metric, ci[0])}, {_ab_value(metric, ci[1])}]"


def _ab_rows(r: ABReport) -> list[list[str]]:
    """One row per metric and variant: role, variant, version, usable rows, value, CI."""
    out = []
    roles = {c.metric.value: "primary" for c in r.comparison.primary}
    roles.update({c.metric.value: "guardrail" for c in r.comparison.guardrails})
    for metric, role in roles.items():
        for v in (r.a, r.b):
            f = v.metrics[metric]
            out.append([metric, role, v.name, v.version, str(f.n), _ab_value(metric, f.value),
                        _ab_ci(metric, f.ci)])
    return out


def ci_text_plot(r: ABReport, width: int = 40) -> list[str]:
    """Each variant's interval of each primary metric on one shared axis, as text (a PR comment
    cannot show an image): ``[`` and ``]`` the bounds, ``●`` the value."""
    lines = []
    for c in r.comparison.primary:
        metric = c.metric.value
        figs = [(v.name, v.version, v.metrics[metric]) for v in (r.a, r.b)]
        bounds = [x for _, _, f in figs if f.value is not None
                  for x in (f.ci if f.ci is not None else (f.value, f.value))]
        if not bounds:
            continue
        lo, hi = min(bounds), max(bounds)
        span = (hi - lo) or 1.0

        def col(x: float, lo: float = lo, span: float = span) -> int:
            return round((x - lo) / span * (width - 1))

        lines.append(f"{metric}  {_ab_value(metric, lo)} … {_ab_value(metric, hi)}")
        for name, version, f in figs:
            row = [" "] * width
            if f.value is not None:
                if f.ci is not None:
                    a, b = col(f.ci[0]), col(f.ci[1])
                    for i in range(a, b + 1):
                        row[i] = "─"
                    row[a], row[b] = "[", "]"
                row[col(f.value)] = "●"
            lines.append(f"  {name} {version:<10} {''.join(row)}  {_ab_value(metric, f.value)} "
                         f"{_ab_ci(metric, f.ci)}")
    return lines


def ab_markdown(r: ABReport) -> list[str]:
    """The A/B section: the sentence first, then figures, guardrails, sample size, method."""
    icon = ICON[r.verdict]
    winner = (f"**winner: {r.winner.upper()} ({r.winner_version})**" if r.winner
              else f"no winner yet ({r.reason})")
    lines = [f"**{r.model}** A/B test — {icon} {winner}", "", f"> {r.sentence()}", "",
             "| metric | role | variant | version | usable rows | value | CI |",
             "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in _ab_rows(r)]
    plot = ci_text_plot(r)
    if plot:
        lines += ["", f"Per-variant {1 - r.alpha:.0%} intervals:", "", "```text", *plot, "```"]
    guards = [f for f in r.findings(None) if f.name.startswith("guardrail:")]
    if guards:
        lines += [""] + [f"- {ICON[f.verdict]} {_md_escape(f.message)}" for f in guards]
    lines += [f"- {note}" for note in _ab_notes(r)]
    return lines


def _ab_notes(r: ABReport) -> list[str]:
    """The sample size of each primary metric, and the method: under the A/B table (both formats)."""
    notes = []
    for s in r.sample_size:
        if s.per_variant:
            what = ("the minimum detectable effect" if s.source == "minimum_detectable_effect"
                    else "the observed difference")
            still = s.still_needed or {}
            notes.append(f"sample size for {s.metric} ({what}, {_ab_effect(s.metric, s.effect)}): "
                         f"{s.per_variant['a']:,} rows for A and {s.per_variant['b']:,} for B; still needed: "
                         f"A {still.get('a', 0):,}, B {still.get('b', 0):,}")
        elif s.note:
            notes.append(f"sample size for {s.metric}: {s.note}")
    mode = ("sequential (mSPRT, always-valid: safe to look at every run)" if r.sequential
            else "fixed horizon (valid for one look at the planned sample size)")
    notes.append(f"method: {mode}; alpha {r.alpha:g}; primary metrics corrected together with "
                 f"{r.correction} (intervals at {r.ci_level:.3g}); guardrails each at alpha, not "
                 "corrected; traffic split: chi-square, mismatch below p = 0.001")
    return notes


def _ab_effect(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 100:+.1f} points" if Metric(metric).is_proportion else f"{v:+.3g} ms"


def error_bars(value: float, ci: tuple[float, float] | None, scale: float) -> list[list[float]] | None:
    """matplotlib's ``xerr`` for ``value`` and its interval: the distances down and up, never
    negative (a Wilson interval of 0 or 1 successes can end a rounding error inside the value,
    which matplotlib refuses)."""
    if ci is None:
        return None
    return [[max(0.0, (value - ci[0]) * scale)], [max(0.0, (ci[1] - value) * scale)]]


def ab_plot(r: ABReport) -> str:
    """Per-variant value and interval of every metric of the test, one panel each (base64 PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [c.metric.value for c in (*r.comparison.primary, *r.comparison.guardrails)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 2.4), squeeze=False)
    colours = {"A": "#4c72b0", "B": "#dd8452"}
    for ax, metric in zip(axes.flat, metrics, strict=True):
        scale = 100.0 if Metric(metric).is_proportion else 1.0
        for y, v in enumerate((r.a, r.b)):
            f = v.metrics[metric]
            if f.value is None:
                continue
            err = error_bars(f.value, f.ci, scale)
            ax.errorbar([f.value * scale], [y], xerr=err, fmt="o", capsize=4, color=colours[v.name])
        ax.set_yticks([0, 1], [f"A {r.a.version}", f"B {r.b.version}"])
        ax.set_ylim(-0.6, 1.6)
        ax.set_title(f"{metric} ({'%' if scale == 100 else 'ms, median'})", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return _png(fig)


def _ab_context(r: ABReport) -> dict[str, Any]:
    """The A/B section for the ``ab.html`` template."""
    guards = [f for f in r.findings(None) if f.name.startswith("guardrail:")]
    notes = _ab_notes(r)
    return {"icon": ICON[r.verdict],
            "title": f"winner: {r.winner.upper()} ({r.winner_version})" if r.winner else "no winner",
            "sentence": r.sentence(),
            "table": _table(["metric", "role", "variant", "version", "usable rows", "value", "CI"],
                            _ab_rows(r)),
            "plot": ab_plot(r), "guards": [f"{ICON[f.verdict]} {f.message}" for f in guards], "notes": notes}


def ab_html(r: ABReport) -> str:
    """The A/B section of the HTML report (``monitoring/templates/ab.html``)."""
    return _templates().get_template("ab.html").render(ab=_ab_context(r))


# --------------------------------------------------------------------------- HTML


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _distribution_plot(h: ModelHealth, columns: list[str]) -> str | None:
    if h.reference is None or h.current is None or not columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    drift = {c.column: c for c in h.drift.columns} if h.drift else {}
    for ax, name in zip(axes.flat, columns, strict=False):
        prof = h.reference.columns[name]
        cur = h.current[name] if name in h.current.columns else pd.Series(dtype=float)
        if prof.kind == "numeric":
            cur_v = pd.to_numeric(cur, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            cur_v = cur_v[np.isfinite(cur_v)]
            both = np.concatenate([prof.values, cur_v]) if len(cur_v) else prof.values
            lo, hi = np.quantile(both, [0.005, 0.995]) if len(both) else (0.0, 1.0)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
            ax.hist(prof.values, bins=bins, density=True, alpha=0.5, label="reference", color="#4c72b0")
            if len(cur_v):
                ax.hist(cur_v, bins=bins, density=True, alpha=0.5, label="current", color="#dd8452")
        else:
            counts: Any = prof.counts if prof.counts is not None else []
            ref_share = pd.Series(counts, index=prof.values, dtype=float)
            ref_share = ref_share / ref_share.sum() if ref_share.sum() else ref_share
            cur_share = cur.dropna().astype(str).value_counts(normalize=True)
            top = (ref_share.add(cur_share, fill_value=0).sort_values(ascending=False).index[:12])
            x = np.arange(len(top))
            ax.bar(x - 0.2, ref_share.reindex(top).fillna(0).to_numpy(), 0.4, label="reference",
                   color="#4c72b0")
            ax.bar(x + 0.2, cur_share.reindex(top).fillna(0).to_numpy(), 0.4, label="current",
                   color="#dd8452")
            ax.set_xticks(x, [str(t)[:10] for t in top], rotation=45, ha="right", fontsize=8)
            ax.set_ylabel("share")
        c = drift.get(name)
        status = f"{c.method} {_fmt(c.statistic)}" + (" DRIFT" if c.drifted else "") if c else ""
        colour = "#c0392b" if c is not None and c.drifted else "black"
        ax.set_title(f"{name}\n{status}", fontsize=9, color=colour)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def _time_plot(h: ModelHealth, buckets: int = 20) -> str | None:
    rows = h.rows
    if rows is None or len(rows) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlops_actions.monitoring.performance import prediction_value

    ts = rows["timestamp"].to_numpy(dtype=float)
    edges = np.linspace(ts.min(), ts.max() + 1e-9, buckets + 1)
    idx = np.clip(np.searchsorted(edges, ts, "right") - 1, 0, buckets - 1)
    mids = pd.to_datetime((edges[:-1] + edges[1:]) / 2, unit="s")
    lat = rows["latency_ms"].to_numpy(dtype=float)
    err = rows["status"].to_numpy() >= 500
    preds = [prediction_value(o) for o in rows["output"]]
    acts = [prediction_value(a) for a in rows["actual"]]
    correct = np.array([np.nan if a is None or p is None else float(a == p) for a, p in zip(acts, preds,
                                                                                           strict=True)])
    p95 = [np.percentile(lat[idx == b], 95) if np.any(idx == b) else np.nan for b in range(buckets)]
    er = [err[idx == b].mean() if np.any(idx == b) else np.nan for b in range(buckets)]
    acc = [np.nanmean(correct[idx == b]) if np.any(~np.isnan(correct[idx == b])) else np.nan
           for b in range(buckets)]
    from matplotlib.dates import DateFormatter

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.0))
    checks = {c.metric: c for c in h.performance.checks}
    for ax, series, metric, label in ((axes[0], acc, "accuracy", "accuracy (labelled rows)"),
                                      (axes[1], p95, "latency_p95_ms", "latency p95 (ms)"),
                                      (axes[2], er, "error_rate", "error rate")):
        ax.plot(mids, series, marker="o", markersize=3)
        ax.set_title(label, fontsize=9)
        ax.xaxis.set_major_formatter(cast(Callable[[str], Any], DateFormatter)("%H:%M"))
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        check = checks.get(metric)
        if check is not None and check.bound is not None:
            ax.axhline(check.bound, color="#c0392b", linestyle="--", linewidth=1, label="limit")
        if check is not None and check.baseline is not None:
            ax.axhline(check.baseline, color="grey", linestyle=":", linewidth=1, label="baseline")
        if check is not None and (check.bound is not None or check.baseline is not None):
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


@functools.cache
def _templates() -> jinja2.Environment:
    """The report's Jinja2 templates (``monitoring/templates/``), autoescaped; values escaped as
    ``html.escape`` does, so pages read byte for byte as the f-string version did. Here, not in
    ``report/``: the report layer sits above monitoring (it shows stats, which read columnar files)."""
    import markupsafe

    def escaped(value: object) -> markupsafe.Markup:
        if isinstance(value, markupsafe.Markup):
            return value
        return markupsafe.Markup(html.escape("" if value is None else str(value)))  # noqa: S704 - escaped

    return jinja2.Environment(loader=jinja2.PackageLoader("mlops_actions.monitoring", "templates"),
                              autoescape=True, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined, finalize=escaped)


def _table(headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """A table for the template: every cell as text (escaped there)."""
    return {"headers": headers, "rows": [[str(c) for c in r] for r in rows]}


def _drift_table(drift: Any) -> dict[str, Any]:
    return _table(
        ["column", "kind", "method", "statistic", "threshold", "drifted", "PSI", "missing cur", "verdict"],
        [[c.column, c.kind, c.method or "-", _fmt(c.statistic), _fmt(c.threshold),
          {True: "yes", False: "no", None: "-"}[c.drifted], _fmt(c.psi),
          f"{c.missing_share_current:.1%}", c.verdict.value] for c in drift.worst_first()])


def render_html(healths: Sequence[ModelHealth], *, environment: str = "", max_plots: int = 9) -> str:
    """The monitoring report as one self-contained page, from the ``monitoring.html`` template
    (autoescaped: a column name or message never reaches the page as markup)."""
    models: list[dict[str, Any]] = []
    for h in healths:
        p = h.performance
        bad: list[Finding] = [f for f in h.findings() if f.verdict is not Verdict.PASSED]
        model: dict[str, Any] = {
            "model": h.model, "version": h.version or "", "verdict": f"{ICON[h.verdict]} {h.verdict.value}",
            "notes": list(h.notes),
            "findings": _table(["check", "name", "variant", "verdict", "value", "limit", "detail"],
                               [[f.kind, f.name, f.variant or "-", f.verdict.value, _fmt(f.value),
                                 _fmt(f.limit), f.message] for f in bad]) if bad else None,
            "performance": _table(["metric", "value"], [[k, _fmt(v)] for k, v in p.metrics.items()]),
            "variants": None, "variant_drifts": [], "time_plot": _time_plot(h), "drift": None,
            "distribution_plot": None, "ab": _ab_context(h.ab) if h.ab is not None else None,
        }
        if h.variants:
            keys = list(p.metrics)
            model["variants"] = _table(
                ["variant", "verdict", "rows", "labelled", *keys, "data drift", "prediction drift",
                 "quality"],
                [[n, v.verdict.value, v.performance.n_predictions, v.performance.n_labelled,
                  *[_fmt(v.performance.metrics.get(k)) for k in keys],
                  *[_part_cell(v, part) for part in ("drift", "prediction", "quality")]]
                 for n, v in h.variants.items()])
            model["variant_drifts"] = [
                {"name": n, "summary": v.drift.summary(), "table": _drift_table(v.drift)}
                for n, v in h.variants.items() if v.drift is not None]
        if h.drift is not None:
            model["drift"] = {"summary": h.drift.summary(), "table": _drift_table(h.drift)}
            cols = [c.column for c in h.drift.worst_first()
                    if h.reference is not None and c.column in h.reference.columns
                    and h.reference.columns[c.column].kind in ("numeric", "categorical")
                    and h.reference.columns[c.column].n > 0][:max_plots]
            model["distribution_plot"] = _distribution_plot(h, cols)
        models.append(model)
    summary = _table(["model", "version", "verdict", "rows", "labelled"],
                     [[h.model, h.version or "-", f"{ICON[h.verdict]} {h.verdict.value}",
                       h.performance.n_predictions, h.performance.n_labelled] for h in healths])
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
             "font-size:13px;text-align:left}th{background:#f3f3f3}img{max-width:100%}.note{color:#666}")
    return _templates().get_template("monitoring.html").render(
        style=style, environment=environment, summary=summary, models=models)  # ends with one newline
