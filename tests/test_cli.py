"""The real CLI, as a user runs it, with MLflow's default store in a temp directory."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import default_sigint, cli_env, mlflow_client, mlflow_runs, run_cli, shared_data

SMALL = ["dataset=file", "min_df=2", "progress=false"]


@pytest.fixture(scope="module")
def hinge_run(icd_sample, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("hinge")
    result = run_cli("model=tfidf_lsgd", "loss=hinge", *SMALL, f"dataset.path={icd_sample}", "reference=true", cwd=cwd)
    return cwd, result


def test_train_run_is_finished_with_params_metrics_and_artifacts(hinge_run):
    cwd, result = hinge_run
    (run,) = mlflow_runs(cwd)
    assert run.info.status == "FINISHED"
    assert run.data.params["loss"] == "hinge"
    assert run.data.params["model.loss"] == "hinge"
    assert run.data.params["dataset.name"] == "icd_sample"
    assert int(run.data.params["data.train_size"]) == 2400
    # what fitting decided for the "auto" settings: ICD names share the texts' words
    assert run.data.params["label_names"] == "auto" and run.data.params["fitted_label_names"] == "True"
    assert run.data.params["fitted_min_df"] == "2" and run.data.params["fitted_char_ngrams"] == "None"
    metrics = run.data.metrics
    for name in ["leaf_accuracy", "leaf_precision_weighted", "leaf_macro_f1", "leaf_auprc_micro", "level1_accuracy",
                 "level2_accuracy", "level3_accuracy", "hierarchical_precision", "hierarchical_recall",
                 "hierarchical_f1", "path_consistency"]:
        assert f"test_{name}" in metrics and f"val_{name}" in metrics
    assert metrics["test_leaf_accuracy"] > 0.5
    assert metrics["test_level1_accuracy"] >= metrics["test_leaf_accuracy"]
    assert metrics["test_path_consistency"] == 1.0
    experiment = mlflow_client(cwd).get_experiment(run.info.experiment_id)
    assert experiment.name == "icd_sample"
    tags = run.data.tags
    assert tags["ktt.version.scikit-learn"] and tags["ktt.python"] and len(tags["ktt.checkpoint_sha256"]) == 64
    assert "data.warnings" not in tags
    artifacts = {a.path for a in mlflow_client(cwd).list_artifacts(run.info.run_id)}
    assert {"checkpoint", "hierarchy.json", "hydra", "plots", "reference"} <= artifacts
    plots = {a.path for a in mlflow_client(cwd).list_artifacts(run.info.run_id, "plots")}
    assert {"plots/confusion_level1.png", "plots/pr_curve.png"} <= plots
    hydra_files = {a.path for a in mlflow_client(cwd).list_artifacts(run.info.run_id, "hydra")}
    assert {"hydra/config.yaml", "hydra/overrides.yaml"} <= hydra_files
    # the printed report: a metric table and how to open the run
    assert "leaf_accuracy" in result.stdout and run.info.run_id in result.stdout and "mlflow ui" in result.stdout


def test_a_warning_about_the_data_is_on_the_run(tmp_path):
    """Labels joined by ">" read with the default " > ": the adapter's warning is the run's tag data.warnings."""
    names = {"Food>Snacks>Chips": "salted potato chips", "Food>Drinks>Tea": "green tea bags",
             "Home>Garden>Hose": "garden hose"}
    path = tmp_path / "joined.csv"
    path.write_text("text,category\n" + "".join(f"{text} {i},{label}\n" for label, text in names.items()
                                                  for i in range(30)))
    result = run_cli("model=tfidf_lsgd", *SMALL, f"dataset.path={path}", "plots=false", cwd=tmp_path)
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED" and "label paths have one level" in result.stderr + result.stdout
    assert run.data.tags["data.warnings"] == (
        "90 of 90 label paths have one level whose label contains '>' (e.g. 'Food>Snacks>Chips'): if these are "
        "paths, their levels were not split; set the label delimiter (dataset.delimiter for a file)")


def test_logged_model_loads_from_the_run_and_predicts(hinge_run):
    import mlflow

    from ktt import tracking
    from ktt.preprocess import preprocess

    cwd, _ = hinge_run
    (run,) = mlflow_runs(cwd)
    model = tracking.load_model(run.info.run_id, tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    assert model.loss == "hinge" and model.hierarchy.depth == 3
    raw = ["Cholera due to Vibrio cholerae", "Typhoid fever with heart involvement"]
    predictions = model.predict(preprocess(raw)).tolist()
    assert len(predictions) == 2
    mlflow.set_tracking_uri(f"sqlite:///{cwd / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert pyfunc.predict(raw) == predictions
    reference = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="reference/reference_set.parquet",
        tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    import pandas as pd
    frame = pd.read_parquet(reference)
    assert frame.columns[0] == "targets" and frame.columns[1] == "F0"
    assert sum(c.startswith("C") for c in frame.columns) == len(model.classes_)


def test_logged_model_carries_its_code_as_ktt_and_ktt_models(hinge_run, tmp_path):
    cwd, _ = hinge_run
    (run,) = mlflow_runs(cwd)
    script = f"""
