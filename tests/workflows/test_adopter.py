"""A repository that adopts the toolkit, step by step as README's "Use it in your repository"
tells a newcomer, running the README's own blocks, nothing else: its own model (iris, a
LogisticRegression the project does not ship, trained by its own script), ``mlops-actions
init``, ``register``, the first PR through the real pr.yml, the merge, apply.yml deploying to a
real gateway, traffic, drift, and monitor-schedule.yml delivering the alert. Its workflows call
the toolkit's reusable workflows and composite action by ``OWNER/REPO/...@SHA`` from another
repository (a bare repository on the scenario's remote, as github.com would hold it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_actions.gitops.scaffold import TRIGGER_WORKFLOWS
from tests.conftest import free_port
from tests.github.fakegithub import review
from tests.readme_examples import example
from tests.workflows.conftest import World, open_world, publish_toolkit
from tests.workflows.harness import (
    Remote,
    ScenarioRepo,
    dispatch_event,
    load_yaml,
    pull_request_event,
    push_event,
    review_event,
    schedule_event,
)

TOOLKIT = "ml-tools/mlops-actions"  # not the reusable workflows' default: toolkit-repository is used
MODEL = "iris"
def cli(repo: Path, env: dict[str, str], *args: str) -> str:
    """A command as the newcomer types it in their repository."""
    done = subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def adopter(act: str, deps: Path, tmp_path: Path) -> Iterator[tuple[World, str]]:
    """The toolkit published at one commit, and the adopter's repository holding only its own
    training script; GitHub, MLflow (its tracking server's store), gateways, alert receiver.
    Yields the world and the toolkit's commit."""
    remote = Remote(tmp_path / "github.com")
    toolkit = publish_toolkit(remote, TOOLKIT, tmp_path / "toolkit")
    files = tmp_path / "adopter-files"
    files.mkdir()
    (files / "train.py").write_text(example("adopt-train"), encoding="utf-8")  # README's train.py
    repo = ScenarioRepo(remote, tmp_path / "adopter", files)
    ports = {"staging": free_port(), "production": free_port()}
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    (tmp_path / "mlflow").mkdir()
    with open_world(repo, deps, tmp_path, mlflow_uri=mlflow_uri, ports=ports, model=MODEL,
                    toolkit=toolkit) as w:
        yield w, toolkit[1]


def newcomer_shell(w: World, tmp: Path) -> dict[str, str]:
    """The newcomer's shell: a virtual environment of their own on PATH (its third-party
    packages are the test venv's, linked as the setup-python stand-in links them, so pip
    installs only the toolkit, offline), git's identity, and github.com answered by the
    scenario's bare repositories (``url.insteadOf``, what the checkout stand-in does for
    actions/checkout), so ``pip install git+https://github.com/...`` and ``git push`` reach them."""
    venv = tmp / "newcomer-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for entry in site.iterdir():  # the build backend comes from the linked packages too
        if entry.name.startswith(("setuptools", "pkg_resources", "_distutils_hack", "distutils-precedence")):
            subprocess.run(["rm", "-rf", str(entry)], check=True)
    (site / "_test_dependencies.pth").write_text(f"{w.runner.deps}\n")
    gitconfig = tmp / "newcomer.gitconfig"
    gitconfig.write_text(f'[url "file://{w.repo.remote.root}/"]\n\tinsteadOf = https://github.com/\n'
                         "[user]\n\tname = Newcomer\n\temail = newcomer@example.com\n")
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv),
           "GIT_CONFIG_GLOBAL": str(gitconfig), "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "MLFLOW_TRACKING_URI": w.mlflow_uri}
    env.pop("MLOPS_PREDICTION_STORE", None)
    return env


