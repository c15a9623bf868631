"""No job that runs code from a PR head holds a write permission or a secret.

A job runs PR code when a step executes something from a checkout of the PR (``pip
install .``, ``python -m ...``, a script of the repository) in a workflow a PR triggers
(``pull_request``, ``pull_request_review``, and the reusable workflows they call). Running
the toolkit's own CLI (installed from a trusted checkout) with the PR's files as its
working directory is reading data, not running PR code. ``workflow_run`` jobs must not
check out a PR's files anywhere they execute.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.workflows.harness import ROOT, load_yaml

WORKFLOWS = ROOT / ".github" / "workflows"
PR_TRIGGERS = {"pull_request", "pull_request_review", "pull_request_target"}
# a command that executes what lies in its working directory
EXECUTES = re.compile(r"(pip3? install|python3? -m|python3? \S+\.py|\./|\bbash \S|\bsh \S|\bmake\b|\bnpm\b|"
                      r"\bpytest\b|\btox\b|\bnox\b|\bsource\b)")
WRITE_OK = {"read", "none"}


def _triggers(doc: dict[str, Any]) -> set[str]:
    on = doc["on"]
    return {on} if isinstance(on, str) else set(on)


def _pr_workflows() -> dict[str, dict[str, Any]]:
    """Workflows a PR triggers, with the reusable ones they call."""
    docs = {p.name: load_yaml(p) for p in sorted(WORKFLOWS.glob("*.yml"))}
    found = {name: doc for name, doc in docs.items() if _triggers(doc) & PR_TRIGGERS}
    for doc in list(found.values()):
        for job in (doc.get("jobs") or {}).values():
            uses = str(job.get("uses", ""))
            if uses.startswith("./.github/workflows/"):
                found[Path(uses).name] = docs[Path(uses).name]
    return found


def _pr_checkouts(job: dict[str, Any], *, event_is_pr: bool = True) -> set[str]:
    """Paths (relative to the workspace) holding the PR's files: checkouts of this repository
    at a PR ref, or at the event's commit (no ``ref``) when a PR triggered the run (a
    ``workflow_run`` checks out the default branch then)."""
    paths = set()
    for step in job.get("steps") or []:
        if not str(step.get("uses", "")).startswith("actions/checkout@"):
            continue
        with_ = step.get("with") or {}
        ref = str(with_.get("ref", ""))
        if "repository" in with_ and "github.repository" not in with_["repository"]:
            continue  # another repository (the toolkit)
        if (not ref and event_is_pr) or "pull/" in ref or "head" in ref:
            paths.add(str(with_.get("path", "")).strip("/") or ".")
    return paths


def runs_pr_code(job: dict[str, Any], *, event_is_pr: bool = True) -> list[str]:
    """The steps that execute something from a checkout of the PR (a checkout at the
    workspace root makes the whole workspace the PR's)."""
    pr_paths = _pr_checkouts(job, event_is_pr=event_is_pr)
    default_dir = str(((job.get("defaults") or {}).get("run") or {}).get("working-directory", ".")).strip("/")
    found = []
    for step in job.get("steps") or []:
        script = step.get("run")
        if not script:
            continue
        workdir = str(step.get("working-directory", default_dir or ".")).strip("/") or "."
        in_pr = any(p == "." or workdir == p or workdir.startswith(f"{p}/") for p in pr_paths)
        if in_pr and EXECUTES.search(script):
            found.append(str(step.get("name") or script.splitlines()[0]))
    return found


def privileges(job: dict[str, Any]) -> list[str]:
    perms = job.get("permissions")
    if isinstance(perms, dict):
        out = [f"{k}: {v}" for k, v in perms.items() if v not in WRITE_OK]
    elif perms in (None, {}):
        out = [] if perms == {} else ["no permissions block (default token)"]
    else:
        out = [f"permissions: {perms}"]
    names = re.findall(r"secrets\.([A-Za-z0-9_]+)", yaml.safe_dump(job))
    out += sorted({f"secret {s}" for s in names if s != "GITHUB_TOKEN"})
    return out


def violations(docs: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for name, doc in docs.items():
        for job_name, job in (doc.get("jobs") or {}).items():
            steps = runs_pr_code(job)
            if steps and privileges(job):
                problems.append(f"{name}/{job_name} runs PR code ({'; '.join(steps)}) with "
                                f"{', '.join(privileges(job))}")
    return problems


def test_no_job_that_runs_pr_code_has_a_write_permission_or_a_secret() -> None:
    docs = _pr_workflows()
    assert {"pr.yml", "validate.yml", "review.yml"} <= set(docs)
    assert violations(docs) == []
    # the jobs that do run the PR's code: the read-only static check, and this repository's
    # own test suites (ci.yml, k8s-e2e.yml), read-only too
    running = {(n, j) for n, d in docs.items() for j, job in (d.get("jobs") or {}).items()
               if runs_pr_code(job)}
    assert running == {("pr.yml", "static"), ("ci.yml", "test"), ("k8s-e2e.yml", "kind")}


def test_the_checker_catches_a_job_that_would_run_pr_code_with_a_write_token() -> None:
    bad = load_yaml(WORKFLOWS / "review.yml")
    job = bad["jobs"]["policy"]
    job["steps"].insert(2, {"name": "install the PR", "run": "python -m pip install ."})  # in repo/
    assert violations({"review.yml": bad}) == [
        "review.yml/policy runs PR code (install the PR) with pull-requests: write, statuses: write, "
        "secret MLFLOW_TRACKING_TOKEN, secret MLFLOW_TRACKING_URI, secret MLOPS_POLICY_TOKEN"]


def test_workflow_run_jobs_never_execute_the_prs_files() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        doc = load_yaml(path)
        if "workflow_run" not in _triggers(doc):
            continue
        for job_name, job in (doc.get("jobs") or {}).items():
            assert runs_pr_code(job, event_is_pr=False) == [], f"{path.name}/{job_name}"


def test_the_workflows_init_writes_run_no_pr_code_at_all() -> None:
    """An adopter's workflows install the toolkit from its pinned commit (the composite action,
    or a checkout of the toolkit's repository), so not even the static check runs the PR's code."""
    from tests.github.test_github_workflows import generated_workflows

    docs = {p.name: load_yaml(p) for p in generated_workflows()}
    pr_docs = {name: doc for name, doc in docs.items() if _triggers(doc) & PR_TRIGGERS}
    assert set(pr_docs) == {"pr.yml", "review.yml"}
    assert [(n, j) for n, d in pr_docs.items() for j, job in d["jobs"].items() if runs_pr_code(job)] == []
    for name, doc in docs.items():
        if "workflow_run" in _triggers(doc):
            for job_name, job in doc["jobs"].items():
                assert runs_pr_code(job, event_is_pr=False) == [], f"{name}/{job_name}"
