"""What ``mlops-actions init`` writes into a repository that adopts the toolkit.

The files come from ``mlops_actions/templates/`` (package data) with a few markers filled in:
the toolkit's repository and the commit the trigger workflows pin (``uses:
OWNER/REPO/.github/workflows/validate.yml@SHA``, ``uses: OWNER/REPO@SHA``), the gateways'
URLs, the model's name and task. Writing is idempotent: a file that already holds what would
be written is "unchanged", one that differs is kept unless ``force``; ``.gitignore`` only
gains the lines it lacks.
"""

from __future__ import annotations

import enum
import importlib.metadata
import importlib.resources
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlops_actions.config.specs import Task
from mlops_actions.errors import ConfigError
from mlops_actions.registry.interface import LOCAL_STATE

__all__ = [
    "DISTRIBUTION",
    "TRIGGER_WORKFLOWS",
    "Outcome",
    "Scaffold",
    "ToolkitPin",
    "Written",
    "github_repository",
    "installed_pin",
    "next_steps",
    "render",
    "write",
]

DISTRIBUTION = "mlops-actions"
#: the workflows an adopting repository holds; they call the toolkit's reusable ones
TRIGGER_WORKFLOWS = ("pr.yml", "review.yml", "pr-fork.yml", "apply.yml", "promote.yml", "rollback.yml",
                     "conclude.yml", "monitor-schedule.yml")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+$")
_GITHUB_URL = re.compile(
    r"^(?:(?:git\+)?(?:https|ssh|git)://(?:[^@/]+@)?github\.com[:/]|git@github\.com:)"
    r"(?P<repo>[A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:\.git)?/?$")
_MARKER = re.compile(r"@@[A-Z_]+@@")
_THRESHOLDS: Mapping[str, tuple[str, str]] = {  # task -> (validation, monitoring) threshold lines
    "binary_classification": ("    accuracy: {threshold: 0.80}\n    f1_score: {threshold: 0.80}",
                              "    accuracy: {threshold: 0.75}"),
    "multiclass_classification": ("    accuracy: {threshold: 0.80}", "    accuracy: {threshold: 0.75}"),
    "regression": ("    r2: {threshold: 0.30}\n    rmse: {threshold: 100, greater_is_better: false}",
                   "    r2: {threshold: 0.20}"),
}


@dataclass(frozen=True)
class ToolkitPin:
    """The toolkit's GitHub repository (``owner/name``) and the full commit SHA to pin."""

    repository: str
    ref: str


class Outcome(enum.Enum):
    """What writing one file did."""

    WROTE = "wrote"  # it did not exist
    UNCHANGED = "unchanged"  # it already held exactly this
    APPENDED = "appended"  # .gitignore: the missing lines were added
    OVERWRITTEN = "overwritten"  # it differed, and --force was given
    KEPT = "kept yours (differs)"  # it differs, and no --force


@dataclass(frozen=True)
class Written:
    path: str  # relative to the repository root
    outcome: Outcome


@dataclass(frozen=True)
class Scaffold:
    """The choices ``init`` fills the templates with."""

    pin: ToolkitPin
    model: str | None = None
    task: Task = "binary_classification"
    staging_url: str = "http://127.0.0.1:8080"
    production_url: str = "http://127.0.0.1:8081"


# --------------------------------------------------------------------------- where the toolkit came from


def github_repository(url: str) -> str | None:
    """``owner/name`` of a github.com URL (https, ssh, ``git@github.com:``), else None."""
    match = _GITHUB_URL.match(url.strip())
    return match["repo"] if match else None