def run_example(cwd: Path, env: dict[str, str], text: str) -> str:
    """A README block, run by bash as the newcomer pastes it (it stops at the first failure)."""
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False, timeout=600)
    assert done.returncode == 0, f"{text}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def adopt(w: World, sha: str) -> dict[str, str]:
    """README's steps 1 to 3 in the adopter's repository, its blocks as written (OWNER, SHA and
    the ports replaced, as the reader does): install from the pinned commit, init (twice:
    nothing changes), the webhook alert route uncommented, train.py, register, check, commit,
    push. Returns the newcomer's shell environment."""
    work = w.repo.work
    env = newcomer_shell(w, work.parent)
    owner = TOOLKIT.split("/")[0]
    # 1. install from the pinned commit: pip records github.com/OWNER/mlops-actions@SHA
    run_example(work, env, example("adopt-install", OWNER=owner, SHA=sha))
    # 2. init: the pin comes from what pip installed (no --toolkit-repository, no --ref)
    init = example("adopt-init", **{"8080": str(w.ports["staging"]), "8081": str(w.ports["production"])})
    out = run_example(work, env, init)
    assert f"wrote: models/{MODEL}/model.yaml" in out and "all-checks" in out and "MLOPS_GATEWAY_TOKEN" in out
    again = run_example(work, env, init)  # twice: nothing changes
    # nothing changes: the trigger workflows, two environments, model.yaml, .gitignore
    assert "wrote" not in again and again.count("unchanged: ") == len(TRIGGER_WORKFLOWS) + 4
    pr_yml = (work / ".github/workflows/pr.yml").read_text()
    assert f"uses: {TOOLKIT}/.github/workflows/validate.yml@{sha}" in pr_yml
    # the alert route this team uses: a webhook (README: uncomment the routes you use)
    spec = work / "models" / MODEL / "model.yaml"
    spec.write_text(spec.read_text().replace("    # - {type: webhook}", "    - {type: webhook}"))

    # 3. train with its own script, register through the toolkit, check, commit, push
    registered = run_example(work, env, example("adopt-register"))
    assert f"registered {MODEL} 1.0.0" in registered
    w.repo.fetch_main()
    tracked = subprocess.run(["git", "ls-files"], cwd=work, capture_output=True, text=True).stdout
    assert "mlflow.db" not in tracked and "mlruns/" not in tracked
    assert f"models/{MODEL}/data/test.csv" in tracked and "train.py" in tracked
    w.sync_github()
    return env


def test_an_adopter_repository_goes_from_init_to_an_alert(adopter: tuple[World, str]) -> None:
    w, sha = adopter
    work = w.repo.work
    env = adopt(w, sha)

    # 3. the first PR pins 1.0.0 in staging: plan, validate, policy, staging-check through pr.yml
    staging = w.repo.read("environments/staging.yaml").replace("models: {}\n", example("adopt-pin"))
    pr = w.open_pr("pin-iris", {"environments/staging.yaml": staging},
                   title=f"Pin {MODEL} 1.0.0 in staging")
    result = w.runner.run("pull_request", "pr.yml", pull_request_event(pr))
    assert result.returncode == 0 and not result.failed_jobs(), result
    assert {"pr/static", "pr/all-checks"} <= set(result.jobs)
    [plan] = w.comments(pr.number, "plan", "all")
    assert MODEL in plan and "1.0.0" in plan
    [validate] = w.comments(pr.number, "validate", "staging")
    assert f"Validation of `{MODEL}` 1.0.0: **passed**" in validate
    [staging_check] = w.comments(pr.number, "staging", "staging")
    assert "answered 200" in staging_check
    assert len(w.comments(pr.number, "policy", "all")) == 1
    statuses = w.gh.statuses_for(pr.head_sha)
    assert [(s["context"], s["state"]) for s in statuses] == [("mlops-actions/policy", "success")]

    # 4. merge; the staging gateway runs where staging.yaml says; apply.yml deploys to it
    before, after = w.merge(pr)
    w.repo.at(after)
    w.start_gateway("staging", command=example("adopt-serve"), env=env)
    result = w.runner.run("push", "apply.yml", push_event(before, after),
                          environment="staging", matrix={"environment": "staging"})
    assert result.returncode == 0 and not result.failed_jobs(), result
    assert w.live("staging")[MODEL]["stable"] == "1.0.0"
    assert [states for _, states in w.gh.deployment_history("staging")] == [["in_progress", "success"]]

    # 5. traffic whose features drifted; the scheduled monitor alerts the webhook route
    with w.traffic("staging", rps=200, shift=0.8) as sent:
        while sent["sent"] < 150:
            pass
    w.repo.at(w.repo.sha("main"))
    cron = load_yaml(work / ".github/workflows/monitor-schedule.yml")["on"]["schedule"][0]["cron"]
    result = w.runner.run("schedule", "monitor-schedule.yml", schedule_event(cron),
                          matrix={"environment": "staging"})
    assert any("monitor" in j for j in result.failed_jobs()), result
    webhook = [body for path, body in w.receiver.received if path == "/webhook"]
    assert webhook, (w.receiver.paths(), result)
    text = json.dumps(webhook[0])
    assert MODEL in text and "staging" in text and "drift" in text
    assert w.gh.rejected == []


