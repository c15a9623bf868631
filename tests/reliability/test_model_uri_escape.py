"""Issue 9 item 5: model URIs that try to escape are refused wherever a URI enters, and a
pickle-based model is loaded only from the registry, never from a PR's files.

Entry points: ``serve --model-uri`` (CLI, exit 2), the gateway's admin API
(``POST /admin/rollouts``: 400), ``register --source`` (the registry adapter) and the loader
itself (``load_pyfunc``), which also refuses a local artifact directory holding a symlink out
of it. Environment files pin versions, never URIs (unknown keys such as ``uri:`` are errors).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_actions.errors import ConfigError
from mlops_actions.registry.uris import check_artifact_tree, check_model_uri
from tests.reliability.figures import record
from tests.reliability.hostile_gateway import HostileGateway, hostile_gateway  # noqa: F401 - fixture
from tests.serving._support import TOKEN

ROOT = Path(__file__).resolve().parents[2]
RUN = "0123456789abcdef0123456789abcdef"
ESCAPES = [
    "file:///etc/passwd", "file://localhost/etc/passwd", "FILE:///etc/passwd", "/etc/passwd", "../../etc",
    "./models/churn/model.pkl", "models/churn/model.pkl", "~/model", "C:\\Windows\\model",
    "models:/../../etc/passwd", "models:/churn/../../../etc", "models:/churn/1/../../x",
    "models:/%2e%2e/%2e%2e/etc", "models:/churn%2f..%2f..%2fetc", "models:/%252e%252e%252fetc%252fpasswd",
    "models:/%25252e%25252e%25252f", "runs:/%2E%2E/model", f"runs:/{RUN}/../../../etc",
    f"runs:/{RUN}/model/../../..", f"runs:/{RUN}//etc/passwd", f"runs:/{RUN}/./model", "runs:/../x/model",
    "models:/churn/1#../../etc", "models:/churn/1?path=/etc/passwd", "models:/churn@prod#frag",
    "models:/churn/1\n::set-output name=x::y", "models:/churn/1\x00.pkl", "models:/churn/ 1",
    "http://169.254.169.254/latest/meta-data", "https://evil.example/model.pkl", "s3://bucket/../model",
    "mlflow-artifacts:/../../etc", "dbfs:/../x", "models:/churn\\..\\..\\etc", "models:/", "models:/churn",
    "runs:/", "", "models:/" + "a" * 2000 + "/1",
]
VALID = ["models:/churn/3", "models:/churn@production", "models:/task_classifier@staging-canary",
         "models:/m-0123456789abcdef0123456789abcdef", f"runs:/{RUN}/model", f"runs:/{RUN}/nested/model.v2"]


@pytest.mark.parametrize("uri", ESCAPES)
def test_escaping_uris_are_refused_with_a_clear_error(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_model_uri(uri)
    message = str(info.value)
    assert "is refused:" in message and "models:/<name>/<version>" in message
    assert "\n::" not in message  # shown as a repr: a newline in the URI cannot start a workflow command


@pytest.mark.parametrize("uri", VALID)
def test_registry_uris_pass(uri: str) -> None:
    assert check_model_uri(uri) == uri


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["models:/", "runs:/", "churn", RUN, "/", "..", ".", "%", "2e", "25", "2f",
                                 "@", "#", "?", "\\", "file:", "1", "m-", "model", "%2e", "%252e"]),
                min_size=1, max_size=12).map("".join))
def test_nothing_accepted_decodes_to_a_traversal(uri: str) -> None:
    try:
        accepted = check_model_uri(uri)
    except ConfigError:
        return
    from urllib.parse import unquote

    decoded = accepted
    for _ in range(6):
        decoded = unquote(decoded)
    parts = decoded.split(":", 1)[1].replace("@", "/").split("/")
    assert ".." not in parts and "." not in parts and "%" not in accepted and "\\" not in decoded
    assert accepted.startswith(("models:/", "runs:/"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_actions", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})


class Pwn:
    """A pickle that creates a marker file when loaded (what a hostile model.pkl does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _pr_files(repo: Path, marker: Path) -> list[Path]:
    """A PR's checkout holding a hostile pickle and an MLflow-style model directory around it."""
    model_dir = repo / "models" / "evil" / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "model.pkl").write_bytes(pickle.dumps(Pwn(marker)))
    (model_dir / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
                                       "    serialization_format: pickle\n")
    (repo / "models" / "evil" / "model.pkl").write_bytes(pickle.dumps(Pwn(marker)))
    return [repo / "models" / "evil" / "model.pkl", model_dir]