def _git(checkout: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                              check=False, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _from_checkout(checkout: Path) -> tuple[str | None, str | None]:
    origin = _git(checkout, "remote", "get-url", "origin")
    return (github_repository(origin) if origin else None), _git(checkout, "rev-parse", "HEAD")


def installed_pin() -> tuple[str | None, str | None]:
    """(repository, commit) the installed toolkit came from, each None when unknown.

    PEP 610's ``direct_url.json`` of the distribution: ``pip install
    git+https://github.com/OWNER/REPO@SHA`` records the URL and ``vcs_info.commit_id``; an
    editable or local install records ``file://DIR``, whose git checkout gives ``HEAD`` and its
    ``origin``. Without that record (e.g. the package on ``PYTHONPATH``), the checkout holding
    the package, if any."""
    try:
        record = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        record = None
    if record:
        data = json.loads(record)
        url = str(data.get("url", ""))
        vcs = data.get("vcs_info") or {}
        if vcs.get("vcs") == "git":
            commit = str(vcs.get("commit_id") or "") or None
            return github_repository(url), commit
        if url.startswith("file://"):
            return _from_checkout(Path(unquote(urlparse(url).path)))
        return None, None
    return _from_checkout(Path(__file__).resolve().parent.parent.parent)


def resolve_pin(repository: str | None, ref: str | None) -> ToolkitPin:
    """The pin from the flags, else from where the toolkit was installed; exit 2 when unknown."""
    found_repo, found_ref = (None, None) if repository and ref else installed_pin()
    repository, ref = repository or found_repo, ref or found_ref
    missing = [flag for flag, value in (("--toolkit-repository OWNER/REPO", repository),
                                        ("--ref SHA", ref)) if not value]
    if missing:
        raise ConfigError(
            "cannot tell which toolkit the workflows should call: the installed mlops-actions "
            "records no GitHub repository and commit",
            hint=f"pass {' and '.join(missing)} (the repository and full commit SHA to pin), or install "
            "it with pip install \"git+https://github.com/OWNER/REPO@SHA\"")
    assert repository is not None and ref is not None
    if not REPOSITORY.match(repository):
        raise ConfigError(f"--toolkit-repository {repository!r} is not OWNER/REPO",
                          hint="e.g. --toolkit-repository my-org/mlops-actions")
    if not FULL_SHA.match(ref):
        raise ConfigError(f"--ref {ref!r} is not a full commit SHA (40 hex digits)",
                          hint="workflows pin actions by full SHA; git rev-parse TAG gives it")
    return ToolkitPin(repository, ref)


# --------------------------------------------------------------------------- rendering


def _template(*parts: str) -> str:
    source = importlib.resources.files("mlops_actions").joinpath("templates", *parts)
    return source.read_text(encoding="utf-8")


def _fill(text: str, values: Mapping[str, str], name: str) -> str:
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    left = _MARKER.search(text)
    if left:  # a template with a marker nobody fills is a bug in the toolkit
        raise AssertionError(f"template {name}: {left.group()} not filled")
    return text


def render(scaffold: Scaffold) -> dict[str, str]:
    """Relative path -> text, for every file ``init`` writes but ``.gitignore``."""
    values = {"TOOLKIT": scaffold.pin.repository, "REF": scaffold.pin.ref,
              "STAGING_URL": scaffold.staging_url, "PRODUCTION_URL": scaffold.production_url,
              "EXAMPLE": scaffold.model or "my_model"}
    files: dict[str, str] = {}
    for env in ("staging", "production"):
        files[f"environments/{env}.yaml"] = _fill(_template("environments", f"{env}.yaml"), values, env)
    if scaffold.model:
        validation, performance = _THRESHOLDS[scaffold.task]
        files[f"models/{scaffold.model}/model.yaml"] = _fill(
            _template("model.yaml"), {**values, "MODEL": scaffold.model, "TASK": scaffold.task,
                                      "THRESHOLDS": validation, "PERFORMANCE": performance}, "model.yaml")
    for name in TRIGGER_WORKFLOWS:
        files[f".github/workflows/{name}"] = _fill(_template("workflows", name), values, name)
    return files


# --------------------------------------------------------------------------- writing


def _write_one(root: Path, rel: str, text: str, *, force: bool) -> Outcome:
    path = root / rel
    if path.is_file():
        if path.read_text(encoding="utf-8", errors="replace") == text:
            return Outcome.UNCHANGED
        if not force:
            return Outcome.KEPT
        path.write_text(text, encoding="utf-8")
        return Outcome.OVERWRITTEN
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return Outcome.WROTE


def _gitignore(root: Path, lines: Sequence[str]) -> Outcome:
    path = root / ".gitignore"
    if not path.exists():
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return Outcome.WROTE
    text = path.read_text(encoding="utf-8", errors="replace")
    have = {line.strip() for line in text.splitlines()}
    missing = [line for line in lines if line not in have and line.rstrip("/") not in have]
    if not missing:
        return Outcome.UNCHANGED
    sep = "" if not text or text.endswith("\n") else "\n"
    path.write_text(text + sep + "".join(f"{line}\n" for line in missing), encoding="utf-8")
    return Outcome.APPENDED


def write(root: Path, files: Mapping[str, str], *, force: bool = False) -> list[Written]:
    """Write ``files`` under ``root`` and the ``.gitignore`` lines of the toolkit's local state."""
    done = [Written(rel, _write_one(root, rel, text, force=force)) for rel, text in files.items()]
    done.append(Written(".gitignore", _gitignore(root, LOCAL_STATE)))
    return done


def next_steps(scaffold: Scaffold) -> str:
    """What to do after ``init``: secrets and where each goes, environments, branch protection."""
    model = scaffold.model or "<name>"
    return f"""
Next steps:
  1. Train and register: log your model with MLflow (your training script also writes
     models/{model}/data/train.csv and test.csv), then
       mlops-actions register {model} --source runs:/<run_id>/model
  2. Secrets (Settings > Secrets and variables > Actions), repository secrets:
       MLFLOW_TRACKING_URI (+ MLFLOW_TRACKING_TOKEN)  every job that reads the registry
       MLOPS_PREDICTION_STORE                         monitor-schedule.yml, conclude.yml: the store the
                                                      gateways log to
       SLACK_WEBHOOK_URL, PAGERDUTY_ROUTING_KEY, MLOPS_ALERT_WEBHOOK_URL, MLOPS_ALERT_WEBHOOK_SECRET
                                                      monitor-schedule.yml: the alert routes your
                                                      model.yaml declares (only those you use)
       MLOPS_BOT_TOKEN (optional)                     the promote, rollback and conclude buttons: their PRs
                                                      then run their checks
  3. GitHub environments (Settings > Environments): `staging` and `production`, each with the
     secret MLOPS_GATEWAY_TOKEN, the admin token of its gateway (same name, its own value);
     give `production` its required reviewers.
  4. Gateways: `mlops-actions serve --env staging` on the machine at {scaffold.staging_url}
     (and --env production at {scaffold.production_url}), reachable from your runners.
  5. Branch protection of main: require the check `all-checks` and the status `mlops-actions/policy`.
  6. Commit, push, and open a PR that pins the registered version in environments/staging.yaml.
The workflows call {scaffold.pin.repository} at {scaffold.pin.ref};
to move the pin, run init again with --ref SHA --force.
"""