def test_an_adopters_buttons_and_review_run_the_pinned_toolkit(adopter: tuple[World, str]) -> None:
    """The workflows init writes beyond the first PR's path: the rollback and promote buttons
    (the composite action, dispatch inputs as single arguments) and review.yml (the toolkit
    checked out at its pin)."""
    w, sha = adopter
    env = adopt(w, sha)
    run_id = cli(w.repo.work, env, "train.py").strip().splitlines()[-1]
    assert f"registered {MODEL} 1.1.0" in cli(w.repo.work, env, "-m", "mlops_actions", "register", MODEL,
                                               "--source", f"runs:/{run_id}/model")
    path = "environments/staging.yaml"
    w.repo.commit_main(f"Pin {MODEL} 1.0.0 in staging (#1)", {path: w.repo.read(path).replace("models: {}\n",
                                                                                             example("adopt-pin"))})
    w.repo.commit_main(f"Pin {MODEL} 1.1.0 in staging (#2)", {path: w.repo.read(path).replace('"1.0.0"',
                                                                                             '"1.1.0"')})
    w.sync_github()
    w.repo.at(w.repo.sha("main"))

    event = dispatch_event({"model": MODEL, "env": "staging", "to": "", "reason": "accuracy fell; see #3"},
                           workflow="rollback.yml")
    result = w.runner.run("workflow_dispatch", "rollback.yml", event)
    assert result.returncode == 0, result
    [rollback] = w.gh.state.pulls
    assert rollback["title"] == f"Roll back {MODEL} in staging to 1.0.0"
    assert "accuracy fell; see #3" in rollback["body"].replace("\\", "")  # one argument, shown inert

    event = dispatch_event({"model": MODEL, "version": "", "from": "staging", "to": "production"},
                           workflow="promote.yml")
    result = w.runner.run("workflow_dispatch", "promote.yml", event)
    assert result.returncode == 0, result
    promote = w.gh.state.pulls[-1]
    assert promote["title"] == f"Promote {MODEL} 1.1.0 from staging to production"
    assert '"1.1.0"' in w.gh.state.files[(promote["head"]["ref"], "environments/production.yaml")]

    # the promotion PR, approved: review.yml passes the policy
    w.set_alias("staging", "1.1.0")  # live in staging, as apply left it
    production = w.repo.read("environments/production.yaml").replace(
        "models: {}\n", example("adopt-pin").replace('"1.0.0"', '"1.1.0"'))
    pr = w.open_pr("promote-prod", {"environments/production.yaml": production},
                   title=f"Promote {MODEL} 1.1.0 to production")
    w.gh.state.reviews[pr.number] = [review("lead", "APPROVED", 1, association="COLLABORATOR",
                                            commit_id=pr.head_sha)]
    result = w.runner.run("pull_request_review", "review.yml",
                          review_event(pr, state="approved", reviewer="lead", association="COLLABORATOR"))
    assert result.returncode == 0 and not result.failed_jobs(), result
    assert f"stand-in checkout: {TOOLKIT} at {sha[:7]}" in result.log
    statuses = w.gh.statuses_for(pr.head_sha)
    assert (statuses[-1]["context"], statuses[-1]["state"]) == ("mlops-actions/policy", "success"), statuses
    assert w.gh.rejected == []