@pytest.mark.slow
def test_every_entry_point_refuses_escapes_and_pr_pickles(
        hostile_gateway: HostileGateway, tmp_path: Path) -> None:  # noqa: F811
    marker = tmp_path / "pwned"
    repo = tmp_path / "pr"
    pickle_file, model_dir = _pr_files(repo, marker)
    pr_uris = [str(pickle_file), str(model_dir), f"file://{model_dir}", "models/evil/model",
               "./models/evil/model.pkl"]
    refused: dict[str, int] = {"serve": 0, "admin": 0, "register": 0, "loader": 0}

    # 1. serve --model-uri (a Kubernetes pod's MODEL_URI): exit 2, nothing started
    for uri in [*pr_uris[:3], "file:///etc/passwd", "models:/%252e%252e%252fetc"]:
        proc = _cli("serve", "--model-uri", uri, "--port", "1", cwd=repo)
        assert proc.returncode == 2, (uri, proc.stdout, proc.stderr)
        assert "--model-uri" in proc.stderr and "is refused" in proc.stderr and "Traceback" not in proc.stderr
        refused["serve"] += 1

    # 2. the admin API of a live gateway: 400, no rollout declared
    url = hostile_gateway.gateway.url
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = requests.get(url + "/admin/status", headers=auth, timeout=10).json()
    for uri in [*pr_uris, *ESCAPES[:24]]:
        for field in ("uri", "version_b_uri"):
            body = {"model": "task_classifier", "version": "9.9.9", "uri": "models:/task_classifier/1",
                    "strategy": {"type": "full"}}
            body[field] = uri
            if field == "version_b_uri":
                body["strategy"] = {"type": "ab_test", "version_b": "9.9.8", "traffic_split": 0.5}
            r = requests.post(url + "/admin/rollouts", json=body, headers=auth, timeout=10)
            assert r.status_code == 400, (uri, field, r.status_code, r.text)
            assert "is refused" in r.json()["message"], r.text
            refused["admin"] += 1
    after = requests.get(url + "/admin/status", headers=auth, timeout=10).json()
    assert after["rollouts"] == before["rollouts"] and after["routes"] == before["routes"]

    # 3. register --source, through the MLflow adapter on the same registry
    from mlops_actions.registry.mlflow_registry import get_registry

    registry = get_registry(hostile_gateway.registry.tracking_uri)
    for uri in ["file:///etc/passwd", f"runs:/{RUN}/../../etc", "models:/churn/1#x", "models:/%2e%2e/1",
                "s3://bucket/../model", f"file://{model_dir}"]:
        with pytest.raises(ConfigError, match=r"model source .* is refused"):
            registry.register("escape_test", uri)
        refused["register"] += 1

    # 4. the loader: registry forms only, whatever the caller
    from mlops_actions.serving.pyfunc import load_pyfunc

    for uri in [*pr_uris, "file:///etc/passwd", "models:/task_classifier/1#/etc"]:
        with pytest.raises(ConfigError, match="is refused"):
            load_pyfunc(uri)
        refused["loader"] += 1

    # 5. the commands a PR runs never load its files
    proc = _cli("check", cwd=repo)
    assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr
    assert not marker.exists(), "a pickle from the PR's files was loaded"
    total = sum(refused.values())
    record("model-uri-escape", "hostile-input",
           f"model URIs: {len(ESCAPES)} escaping forms refused by the check; {total} attempts through "
           f"serve --model-uri, the admin API, register --source and the loader all refused; "
           "a PR's pickle never loaded", escaping_forms=len(ESCAPES), **refused, total=total)


@pytest.mark.slow
def test_a_symlink_out_of_the_artifacts_is_refused(hostile_gateway: HostileGateway,  # noqa: F811
                                                    tmp_path: Path) -> None:
    """A registered model whose local artifact directory has a symlink to /etc does not load."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from mlops_actions.serving.pyfunc import load_pyfunc, local_artifacts

    mlflow.set_tracking_uri(hostile_gateway.registry.tracking_uri)
    experiment = mlflow.create_experiment(f"symlink-{os.getpid()}-{tmp_path.name}",
                                          artifact_location=str(tmp_path / "artifacts"))
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="model",
                                        pip_requirements=["scikit-learn"])
    version = mlflow.register_model(info.model_uri, f"symlinked_{tmp_path.name[-12:]}").version
    uri = f"models:/symlinked_{tmp_path.name[-12:]}/{version}"
    assert load_pyfunc(uri).predict  # loads while clean
    local = local_artifacts(uri)
    assert local is not None and local.is_dir()
    (local / "innocent.txt").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match=r"innocent.txt is a symlink out of the model's artifacts"):
        load_pyfunc(uri)
    (local / "innocent.txt").unlink()
    (local / "inside").symlink_to(local / "MLmodel")  # a link that stays inside is fine
    check_artifact_tree(local, uri=uri)
    moved = tmp_path / "elsewhere"
    local.rename(moved)
    local.symlink_to(moved, target_is_directory=True)
    with pytest.raises(ConfigError, match="behind a symlink"):
        load_pyfunc(uri)
