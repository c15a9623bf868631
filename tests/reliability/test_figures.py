"""docs/reliability.md's figures table is generated from recorded figures, between its markers only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability import readme
from tests.reliability.figures import record


def test_record_then_rewrite_changes_only_the_marked_section(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_RELIABILITY_FIGURES", str(tmp_path / "figs"))
    record("b-check", "faults", "3 resets | 0 duplicates", resets=3)
    record("a-check", "crash", "30 SIGKILLs: 30/30 converged", kills=30)
    saved = json.loads((tmp_path / "figs" / "a-check.json").read_text())
    assert saved["numbers"] == {"kills": 30} and saved["area"] == "crash"

    doc = tmp_path / "README.md"
    doc.write_text(f"# T\n\nbefore\n{readme.BEGIN}\nold\n{readme.END}\nafter\n")
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "figs").glob("*.json"))]
    assert readme.rewrite(doc, records) is True
    text = doc.read_text()
    assert text.startswith("# T\n\nbefore\n") and text.endswith(f"{readme.END}\nafter\n")
    assert "old" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    # crash sorts before faults; a pipe inside a summary is escaped so the table holds
    assert rows[0].startswith("| crash | `a-check` | 30 SIGKILLs")
    assert rows[1] == "| faults | `b-check` | 3 resets \\| 0 duplicates |"
    assert readme.rewrite(doc, records) is False  # idempotent


def test_rewrite_refuses_a_readme_without_markers(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        readme.rewrite(doc, [])


def test_the_repositorys_readme_has_the_markers() -> None:
    text = (readme.REPO_ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert text.count(readme.BEGIN) == 1 and text.count(readme.END) == 1
