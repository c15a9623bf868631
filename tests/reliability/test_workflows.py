"""Issue 9 item 6: the workflow files, parsed (not grepped), hold the hardening rules.

* every ``uses:`` (steps, reusable-workflow jobs, the composite action) is a local ``./``
  path or pinned to a full 40-hex commit SHA;
* every workflow has top-level ``permissions: {}`` (or read-only), every job sets its own,
  writes come only from the scopes its workflow needs (an allow-list below, one reason
  each), ``write-all`` nowhere, and a job calling a reusable workflow grants at least what
  the callee's jobs ask for (else GitHub refuses the run);
* no untrusted expression (``github.event.*``, ``inputs.*``, ``github.head_ref``, ...) and,
  stricter, no ``${{ }}`` at all appears inside a ``run:`` script, in workflows or in the
  composite action: values reach scripts only through ``env:``;
* ``zizmor --offline`` reports 0 findings.

The figures (workflows, ``uses:`` checked, ``run:`` blocks checked, zizmor findings) go to the
docs/reliability.md figures table through :func:`tests.reliability.figures.record`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.github.test_github_workflows import ACTION, ROOT, WORKFLOWS, _tool
from tests.reliability.figures import record

FULL_SHA = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
# Contexts an outsider controls (GitHub's "untrusted input" list plus dispatch/call inputs).
UNTRUSTED = re.compile(
    r"github\.event\.|github\.head_ref|inputs\.|github\.event_path|steps\.[\w-]+\.outputs|"
    r"needs\.[\w-]+\.outputs|env\.|matrix\.")
READ_ONLY = {"read", "none"}
# Write scopes each workflow may grant, and why. Anything else is a test failure.
ALLOWED_WRITES: dict[str, dict[str, str]] = {
    "pr.yml": {"pull-requests": "sticky PR comments", "statuses": "commit status per check"},
    "validate.yml": {"pull-requests": "sticky PR comments", "statuses": "commit status per check"},
    "review.yml": {"statuses": "re-run the policy status on a review",
                   "pull-requests": "update the sticky policy comment"},
    "apply.yml": {"deployments": "GitHub Deployment of the apply",
                  "pull-requests": "comment on the merged PR"},
    "deploy.yml": {"deployments": "GitHub Deployment of the apply",
                   "pull-requests": "comment on the merged PR"},
    "promote.yml": {"contents": "push the promotion branch", "pull-requests": "open the PR"},
    "conclude.yml": {"contents": "push the branch pinning the A/B winner", "pull-requests": "open the PR"},
    "rollback.yml": {"contents": "push the rollback branch", "pull-requests": "open the PR",
                     "issues": "label the PR (labels are issue API)"},
    "monitor.yml": {"issues": "the github_issue alert sink; label the rollback PR",
                    "contents": "push the rollback branch (rollback job)",
                    "pull-requests": "open the rollback PR (rollback job)"},
    "monitor-schedule.yml": {"issues": "the github_issue alert sink; label the rollback PR",
                             "contents": "caps monitor.yml's rollback job",
                             "pull-requests": "caps monitor.yml's rollback job"},
    "pr-fork.yml": {"pull-requests": "the policy comment of a fork's PR",
                    "statuses": "the policy status of a fork's PR"},
}


def load(path: Path) -> dict[str, Any]:
    """YAML 1.1's ``on`` would become True with the safe loader; BaseLoader keeps strings."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


@dataclass(frozen=True)
class Uses:
    file: str
    where: str
    ref: str


@dataclass(frozen=True)
class Run:
    file: str
    where: str
    script: str


