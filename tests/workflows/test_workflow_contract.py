"""What the workflows set is what the toolkit reads, and README says both.

* every variable a step sets for the toolkit (not used by the step's own script) is one the
  package reads, and README's "Environment variables" table lists it;
* every secret name the configuration points at (a local target's ``token_env``, an alert
  route's ``*_env``) is passed by the workflow whose command needs it;
* a job that reads a per-environment secret (the gateway token) runs in that GitHub
  environment;
* README's "Workflows" table is the one computed here from the files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.workflows.harness import ROOT, load_yaml

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# these run this repository's own test suite, not the toolkit
TEST_WORKFLOWS = {"ci.yml", "k8s-e2e.yml"}
PACKAGE_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "mlops_actions").rglob("*.py"))
README = (ROOT / "README.md").read_text(encoding="utf-8")
# read by a library the toolkit drives, not by its own code
READ_BY_LIBRARIES = {"MLFLOW_TRACKING_TOKEN": "MLflow's client"}
SECRET = re.compile(r"\$\{\{\s*secrets\.([A-Za-z0-9_]+)")
VAR = re.compile(r"\$\{\{\s*vars\.([A-Za-z0-9_]+)")


def _steps() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path in WORKFLOWS:
        for job_name, job in (load_yaml(path).get("jobs") or {}).items():
            for step in job.get("steps") or []:
                out.append((path.name, job_name, step))
    return out


def readme_section(title: str) -> str:
    marker = next(m for m in (f"\n## {title}\n", f"\n### {title}\n") if m in README)
    rest = README[README.index(marker) + len(marker):]
    end = re.search(r"\n##+ ", rest)
    return rest[: end.start()] if end else rest


def documented_variables() -> set[str]:
    table = readme_section("Environment variables")
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))


def test_every_variable_a_step_sets_for_the_toolkit_is_read_and_documented() -> None:
    documented = documented_variables()
    problems = []
    for file, job, step in _steps():
        if file in TEST_WORKFLOWS:
            continue
        script = step.get("run", "")
        for name in step.get("env") or {}:
            if re.search(rf"\$\{{?{name}\b", script):
                continue  # the step's own script uses it
            if name not in READ_BY_LIBRARIES and f'"{name}"' not in PACKAGE_TEXT:
                problems.append(f"{file}/{job}: sets {name}, which mlops_actions never reads")
            if name not in documented:
                problems.append(f"{file}/{job}: sets {name}, missing from README's Environment variables")
    assert problems == []


def test_secrets_the_configuration_names_are_passed_where_they_are_needed() -> None:
    deploy = (ROOT / ".github/workflows/deploy.yml").read_text(encoding="utf-8")
    monitor = (ROOT / ".github/workflows/monitor.yml").read_text(encoding="utf-8")
    needed: list[tuple[str, str, str]] = []
    for path in sorted((ROOT / "environments").glob("*.yaml")):
        target = (yaml.safe_load(path.read_text()) or {}).get("target") or {}
        if target.get("type") == "local":
            needed.append((path.name, target.get("token_env", "MLOPS_GATEWAY_TOKEN"), deploy))
    defaults = {"slack": ("webhook_url_env", "SLACK_WEBHOOK_URL"),
                "pagerduty": ("routing_key_env", "PAGERDUTY_ROUTING_KEY")}
    for path in sorted((ROOT / "models").glob("*/model.yaml")):
        for alert in ((yaml.safe_load(path.read_text()) or {}).get("monitoring") or {}).get("alerts") or []:
            if alert["type"] in defaults:
                key, default = defaults[alert["type"]]
                needed.append((str(path.relative_to(ROOT)), alert.get(key, default), monitor))
            for key in ("url_env", "secret_env"):
                if alert.get(key):
                    needed.append((str(path.relative_to(ROOT)), alert[key], monitor))
    # the alert routes a user may declare with the default names are passed even when no
    # bundled model uses them
    for name in ("SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "MLOPS_ALERT_WEBHOOK_URL",
                 "MLOPS_ALERT_WEBHOOK_SECRET"):
        needed.append(("monitor.yml", name, monitor))
    missing = [f"{where}: {name}" for where, name, text in needed
               if f"{name}: ${{{{ secrets.{name} }}}}" not in text]
    assert missing == []


def test_a_job_reading_the_gateway_token_runs_in_its_github_environment() -> None:
    for path in WORKFLOWS:
        for job_name, job in (load_yaml(path).get("jobs") or {}).items():
            text = yaml.safe_dump(job)
            if "secrets.MLOPS_GATEWAY_TOKEN" in text and "steps" in job:
                assert job.get("environment"), f"{path.name}/{job_name} reads the gateway token outside " \
                    "a GitHub environment: every environment would share one token"


def workflows_table() -> str:
    """README's Workflows table, computed from the files."""
    rows = ["| workflow | runs on | jobs and their permissions | secrets (and variables) it reads |",
            "|---|---|---|---|"]
    for path in WORKFLOWS:
        doc = load_yaml(path)
        on = doc["on"]
        triggers = ", ".join(f"`{t}`" for t in ([on] if isinstance(on, str) else on))
        jobs = []
        for name, job in (doc.get("jobs") or {}).items():
            perms = job.get("permissions")
            text = "none" if not perms else ", ".join(f"{k}: {v}" for k, v in perms.items())
            env = f" (environment `{job['environment']}`)" if job.get("environment") else ""
            calls = f" -> `{Path(job['uses']).name}`" if job.get("uses") else ""
            jobs.append(f"`{name}`{calls}{env}: {text}")
        raw = path.read_text(encoding="utf-8")
        secrets = sorted(set(SECRET.findall(raw)))
        variables = sorted(set(VAR.findall(raw)))
        reads = ", ".join(f"`{s}`" for s in secrets) or "none"
        if variables:
            reads += "; variables " + ", ".join(f"`{v}`" for v in variables)
        rows.append(f"| `{path.name}` | {triggers} | {'<br>'.join(jobs)} | {reads} |")
    return "\n".join(rows)


def test_readme_workflows_table_matches_the_files() -> None:
    expected = workflows_table()
    assert expected in readme_section("Workflows"), f"README's Workflows table should read:\n{expected}"
