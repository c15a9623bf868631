"""A repository that adopts the toolkit, step by step as README's "Adopting it in your
repository" tells a newcomer, nothing else: its own model (iris, a LogisticRegression the
project does not ship, trained by its own script), ``mlops-actions init``, ``register``, the
first PR through the real pr.yml, the merge, apply.yml deploying to a real gateway, traffic,
drift, and monitor-schedule.yml delivering the alert. Its workflows call the toolkit's
reusable workflows and composite action by ``OWNER/REPO/...@SHA`` from another repository
(a bare repository on the scenario's remote, as github.com would hold it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.github.fakegithub import review
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
# the adopter's own training script: scikit-learn's iris, logged with MLflow; prints the run id
TRAIN = '''"""Train the iris classifier, write its data splits, log it to MLflow; print the run id."""
from pathlib import Path

import mlflow
import sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

frame = load_iris(as_frame=True).frame
frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "target"]
train, test = train_test_split(frame, test_size=0.4, random_state=7, stratify=frame["target"])
data = Path("models/iris/data")
data.mkdir(parents=True, exist_ok=True)
train.to_csv(data / "train.csv", index=False)
test.to_csv(data / "test.csv", index=False)
x, y = train.drop(columns="target"), train["target"]
model = LogisticRegression(max_iter=1000).fit(x, y)
with mlflow.start_run() as run:
    mlflow.log_metric("accuracy", model.score(test.drop(columns="target"), test["target"]))
    mlflow.sklearn.log_model(model, name="model", signature=infer_signature(x, model.predict(x)),
                             input_example=x.head(3),
                             pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
print(run.info.run_id)
'''
FIRST_PIN = f'''models:
  {MODEL}:
    version: "1.0.0"
    strategy: {{type: full}}
'''


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
    (files / "train.py").write_text(TRAIN, encoding="utf-8")
    repo = ScenarioRepo(remote, tmp_path / "adopter", files)
    ports = {"staging": free_port(), "production": free_port()}
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    (tmp_path / "mlflow").mkdir()
    with open_world(repo, deps, tmp_path, mlflow_uri=mlflow_uri, ports=ports, model=MODEL,
                    toolkit=toolkit) as w:
        yield w, toolkit[1]


def adopt(w: World, sha: str) -> dict[str, str]:
    """README's steps 1 to 4 in the adopter's repository: init (twice: nothing changes), the
    webhook alert route uncommented, its own training script, register, check, commit.
    Returns the environment the newcomer's shell has (MLFLOW_TRACKING_URI)."""
    work = w.repo.work
    env = {**os.environ, "MLFLOW_TRACKING_URI": w.mlflow_uri}
    env.pop("MLOPS_PREDICTION_STORE", None)
    # 1. init (the toolkit installed from a pinned ref; here from a checkout, so the pin is given)
    init = ["-m", "mlops_actions", "init", "--model", MODEL, "--task", "multiclass_classification",
            "--toolkit-repository", TOOLKIT, "--ref", sha,
            "--staging-url", f"http://127.0.0.1:{w.ports['staging']}",
            "--production-url", f"http://127.0.0.1:{w.ports['production']}"]
    out = cli(work, env, *init)
    assert f"wrote: models/{MODEL}/model.yaml" in out and "all-checks" in out and "MLOPS_GATEWAY_TOKEN" in out
    again = cli(work, env, *init)  # twice: nothing changes
    assert "wrote" not in again and again.count("unchanged: ") == 11
    pr_yml = (work / ".github/workflows/pr.yml").read_text()
    assert f"uses: {TOOLKIT}/.github/workflows/validate.yml@{sha}" in pr_yml
    # the alert route this team uses: a webhook (README: uncomment the routes you use)
    spec = work / "models" / MODEL / "model.yaml"
    spec.write_text(spec.read_text().replace("    # - {type: webhook}", "    - {type: webhook}"))

    # 2. train with its own script, register through the toolkit, commit
    run_id = cli(work, env, "train.py").strip().splitlines()[-1]
    registered = cli(work, env, "-m", "mlops_actions", "register", MODEL, "--source", f"runs:/{run_id}/model")
    assert f"registered {MODEL} 1.0.0" in registered
    cli(work, env, "-m", "mlops_actions", "check")
    w.repo.commit_main("Adopt mlops-actions", {})
    tracked = subprocess.run(["git", "ls-files"], cwd=work, capture_output=True, text=True).stdout
    assert "mlflow.db" not in tracked and "mlruns/" not in tracked
    assert f"models/{MODEL}/data/test.csv" in tracked
    w.sync_github()
    return env


def test_an_adopter_repository_goes_from_init_to_an_alert(adopter: tuple[World, str]) -> None:
    w, sha = adopter
    work = w.repo.work
    adopt(w, sha)

    # 3. the first PR pins 1.0.0 in staging: plan, validate, policy, staging-check through pr.yml
    staging = w.repo.read("environments/staging.yaml").replace("models: {}\n", FIRST_PIN)
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
    w.start_gateway("staging")
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
                                                                                             FIRST_PIN)})
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
        "models: {}\n", FIRST_PIN.replace('"1.0.0"', '"1.1.0"'))
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
