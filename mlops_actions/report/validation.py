"""The validation report in three forms: JSON (machines), Markdown (PR comment and job
summary), HTML with plots (workflow artifact)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from mlops_actions.report import html, markdown, plots
from mlops_actions.validation.results import CheckKind, CheckResult, ValidationResult, Verdict

if TYPE_CHECKING:
    from mlops_actions.stats.paired import PairedDelta

__all__ = ["render_html", "render_json", "render_markdown"]

_NA = "n/a"
_ORDER = (Verdict.FAILED, Verdict.ERROR, Verdict.INCONCLUSIVE, Verdict.PASSED)


_COUNTS = {"example_count", "true_positives", "false_positives", "true_negatives", "false_negatives"}


def _num(x: float | None, digits: int = 4, metric: str | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return _NA
    if metric in _COUNTS and float(x).is_integer():
        return f"{int(x)}"
    return f"{x:.{digits}f}"


def _paired(d: PairedDelta | None) -> str:
    """`` [+0.0050, +0.0350] p=0.012``: the interval and p-value of a paired change, or ''."""
    if d is None:
        return ""
    text = ""
    if d.ci is not None:
        text += f" [{d.ci[0]:+.4f}, {d.ci[1]:+.4f}]"
    if d.p_value is not None:
        text += f" {_p(d.p_value)}"
    return text


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _delta(c: CheckResult) -> str:
    d = c.delta
    return _NA if d is None else f"{d:+.4f}{_paired(c.paired)}"


def _legend(result: ValidationResult) -> str | None:
    """What the bracketed figures are, once per report (only when some delta has them)."""
    deltas = [*result.deltas.values(), *(d for m in result.slice_deltas.values() for d in m.values())]
    if not any(d.ci is not None for d in deltas):
        return None
    confidence = next(d.confidence for d in deltas if d.ci is not None)
    return (f"Delta = candidate - baseline on the same test rows, with its {confidence:.0%} CI in "
            "brackets and p-value: McNemar mid-p test and Agresti-Min CI for accuracy, DeLong for ROC "
            "AUC, paired bootstrap (fixed seed) for the other metrics; none for counts.")


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def render_json(result: ValidationResult) -> str:
    """Stable JSON (sorted keys); non-finite numbers become null."""
    return json.dumps(_jsonable(result.to_dict()), indent=2, sort_keys=True) + "\n"


def _headline(result: ValidationResult) -> str:
    v = result.verdict
    counts = ", ".join(f"{len(result.by_verdict(x))} {x.value}" for x in _ORDER if result.by_verdict(x))
    base = (f"compared with baseline **{result.baseline_version}**" if result.baseline_version
            else "no baseline")
    return (f"## {v.icon} Validation of `{result.model}` {result.version}: **{v.value}**\n\n"
            f"{counts or 'no checks declared'}; {base}; {result.rows} test rows from "
            f"`{result.data_path.rsplit('/', 1)[-1]}`.")


def render_markdown(result: ValidationResult, limit: int = markdown.GITHUB_COMMENT_LIMIT) -> str:
    """Failing checks first, then the threshold table, behavioural tests, all metrics, latency."""
    parts = [_headline(result)]
    problems = [c for v in _ORDER[:3] for c in result.by_verdict(v)]
    if problems:
        parts.append("### Needs attention\n\n" + "\n".join(
            f"- {c.verdict.icon} **{markdown.cell(c.name)}** ({c.verdict.value}): {c.message}"
            for c in problems))
    thresholded = [c for c in result.checks if c.kind in (CheckKind.METRIC, CheckKind.SLICE) and c.metric]
    if thresholded:
        rows = [[c.name, _num(c.candidate), _num(c.baseline), _delta(c), c.threshold or "",
                 f"{c.verdict.icon} {c.verdict.value}"]
                for c in sorted(thresholded, key=lambda c: -c.verdict.rank)]
        parts.append("### Thresholds\n\n" + markdown.table(
            ["metric", "candidate", "baseline", "delta", "threshold", "verdict"], rows,
            ["l", "r", "r", "r", "l", "l"]))
        legend = _legend(result)
        if legend and any(c.paired is not None for c in thresholded):
            parts[-1] += "\n\n" + legend
    behavioural = [c for c in result.checks if c.kind is CheckKind.BEHAVIOURAL]
    if behavioural:
        parts.append("### Behavioural tests\n\n" + markdown.table(
            ["test", "verdict", "detail"],
            [[c.name, f"{c.verdict.icon} {c.verdict.value}", c.message.split("; see ")[0]]
             for c in sorted(behavioural, key=lambda c: -c.verdict.rank)]))
    metric_rows = []
    for name, value in result.metrics.items():
        b = result.baseline_metrics.get(name) if result.baseline_metrics else None
        d = None if value is None or b is None else value - b
        delta = _NA if d is None else (f"{d:+.0f}" if name in _COUNTS else
                                       f"{d:+.4f}{_paired(result.deltas.get(name))}")
        metric_rows.append([name, _num(value, metric=name), _num(b, metric=name), delta])
    legend = _legend(result) if result.deltas else None
    parts.append("<details><summary>All metrics (whole test set)</summary>\n\n" + markdown.table(
        ["metric", "candidate", "baseline", "delta"], metric_rows, ["l", "r", "r", "r"])
        + (f"\n\n{legend}" if legend else "") + "\n\n</details>")
    if result.slice_metrics:
        slice_rows = []
        for s, m in result.slice_metrics.items():
            key = next((k for k in ("f1_score", "accuracy_score", "root_mean_squared_error") if k in m), None)
            slice_rows.append([s, result.slice_rows.get(s, 0), key or "", _num(m.get(key) if key else None)])
        parts.append("<details><summary>Slices</summary>\n\n" + markdown.table(
            ["slice", "rows", "metric", "candidate"], slice_rows, ["l", "r", "l", "r"]) + "\n\n</details>")
    lat = result.latency
    if lat:
        text = f"Latency: batch {lat.get('batch_ms_per_row', 0.0):.4f} ms/row ({result.rows} rows in " \
               f"{lat.get('batch_seconds', 0.0):.3f} s)"
        if "row_p95_ms" in lat:
            text += f"; single-row p50 {lat['row_p50_ms']:.2f} ms, p95 {lat['row_p95_ms']:.2f} ms"
        parts.append(text + ".")
    if result.run_id:
        parts.append(f"MLflow evaluation run: `{result.run_id}`.")
    return markdown.fit("\n\n".join(parts) + "\n", limit)


def render_html(result: ValidationResult) -> str:
    """A self-contained page: summary, checks, metrics, confusion matrix, calibration or
    residuals, per-slice bars."""
    v = result.verdict
    body = [f"<h1>Validation of {html.escape(result.model)} {html.escape(result.version)} "
            f'<span class="badge {v.value}">{v.value}</span></h1>',
            f"<p>{result.rows} test rows; baseline: {html.escape(result.baseline_version or 'none')}; "
            f"data: {html.escape(result.data_path)}</p>"]
    checks = sorted(result.checks, key=lambda c: -c.verdict.rank)
    if checks:
        body.append("<h2>Checks</h2>")
        body.append(html.table(
            ["check", "verdict", "candidate", "baseline", "delta", "threshold", "detail"],
            [[c.name, c.verdict.value, _num(c.candidate), _num(c.baseline), _delta(c), c.threshold or "",
              c.message] for c in checks],
            [["", c.verdict.value, "num", "num", "num", "", ""] for c in checks]))
    body.append("<h2>Metrics</h2>")
    names = list(result.metrics)
    body.append(html.table(
        ["metric", "candidate", "baseline"],
        [[n, _num(result.metrics[n], metric=n), _num(result.baseline_metrics.get(n), metric=n)]
         for n in names],
        [["", "num", "num"] for _ in names]))
    figures = []
    if result.confusion_matrix is not None and len(result.labels) <= 30:
        figures.append(html.img(plots.confusion_matrix(
            result.confusion_matrix, result.labels, f"Confusion matrix, {result.version}"),
            "confusion matrix"))
    cal = result.curves.get("calibration")
    if cal:
        figures.append(html.img(plots.calibration(cal["mean_predicted"], cal["observed"],
                                                  f"Calibration, {result.version}"), "calibration"))
    res = result.curves.get("residuals")
    if res:
        figures.append(html.img(plots.residuals(res["predicted"], res["residual"],
                                                f"Residuals, {result.version}"), "residuals"))
    if result.slice_metrics:
        key = "root_mean_squared_error" if result.task == "regression" else "f1_score"
        names = list(result.slice_metrics)
        verdicts = []
        for s in names:
            vs = [c.verdict for c in result.checks if c.slice == s]
            verdicts.append(max(vs, key=lambda x: x.rank).value if vs else "")
        figures.append(html.img(plots.bars(
            [f"{s} (n={result.slice_rows.get(s, 0)})" for s in names],
            [result.slice_metrics[s].get(key) for s in names], f"{key} per slice",
            reference=result.metrics.get(key), verdicts=verdicts), "per-slice " + key))
    if figures:
        body.append("<h2>Plots</h2>" + "".join(figures))
    if result.latency:
        body.append("<h2>Latency</h2>" + html.table(
            ["figure", "value"], [[k, f"{val:.4f}"] for k, val in result.latency.items()]))
    return html.page(f"Validation {result.model} {result.version}", "\n".join(body))
