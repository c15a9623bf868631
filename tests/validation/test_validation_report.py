"""Reports: JSON round-trips, Markdown puts failures first and fits a PR comment, HTML embeds plots."""

from __future__ import annotations

import json

from mlops_actions.report.markdown import GITHUB_COMMENT_LIMIT, table
from mlops_actions.report.validation import render_html, render_json, render_markdown
from mlops_actions.validation.results import CheckKind, CheckResult, ValidationResult, Verdict


def result(n_slices: int = 3) -> ValidationResult:
    checks = [
        CheckResult(
            name="accuracy_score",
            kind=CheckKind.METRIC,
            verdict=Verdict.PASSED,
            message="ok",
            metric="accuracy_score",
            candidate=0.93,
            baseline=0.91,
            threshold=">= 0.9",
        )
    ]
    checks += [
        CheckResult(
            name=f"s{i}: f1_score",
            kind=CheckKind.SLICE,
            verdict=Verdict.FAILED if i == n_slices - 1 else Verdict.PASSED,
            message=f"f1_score on slice s{i} | pipes",
            metric="f1_score",
            slice=f"s{i}",
            rows=40,
            candidate=0.7,
            baseline=0.8,
            threshold=">= 0.75",
        )
        for i in range(n_slices)
    ]
    return ValidationResult(
        model="churn",
        version="1.3.0",
        task="binary_classification",
        checks=tuple(checks),
        metrics={"accuracy_score": 0.93, "f1_score": 0.9, "roc_auc": float("nan")},
        baseline_version="1.2.0",
        baseline_metrics={"accuracy_score": 0.91},
        slice_metrics={f"s{i}": {"f1_score": 0.7} for i in range(n_slices)},
        slice_rows={f"s{i}": 40 for i in range(n_slices)},
        confusion_matrix=((50, 3), (4, 43)),
        labels=("0", "1"),
        latency={"batch_seconds": 0.01},
        rows=100,
        data_path="/x/test.csv",
        curves={
            "calibration": {
                "mean_predicted": [0.1, 0.5, 0.9],
                "observed": [0.15, 0.45, 0.92],
                "count": [30.0, 40.0, 30.0],
            }
        },
    )


def test_json_is_valid_and_complete() -> None:
    data = json.loads(render_json(result()))
    assert data["verdict"] == "failed" and data["counts"]["failed"] == 1
    assert data["metrics"]["roc_auc"] is None  # NaN is not JSON
    assert data["checks"][0]["delta"] == 0.93 - 0.91


def test_markdown_failures_first_table_and_escaping() -> None:
    md = render_markdown(result())
    assert md.startswith("## ❌ Validation of `churn` 1.3.0: **failed**")
    assert md.index("Needs attention") < md.index(
        "| metric | candidate | baseline | delta | threshold | verdict |"
    )
    table_part = md.split("### Thresholds")[1]
    assert table_part.index("s2: f1_score") < table_part.index("accuracy_score")  # failed rows first
    assert "- ❌ **s2: f1_score** (failed): f1_score on slice s2 | pipes" in md


def test_markdown_fits_a_github_comment() -> None:
    md = render_markdown(result(n_slices=3000))
    assert len(md) < GITHUB_COMMENT_LIMIT
    assert "truncated" in md and "Needs attention" in md


def test_html_has_plots_and_escapes() -> None:
    page = render_html(result())
    assert page.count("data:image/png;base64,") == 3  # confusion matrix, calibration, per-slice bars
    assert "<script" not in page
    assert table(["a|b"], [["x"]]).splitlines()[0] == "| a\\|b |"


def test_html_helpers_render_from_autoescaped_templates() -> None:
    # issue 17: Jinja2 templates with autoescape; a value never reaches the page as markup
    from mlops_actions.report import html as report_html

    assert report_html._ENV.autoescape is True
    page = report_html.page("<b>t</b>", report_html.table(["<h>"], [["<script>x</script>", None]],
                                                          [["failed\" onload=\"x"]]))
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert '<td class="failed&quot; onload=&quot;x">' in page and "<td></td>" in page
    assert page.startswith("<!doctype html>\n") and "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
