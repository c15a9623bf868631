"""Benchmark: ``validate`` vs ``mlflow.models.evaluate`` on the same registered model version.

Data: scikit-learn's breast cancer set resampled (with replacement) to 200,000 rows,
plus a ``bucket`` column 0..9 defining 10 slices. Model: a registered scikit-learn
LogisticRegression (with StandardScaler), in an MLflow SQLite store in a temp dir.

Peer: ``mlflow.models.evaluate`` (default evaluator, explainability off) once on the
whole set and once per slice with ``metric_prefix`` (MLflow's documented way to
evaluate slices), all in one run, on the already-loaded pyfunc (favourable to MLflow:
it does not reload the model per call).

Ours: ``validate_version`` end to end (read the Parquet file, load the version from the
registry, check the signature, predict once, score the whole set and the 10 slices,
thresholds), then the same plus JSON/Markdown/HTML reports and the MLflow evaluation run
(what ``mlops-actions validate`` does).

Same-work peer: what a script does by hand: read the Parquet file, load the model
with ``mlflow.sklearn.load_model``, ``predict_proba`` once, and ``sklearn.metrics`` on
the whole set and each slice (accuracy, precision, recall, F1, ROC AUC, log loss,
confusion matrix).

Checks that every metric both compute agrees to 1e-9, prints timings, then
``--rounds`` rounds (default 3) of the three in alternating order and the min / median /
max of each ratio (peer time / ours).
Run: .venv/bin/python benchmarks/bench_validate.py [--rows 200000] [--rounds 3] [--json PATH] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import order, ratio_row, write_rows

COMPARED = ["example_count", "accuracy_score", "precision_score", "recall_score", "f1_score", "roc_auc",
            "log_loss", "true_positives", "false_positives", "true_negatives", "false_negatives"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, metavar="PATH", help="write the ratio rows here")
    parser.add_argument("--quick", action="store_true", help="20,000 rows (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.rows = min(args.rows, 20_000)

    tmp = Path(tempfile.mkdtemp(prefix="bench-validate-"))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri

    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops_actions.config.loader import load_model as load_model_yaml
    from mlops_actions.registry.interface import ModelVersion
    from mlops_actions.report.validation import render_html, render_json, render_markdown
    from mlops_actions.validation.mlflow_log import log_evaluation
    from mlops_actions.validation.validator import ValidationOptions, validate_version

    mlflow.set_tracking_uri(uri)
    bench_exp = MlflowClient(uri, uri).create_experiment("bench",
                                                         artifact_location=(tmp / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=bench_exp)
    data = load_breast_cancer(as_frame=True).frame
    data.columns = [c.replace(" ", "_") for c in data.columns]
    features = [c for c in data.columns if c != "target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(data[features], data["target"])
    signature = infer_signature(data[features], model.predict(data[features]))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="bench_lr",
                                        signature=signature,
                                        pip_requirements=["scikit-learn"])
    client = MlflowClient(uri, uri)
    client.set_model_version_tag("bench_lr", str(info.registered_model_version), "mlops.semver", "1.0.0")

    rng = np.random.default_rng(0)
    big = data.iloc[rng.integers(0, len(data), args.rows)].reset_index(drop=True)
    big["bucket"] = rng.integers(0, args.slices, args.rows)
    model_dir = tmp / "models" / "bench_lr"
    model_dir.mkdir(parents=True)
    big.to_parquet(model_dir / "test.parquet")
    slices = "".join(
        f"    - name: bucket-{k}\n      where: [{{column: bucket, op: '==', value: {k}}}]\n"
        f"      thresholds: {{f1_score: {{threshold: 0.9}}, roc_auc: {{threshold: 0.9}}}}\n"
        for k in range(args.slices))
    (model_dir / "model.yaml").write_text(
        "name: bench_lr\ntask: binary_classification\ndata: {test: test.parquet, label: target}\n"
        "validation:\n  thresholds:\n    accuracy: {threshold: 0.9}\n    roc_auc: {threshold: 0.9}\n"
        f"    log_loss: {{threshold: 0.3}}\n  slices:\n{slices}")
    spec = load_model_yaml(model_dir / "model.yaml")
    version = ModelVersion(name="bench_lr", version="1.0.0",
                           registry_version=str(info.registered_model_version), source=info.model_uri)
    yaml_path = model_dir / "model.yaml"
    no_latency = ValidationOptions(latency_rows=0)

    # warm both paths' imports once (not timed): a first pyfunc load pays module imports
    pyfunc = mlflow.pyfunc.load_model(version.uri)
    t = time.perf_counter()
    pyfunc.predict(big[features])
    own_predict = time.perf_counter() - t

    # ----------------------------------------------------------------- ours
    t = time.perf_counter()
    result = validate_version(spec, yaml_path, version, None, no_latency)
    ours_core = time.perf_counter() - t
    t = time.perf_counter()
    result2 = validate_version(spec, yaml_path, version, None, no_latency)
    reports = {"validation.json": render_json(result2), "validation.md": render_markdown(result2),
               "validation.html": render_html(result2)}
    log_evaluation(result2, version, uri, reports)
    ours_full = time.perf_counter() - t

    # ----------------------------------------------------------------- MLflow
    X = big.drop(columns=["bucket"])
    cfg = {"default": {"log_model_explainability": False}}
    t = time.perf_counter()
    with mlflow.start_run():
        whole = mlflow.models.evaluate(pyfunc, X, targets="target", model_type="classifier",
                                       evaluators=["default"], evaluator_config=cfg)
        whole_time = time.perf_counter() - t
        per_slice = {}
        for k in range(args.slices):
            part = big[big["bucket"] == k].drop(columns=["bucket"])
            per_slice[f"bucket-{k}"] = mlflow.models.evaluate(
                pyfunc, part, targets="target", model_type="classifier", evaluators=["default"],
                evaluator_config={"default": {**cfg["default"], "metric_prefix": f"bucket_{k}_"}}).metrics
    mlflow_total = time.perf_counter() - t

    # ----------------------------------------------------------------- agreement
    worst = 0.0
    compared = 0
    for name in COMPARED:
        worst = max(worst, abs(float(result.metrics[name]) - float(whole.metrics[name])))  # type: ignore[arg-type]
        compared += 1
    for k in range(args.slices):
        ours_m = result.slice_metrics[f"bucket-{k}"]
        theirs = per_slice[f"bucket-{k}"]
        for name in COMPARED:
            worst = max(worst, abs(float(ours_m[name]) - float(theirs[f"bucket_{k}_{name}"])))  # type: ignore[arg-type]
            compared += 1
    ok = worst <= 1e-9

    print(f"rows={args.rows} slices={args.slices} cores={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
    print(f"model's own predict (pyfunc, whole set):       {own_predict:8.3f} s")
    print(f"mlflow.models.evaluate whole set:              {whole_time:8.3f} s")
    print(f"mlflow.models.evaluate whole set + {args.slices} slices:   {mlflow_total:8.3f} s")
    print(f"ours: validate_version (whole set + slices):   {ours_core:8.3f} s   "
          f"ratio {mlflow_total / ours_core:6.1f}x")
    print(f"ours: + reports + MLflow evaluation run:       {ours_full:8.3f} s   "
          f"ratio {mlflow_total / ours_full:6.1f}x")
    print(f"metric agreement: {compared} values, max |diff| = {worst:.3g} -> "
          f"{'OK (<= 1e-9)' if ok else 'MISMATCH'}")
    print(f"verdict: {result.verdict.value}")

    def by_hand() -> float:
        import pandas as pd
        from sklearn import metrics as skm

        t = time.perf_counter()
        frame = pd.read_parquet(model_dir / "test.parquet")
        sk = mlflow.sklearn.load_model(version.uri)
        proba = sk.predict_proba(frame[features])[:, 1]
        pred = (proba >= 0.5).astype(int)
        y = frame["target"].to_numpy()
        parts = [np.ones(len(frame), dtype=bool)] + [(frame["bucket"] == k).to_numpy()
                                                     for k in range(args.slices)]
        for mask in parts:
            yt, yp, pp = y[mask], pred[mask], proba[mask]
            skm.accuracy_score(yt, yp), skm.precision_score(yt, yp), skm.recall_score(yt, yp)
            skm.f1_score(yt, yp), skm.roc_auc_score(yt, pp), skm.log_loss(yt, pp)
            skm.confusion_matrix(yt, yp)
        return time.perf_counter() - t

    def evaluate() -> float:
        t = time.perf_counter()
        with mlflow.start_run():
            mlflow.models.evaluate(pyfunc, X, targets="target", model_type="classifier",
                                   evaluators=["default"], evaluator_config=cfg)
            for k in range(args.slices):
                part = big[big["bucket"] == k].drop(columns=["bucket"])
                mlflow.models.evaluate(pyfunc, part, targets="target", model_type="classifier",
                                       evaluators=["default"], evaluator_config={
                                           "default": {**cfg["default"], "metric_prefix": f"bucket_{k}_"}})
        return time.perf_counter() - t

    def validate() -> float:
        t = time.perf_counter()
        validate_version(spec, yaml_path, version, None, no_latency)
        return time.perf_counter() - t

    sides = {"ours": validate, "mlflow.models.evaluate": evaluate, "same work by hand": by_hand}
    vs_evaluate, vs_hand = [], []
    for r in range(args.rounds):
        times = {side: sides[side]() for side in order(r, list(sides))}
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.3f} s" for k, v in times.items()), flush=True)
        vs_evaluate.append(times["mlflow.models.evaluate"] / times["ours"])
        vs_hand.append(times["same work by hand"] / times["ours"])
    case = f"{args.rows:,} rows, {args.slices} slices"
    write_rows(args.json, [
        ratio_row("validation", case, "peer time / ours", "mlflow.models.evaluate (whole + per slice)",
                  vs_evaluate, same_work=False),
        ratio_row("validation", case, "peer time / ours",
                  "read + load + one predict_proba + sklearn.metrics per slice", vs_hand, same_work=True)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