import json, mlflow.pyfunc
mlflow.set_tracking_uri({f"sqlite:///{cwd / 'mlflow.db'}"!r})
model = mlflow.pyfunc.load_model("runs:/{run.info.run_id}/model")
import ktt, ktt_models
print(json.dumps([ktt.__file__, ktt_models.__file__, model.predict(["Cholera due to Vibrio cholerae"])]))
"""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "MLFLOW"))}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ktt_file, models_file, prediction = json.loads(result.stdout.strip().splitlines()[-1])
    code = os.path.dirname(os.path.dirname(ktt_file))  # the model's own code folder, first on the path
    assert code.endswith("code") and models_file == os.path.join(code, "ktt_models", "__init__.py")
    assert len(prediction) == 1


def test_same_config_same_metrics_and_cached_data(hinge_run, icd_sample):
    cwd, _ = hinge_run
    result = run_cli("model=tfidf_lsgd", "loss=hinge", *SMALL, f"dataset.path={icd_sample}", cwd=cwd)
    assert "Using the cached intermediate dataset" in result.stdout + result.stderr
    first, second = sorted(mlflow_runs(cwd), key=lambda r: r.info.start_time)
    for name in ("test_leaf_accuracy", "test_hierarchical_f1", "val_leaf_macro_f1"):
        assert first.data.metrics[name] == second.data.metrics[name]


@pytest.mark.parametrize(
    "args, message",
    [
        (["loss=foo"], "ktt: error: invalid loss='foo' (allowed: hinge, log_loss, log, modified_huber, squared_hinge, perceptron)"),
        (["min_df=-1"], "ktt: error: invalid min_df=-1 (allowed: auto or an integer in [1, inf] or a number in (0, 1])"),
        (["los=hinge"], "ktt: error: unknown key 'los' (keys at the top level: "),
        (["model=nope"], "ktt: error: unknown model 'nope' (available: "),
        (["dataset.pth=x"], "ktt: error: unknown key 'dataset.pth' (keys under 'dataset': "),
    ],
)
def test_bad_config_fails_before_reading_data(tmp_path, icd_sample, args, message):
    result = run_cli(*SMALL, f"dataset.path={icd_sample}", *args, cwd=tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not (tmp_path / ".ktt").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["dataset.text_col=title"], "ktt: error: column 'title' not found in "),
        (["dataset.depth=5"], "ktt: error: depth=5 is deeper than the data: the longest label path has 3 level(s)"),
        (["min_df=100000"], "ktt: error: min_df=100000 is larger than the 2400 training texts; lower min_df"),
    ],
)
def test_bad_data_fails_with_one_line_and_a_failed_run(tmp_path, icd_sample, args, message):
    result = run_cli(*SMALL, f"dataset.path={icd_sample}", "plots=false", *args, cwd=tmp_path, check=False)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("ktt: error")]
    assert errors and errors[0].startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FAILED"
    assert run.data.tags["ktt.error"] == errors[0].removeprefix("ktt: error: ")


def test_cfg_job_shows_overrides_without_heavy_imports(tmp_path):
    code = (
        "import sys; sys.argv = ['ktt', 'loss=hinge', '--cfg', 'job']\n"
        "from ktt.__main__ import main\n"
        "main()\n"
        "heavy = [m for m in ('mlflow', 'sklearn', 'bentoml', 'skl2onnx') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "loss: hinge" in result.stdout
    assert "HEAVY []" in result.stdout


def test_help_lists_the_config_groups(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert "tfidf_lsgd" in result.stdout and "icd10cm" in result.stdout and "none" in result.stdout
    for group in ("model: ", "dataset: ", "export: "):
        assert group in result.stdout


def test_ctrl_c_while_fitting_is_one_line_and_a_killed_run(tmp_path):
    data = shared_data("icd10cm", "icd10cm.csv")  # the full file, so that the fit lasts
    output = tmp_path / "output.txt"
    with open(output, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "ktt", "dataset=file", f"dataset.path={data}",
                                    "model=tfidf_lsgd", "progress=false", "plots=false", "n_jobs=1"], cwd=tmp_path,
                                   stdout=log,
                                   stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True,
                                   preexec_fn=default_sigint)
        try:
            deadline = time.monotonic() + 300
            while "fitting tfidf_lsgd ..." not in output.read_text():
                assert process.poll() is None and time.monotonic() < deadline, output.read_text()
                time.sleep(0.2)
            time.sleep(1)
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it: to the whole process group
            assert process.wait(timeout=120) == 130
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    text = output.read_text()
    assert "fitting tfidf_lsgd done" not in text, text
    assert text.rstrip().endswith("ktt: error: interrupted") and "Traceback" not in text, text
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "KILLED" and run.data.tags["ktt.error"] == "interrupted"