def steps_of(path: Path, data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    if path == ACTION:
        for i, step in enumerate((data.get("runs") or {}).get("steps") or []):
            yield f"runs.steps[{i}]", step
        return
    for name, job in (data.get("jobs") or {}).items():
        for i, step in enumerate(job.get("steps") or []):
            yield f"jobs.{name}.steps[{i}]", step


def all_uses(path: Path, data: dict[str, Any]) -> list[Uses]:
    found = [Uses(path.name, where, str(step["uses"])) for where, step in steps_of(path, data)
             if "uses" in step]
    found += [Uses(path.name, f"jobs.{name}", str(job["uses"]))
              for name, job in (data.get("jobs") or {}).items() if "uses" in job]
    return found


def all_runs(path: Path, data: dict[str, Any]) -> list[Run]:
    return [Run(path.name, where, str(step["run"])) for where, step in steps_of(path, data)
            if "run" in step]


def permission_problems(scopes: Any, where: str, allowed: dict[str, str]) -> list[str]:
    """What is wrong with one ``permissions:`` value (top level or a job's)."""
    if isinstance(scopes, str):
        return [] if scopes == "read-all" and where == "top" else [f"{where}: permissions: {scopes}"]
    if not isinstance(scopes, dict):
        return [f"{where}: permissions is {type(scopes).__name__}"]
    problems = []
    for scope, level in scopes.items():
        if level in READ_ONLY:
            continue
        if where == "top":
            problems.append(f"top-level grants {scope}: {level} (writes belong to jobs)")
        elif scope not in allowed:
            problems.append(f"{where} grants {scope}: {level}, not in the allow-list of this workflow")
    return problems


def callee_writes(uses: str) -> set[str]:
    """Write scopes the jobs of a local reusable workflow ask for."""
    data = load(ROOT / uses.removeprefix("./"))
    return {scope for job in data["jobs"].values()
            for scope, level in (job.get("permissions") or {}).items() if level == "write"}


def test_workflows_are_pinned_least_privilege_and_free_of_expressions_in_run() -> None:
    uses_checked, runs_checked, jobs_checked, problems = 0, 0, 0, []
    files = [*WORKFLOWS, ACTION]
    for path in files:
        data = load(path)
        for use in all_uses(path, data):
            uses_checked += 1
            if use.ref.startswith("./"):
                continue
            if not FULL_SHA.match(use.ref.split("#")[0].strip()):
                problems.append(f"{use.file} {use.where}: uses {use.ref} is not pinned to a full SHA")
        for run in all_runs(path, data):
            runs_checked += 1
            for expr in EXPRESSION.findall(run.script):
                kind = "untrusted expression" if UNTRUSTED.search(expr) else "expression"
                problems.append(f"{run.file} {run.where}: {kind} ${{{{{expr.strip()}}}}} inside run: "
                                "(pass it through env:)")
        if path == ACTION:
            continue
        if "permissions" not in data:
            problems.append(f"{path.name}: no top-level permissions (the default token can write)")
        else:
            problems += [f"{path.name}: {p}" for p in permission_problems(data["permissions"], "top", {})]
        allowed = ALLOWED_WRITES.get(path.name, {})
        for name, job in data["jobs"].items():
            jobs_checked += 1
            if "permissions" not in job:
                problems.append(f"{path.name} job {name}: no permissions (inherits the top level)")
                continue
            problems += [f"{path.name}: {p}"
                         for p in permission_problems(job["permissions"], f"job {name}", allowed)]
            if str(job.get("uses", "")).startswith("./"):
                granted = {s for s, lv in job["permissions"].items() if lv == "write"}
                missing = callee_writes(job["uses"]) - granted
                if missing:
                    problems.append(f"{path.name} job {name}: calls {job['uses']} whose jobs need "
                                    f"{sorted(missing)}: write, not granted here")
    proc = subprocess.run([_tool("zizmor"), "--offline", "--format", "json", ".github", "action.yml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    findings = json.loads(proc.stdout or "[]")
    problems += [f"zizmor: {f.get('ident')}: {f.get('desc')}" for f in findings]
    assert proc.returncode == 0 or findings, proc.stderr
    record("workflows-hardening", "workflows",
           f"{len(files)} workflow files: {uses_checked} `uses:` pinned or local, {jobs_checked} jobs with "
           f"least-privilege permissions, {runs_checked} `run:` blocks with no `${{{{ }}}}`, "
           f"zizmor findings {len(findings)}",
           files=len(files), uses_checked=uses_checked, jobs_checked=jobs_checked,
           run_blocks_checked=runs_checked, zizmor_findings=len(findings), problems=len(problems))
    assert not problems, "\n".join(problems)
    assert uses_checked >= 20 and runs_checked >= 20 and jobs_checked >= 10


def test_the_checks_catch_what_they_should(tmp_path: Path) -> None:
    """The rules above fail on a workflow that breaks each of them."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\npermissions: write-all\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    permissions: {contents: write, packages: write}\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\"\n", encoding="utf-8")
    data = load(bad)
    uses = all_uses(bad, data)
    assert [u.ref for u in uses] == ["actions/checkout@v4"] and not FULL_SHA.match(uses[0].ref)
    (run,) = all_runs(bad, data)
    (expr,) = EXPRESSION.findall(run.script)
    assert UNTRUSTED.search(expr)
    assert permission_problems(data["permissions"], "top", {}) == ["top: permissions: write-all"]
    job_problems = permission_problems(data["jobs"]["a"]["permissions"], "job a", {"contents": "push"})
    assert job_problems == ["job a grants packages: write, not in the allow-list of this workflow"]
    assert FULL_SHA.match("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683")
    assert not FULL_SHA.match("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af68")
