"""Multiruns as users run them: one MLflow parent per sweep, a summary, failures and launchers.

Every test runs the real ``python -m ktt -m ...`` on the ~3,000-row ICD sample in
its own working directory (its own ``mlflow.db``, ``.ktt/cache`` and ``multirun/``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, mlflow_client, mlflow_runs, run_cli

SMALL = ["progress=false", "plots=false", "n_jobs=1"]


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An initialised, empty MLflow sqlite store to copy into a test's cwd.

    Creating MLflow's schema takes ~10 s here; the parallel-jobs test starts from
    a missing store instead, as a fresh checkout would.
    """
    folder = tmp_path_factory.mktemp("store")
    mlflow_client(folder).search_experiments()
    return folder / "mlflow.db"


def data(icd_sample) -> list[str]:
    return ["dataset=file", f"dataset.path={icd_sample}"]


def sweep_runs(cwd: Path):
    """(parent, children) of the only sweep in ``cwd``."""
    runs = mlflow_runs(cwd)
    (parent,) = [r for r in runs if r.data.tags.get("ktt.sweep.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == len(children) + 1
    return parent, sorted(children, key=lambda r: int(r.data.tags["ktt.sweep.job"]))


def sweep_dir(cwd: Path) -> Path:
    (folder,) = list((cwd / "multirun").glob("*/*"))
    return folder


# --------------------------------------------------------------- basic launcher
@pytest.fixture(scope="module")
def grid(icd_sample, empty_store, tmp_path_factory):
    """A 2 x 2 grid on the basic launcher; the two ``min_df=100000`` jobs fail with a KttError."""
    cwd = tmp_path_factory.mktemp("grid")
    shutil.copy(empty_store, cwd / "mlflow.db")
    result = run_cli("-m", "loss=hinge,modified_huber", "min_df=2,100000", *data(icd_sample), *SMALL,
                     cwd=cwd, check=False)
    return cwd, result


def test_grid_sweep_nests_every_job_under_one_parent_and_tags_the_best(grid):
    cwd, result = grid
    parent, children = sweep_runs(cwd)
    assert [json.loads(c.data.tags["ktt.sweep.overrides"])[:2] for c in children] == [
        ["loss=hinge", "min_df=2"], ["loss=hinge", "min_df=100000"],
        ["loss=modified_huber", "min_df=2"], ["loss=modified_huber", "min_df=100000"]]
    assert all(c.data.tags["ktt.sweep"] == parent.info.run_id for c in children)
    assert parent.data.tags["ktt.sweep"] == parent.info.run_id
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert {c.data.params["min_df"] for c in finished} == {"2"} and len(finished) == 2
    best = max(finished, key=lambda c: c.data.metrics["val_leaf_accuracy"])
    assert [c.info.run_id for c in children if c.data.tags.get("ktt.sweep.best") == "true"] == [best.info.run_id]
    assert parent.data.tags["ktt.sweep.best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_val_leaf_accuracy"] == best.data.metrics["val_leaf_accuracy"]
    assert parent.data.params["best.loss"] == best.data.params["loss"] and parent.data.params["best.min_df"] == "2"
    # the summary: ranked by the objective, best first, printed and kept
    table = result.stdout[result.stdout.index("ranked by val_leaf_accuracy"):]
    lines = [line for line in table.splitlines() if line.split()[:1] in (["1"], ["2"], ["-"])]
    assert lines[0].startswith("1") and best.info.run_id in lines[0] and lines[1].startswith("2")
    assert (sweep_dir(cwd) / "summary.txt").read_text().strip() in result.stdout
    artifacts = {a.path for a in mlflow_client(cwd).list_artifacts(parent.info.run_id)}
    assert {"summary.txt", "multirun.yaml"} <= artifacts


def test_only_the_best_jobs_keep_their_model_files(grid):
    """``keep_models=best`` (the default): a finished job below the best loses its checkpoint and MLflow
    model, and says so; the best job's model loads; every job keeps its metrics and other artifacts."""
    from ktt.errors import KttError
    from ktt.tracking import load_model

    cwd, _ = grid
    parent, children = sweep_runs(cwd)
    client = mlflow_client(cwd)
    finished = [c for c in children if c.info.status == "FINISHED"]
    best = max(c.data.metrics["val_leaf_accuracy"] for c in finished)
    for run in finished:
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        models = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                             filter_string=f"source_run_id = '{run.info.run_id}'")
        assert "hydra" in artifacts and "val_leaf_accuracy" in run.data.metrics
        if run.data.metrics["val_leaf_accuracy"] == best:
            assert "checkpoint" in artifacts and len(models) == 1 and "ktt.models_deleted" not in run.data.tags
            assert load_model(run.info.run_id, tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}").predict(["fracture"])
        else:
            assert "checkpoint" not in artifacts and not models
            with pytest.raises(KttError, match=rf"^run {run.info.run_id} has no model files any more: its sweep "
                                               r"deleted them \(val_leaf_accuracy .* keep_models=all$"):
                load_model(run.info.run_id, tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
            assert run.data.tags["ktt.models_deleted"].endswith("is worse than the sweep's best "
                                                                 f"{best:.6g} (keep_models=best)")
    assert any("ktt.models_deleted" in run.data.tags for run in finished) or len({
        run.data.metrics["val_leaf_accuracy"] for run in finished}) == 1


def test_a_failed_job_does_not_stop_the_others_and_is_named(grid):
    cwd, result = grid
    parent, children = sweep_runs(cwd)
    failed = [c for c in children if c.info.status == "FAILED"]
    assert sorted(c.data.tags["ktt.sweep.job"] for c in failed) == ["1", "3"]
    assert all(c.data.tags["ktt.error"] == "min_df=100000 is larger than the 2400 training texts; lower min_df"
               for c in failed)
    assert "failed: job 1 (loss=hinge min_df=100000): min_df=100000 is larger" in result.stdout
    # a grid with a failed job fails: status 1, one line, no traceback; the parent run says why
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ktt: error: 2 of 4 sweep jobs failed: job 1 (loss=hinge min_df=100000), job 3 (loss=modified_huber min_df=100000)")
    assert "Traceback" not in result.stderr
    assert parent.info.status == "FAILED" and parent.data.tags["ktt.error"].startswith("2 of 4 sweep jobs failed")


def test_jobs_that_prune_the_same_run_at_once_all_succeed(empty_store, tmp_path):
    """Jobs ending together delete the same worse run's model files at the same moment: none of them fails."""
    from concurrent.futures import ThreadPoolExecutor

    from ktt.sweep.job import SweepParent
    from ktt.tracking.sweep import prune_models

    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow_client(tmp_path)
    experiment = client.create_experiment("race", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment).info.run_id
    files = tmp_path / "files"
    for index in range(300):  # a checkpoint of many files: a delete that takes a while
        (files / f"{index // 30}").mkdir(parents=True, exist_ok=True)
        (files / f"{index // 30}" / f"{index}.bin").write_bytes(b"x" * 64)
    runs = {}
    for accuracy in (0.9, 0.5, 0.4):
        run = client.create_run(experiment, tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_metric(run, "val_leaf_accuracy", accuracy)
        client.log_artifacts(run, str(files), "checkpoint")
        model = client.create_logged_model(experiment, source_run_id=run)
        client.log_model_artifacts(model.model_id, str(files))
        client.set_terminated(run)
        runs[accuracy] = run
    sweep = SweepParent(run_id=parent, experiment_id=experiment, tracking_uri=uri, sweep_dir=str(tmp_path),
                        objective="val_leaf_accuracy", keep_models="best")
    with ThreadPoolExecutor(4) as pool:
        pruned = list(pool.map(lambda _: prune_models(sweep), range(4)))  # raises what a pruner raised
    assert all(set(ids) <= {runs[0.5], runs[0.4]} for ids in pruned)
    for accuracy, run in runs.items():
        artifacts = {a.path for a in client.list_artifacts(run)}
        models = client.search_logged_models(experiment_ids=[experiment], filter_string=f"source_run_id = '{run}'")
        assert ("checkpoint" in artifacts, len(models)) == ((True, 1) if accuracy == 0.9 else (False, 0))
        assert ("ktt.models_deleted" in client.get_run(run).data.tags) == (accuracy != 0.9)


# -------------------------------------------------------------- joblib launcher
def test_parallel_jobs_share_the_warmed_cache_and_a_fresh_sqlite_store(icd_sample, tmp_path):
    result = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "loss=hinge,modified_huber",
                     "min_df=2", "keep_models=all", *data(icd_sample), *SMALL, cwd=tmp_path)
    parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED" and [c.info.status for c in children] == ["FINISHED", "FINISHED"]
    client = mlflow_client(tmp_path)  # keep_models=all: every job keeps its checkpoint
    assert all("checkpoint" in {a.path for a in client.list_artifacts(c.info.run_id)} for c in children)
    assert all("val_leaf_accuracy" in c.data.metrics and c.data.params["loss"] for c in children)
    first, second = children
    assert first.info.start_time < second.info.end_time and second.info.start_time < first.info.end_time, \
        "the two jobs did not run at the same time"
    # the data was adapted and preprocessed once, by the sweep's process, before the jobs started
    assert result.stdout.count("Adapting dataset 'icd_sample'") == 1
    for log in sweep_dir(tmp_path).glob("*/ktt.log"):
        text = log.read_text()
        assert "Using the cached intermediate dataset" in text and "Adapting dataset" not in text
    preprocessed = list((tmp_path / ".ktt" / "cache").glob("icd_sample/*/preprocessed/*.parquet"))
    assert len(preprocessed) == 3
    assert max(p.stat().st_mtime for p in preprocessed) * 1000 < min(c.info.start_time for c in children)


# ------------------------------------------------------------ submitit launcher
def test_submitit_local_runs_jobs_in_their_own_processes(icd_sample, empty_store, tmp_path):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    # loss=foo fails in its job before it opens a run: the sweep still records it under the parent
    result = run_cli("-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "loss=hinge,foo",
                     "min_df=2", *data(icd_sample), *SMALL, cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    parent, (good, bad) = sweep_runs(tmp_path)
    assert good.info.status == "FINISHED" and good.data.tags["ktt.sweep"] == parent.info.run_id
    assert bad.info.status == "FAILED" and bad.data.tags["ktt.error"].startswith("invalid loss='foo'")
    assert "failed: job 1 (loss=foo): invalid loss='foo'" in result.stdout
    assert list(sweep_dir(tmp_path).glob(".submitit/*/*_log.out"))


def test_slurm_launcher_config_composes(tmp_path):
    result = run_cli("hydra/launcher=slurm", "--cfg", "hydra", cwd=tmp_path)
    assert "_target_: hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in result.stdout
    assert "array_parallelism: 32" in result.stdout


# ------------------------------------------------------------------- two models
@pytest.mark.skipif(not (ROOT / "conf" / "model" / "tfidf_hsgd.yaml").exists(),
                    reason="conf/model/tfidf_hsgd.yaml has not landed yet")
def test_sweep_over_two_models_and_two_losses(icd_sample, empty_store, tmp_path):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    result = run_cli("-m", "model=tfidf_lsgd,tfidf_hsgd", "loss=hinge,modified_huber", "min_df=2",
                     *data(icd_sample), *SMALL, cwd=tmp_path)
    parent, children = sweep_runs(tmp_path)
    assert [c.info.status for c in children] == ["FINISHED"] * 4 and parent.info.status == "FINISHED"
    assert sorted(c.data.tags["mlflow.runName"] for c in children) == ["tfidf_hsgd"] * 2 + ["tfidf_lsgd"] * 2
    assert "model=tfidf_hsgd loss=hinge" in result.stdout and "best: job" in result.stdout
