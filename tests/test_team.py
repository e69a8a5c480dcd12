"""Working as a team: a real MLflow tracking server, the Model Registry, concurrent runs, Ray sweeps.

The server is ``mlflow server`` with the tests' throwaway PostgreSQL as its backend
store and served artifacts (``--serve-artifacts``), on 127.0.0.1; every command is
the real CLI talking to it over HTTP. The Ray sweep runs on a local Ray cluster
that the test starts with ``ray start --head`` and stops.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import cli_env, mlflow_runs, run_cli
from ktt.testing import free_port, ray_cluster, stop_process, wait_for

VENV_BIN = Path(sys.executable).parent
#: A small, fast, ONNX-exportable model on the ~3,000-row ICD sample.
SMALL = ["model=tfidf_lsgd", "min_df=2", "char_ngrams=null", "sublinear_tf=false", "progress=false", "plots=false",
         "n_jobs=1"]
#: Files a run must not leave in its working directory when its store is a server.
LOCAL_STORE = ("mlflow.db", "mlruns", "mlartifacts")


def data(icd_sample) -> list[str]:
    return ["dataset=file", f"dataset.path={icd_sample}"]


def create_database(url: str, name: str) -> str:
    """A new database on the PostgreSQL server of ``url``; its URL."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return f"{url.rsplit('/', 1)[0]}/{name}"


class TrackingServer:
    """``mlflow server`` on 127.0.0.1 with a PostgreSQL backend store and served artifacts.

    It allows the Host ``127.0.0.1:<port>`` only (``--allowed-hosts``): the same server
    reached as ``localhost:<port>`` answers ``/health`` but refuses every API call, as a
    server behind a proxy or with authentication refuses a client it does not accept.
    """

    def __init__(self, backend: str, folder: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.refusing_url = f"http://localhost:{self.port}"
        self.artifacts = folder / "artifacts"
        self.log = folder / "server.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", backend, "--serve-artifacts",
                 "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1", "--allowed-hosts", f"127.0.0.1:{self.port}"],
                cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True)

    def healthy(self) -> bool:
        import requests

        if self.process.poll() is not None:
            raise AssertionError(f"mlflow server exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
        try:
            return requests.get(f"{self.url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def client(self):
        import mlflow

        return mlflow.MlflowClient(self.url)


@pytest.fixture(scope="module")
def server(postgres_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    tracking = TrackingServer(create_database(postgres_url, f"mlflow_{uuid.uuid4().hex[:8]}"), folder)
    try:
        wait_for(tracking.healthy, timeout_s=180, step_s=0.5, what="mlflow server up")
        yield tracking
    finally:
        stop_process(tracking.process, timeout_s=5, group=True)


def experiment_runs(client, experiment: str) -> list:
    """Every run of ``experiment``, oldest first."""
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    return client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])


def assert_served(server: TrackingServer, run, tmp_path: Path) -> None:
    """The run is FINISHED and its checkpoint downloads through the server, matching its sha256."""
    import mlflow

    assert run.info.status == "FINISHED", run.data.tags.get("ktt.error")
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="checkpoint/model.joblib",
                                                dst_path=str(tmp_path / run.info.run_id), tracking_uri=server.url)
    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == run.data.tags["ktt.checkpoint_sha256"]
    assert {a.path for a in server.client().list_artifacts(run.info.run_id)} >= {"checkpoint", "hydra",
                                                                                  "hierarchy.json"}


def assert_parent_served(server: TrackingServer, parent, tmp_path: Path) -> None:
    """A sweep's parent run is FINISHED and its summary downloads through the server."""
    import mlflow

    assert parent.info.status == "FINISHED", parent.data.tags.get("ktt.error")
    summary = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="summary.txt",
                                                  dst_path=str(tmp_path / parent.info.run_id), tracking_uri=server.url)
    assert f"sweep {parent.info.run_id}: " in Path(summary).read_text()


def assert_nothing_local(cwd: Path) -> None:
    assert not [name for name in LOCAL_STORE if (cwd / name).exists()], sorted(p.name for p in cwd.iterdir())


# ------------------------------------------------------------------ one job and the registry
def test_a_run_on_the_server_is_registered_promoted_and_taken_back_by_alias(server, icd_sample, tmp_path):
    import mlflow

    from ktt.errors import KttError
    from ktt.tracking import load_model

    cwd = tmp_path / "train"
    cwd.mkdir()
    run_cli(*data(icd_sample), *SMALL, "register=true", f"tracking.uri={server.url}", cwd=cwd)
    client = server.client()
    (run,) = experiment_runs(client, "icd_sample")
    assert_served(server, run, tmp_path)
    assert_nothing_local(cwd)

    # a new version of <model>-<dataset>, tagged with the test metrics, data fingerprint and sha256
    name = "tfidf_lsgd-icd_sample"
    (version,) = client.search_model_versions(f"name = '{name}'")
    assert (version.version, version.run_id) == ("1", run.info.run_id)
    assert version.tags["ktt.checkpoint_sha256"] == run.data.tags["ktt.checkpoint_sha256"]
    assert version.tags["ktt.data.fingerprint"] == run.data.params["data.fingerprint"]
    assert float(version.tags["test_leaf_accuracy"]) == run.data.metrics["test_leaf_accuracy"]
    assert not [key for key in version.tags if key.startswith("val_")]
    assert run.data.tags["ktt.registered_model"] == f"{name}/1"

    # promote by alias; every command that takes a run takes the alias or the version
    client.set_registered_model_alias(name, "champion", version.version)
    texts = ["cholera due to vibrio cholerae", "typhoid fever"]
    by_alias = load_model(f"models:/{name}@champion", tracking_uri=server.url)
    by_run = load_model(run.info.run_id, tracking_uri=server.url)
    assert by_alias.predict(texts).tolist() == by_run.predict(texts).tolist()
    # how a user points MLflow's own API at the server (in this process an earlier test may have set
    # MLflow's global URI, which wins over the variable: set it, and put it back)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url)
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")  # the registered model/ is the pyfunc
    finally:
        mlflow.set_tracking_uri(previous)
    assert pyfunc.predict(texts) == by_run.predict(texts).tolist()

    export = run_cli(f"run_id=models:/{name}@champion", "export=onnx", f"tracking.uri={server.url}",
                     *data(icd_sample), *SMALL, cwd=cwd, module="ktt.export")
    assert f"runs:/{run.info.run_id}/export/onnx/model.onnx" in export.stdout
    assert "export/onnx/model.onnx" in {a.path for a in client.list_artifacts(run.info.run_id, "export/onnx")}

    new = cwd / "new.csv"
    new.write_text("id,text\n1,cholera due to vibrio cholerae\n2,typhoid fever\n")
    scored = run_cli(f"run_id=models:/{name}/1", f"input={new}", f"output={cwd / 'scored.csv'}",
                     f"tracking.uri={server.url}", "progress=false", cwd=cwd, module="ktt.predict")
    assert f"models:/{name}/1 (run {run.info.run_id})" in scored.stdout
    assert_nothing_local(cwd)

    # the version's sha256 is checked too: a version that claims another checkpoint is refused
    client.set_model_version_tag(name, "1", "ktt.checkpoint_sha256", "0" * 64)
    with pytest.raises(KttError, match=rf"models:/{name}/1 records checkpoint sha256 000000000000"):
        load_model(f"models:/{name}/1", tracking_uri=server.url)
    unknown = run_cli(f"run_id=models:/{name}@retired", "export=onnx", f"tracking.uri={server.url}", cwd=cwd,
                      module="ktt.export", check=False)
    assert unknown.returncode == 2 and unknown.stderr.startswith(f"ktt: error: no registered model models:/{name}@retired")


# ------------------------------------------------------------------ sweeps on the server
def test_a_joblib_sweep_on_the_server_registers_its_best_job_only(server, icd_sample, tmp_path):
    result = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "loss=hinge,modified_huber",
                     *data(icd_sample), *SMALL, "tracking.experiment=joblib-sweep", "register=true",
                     "tracking.registered_model=sweep-best", f"tracking.uri={server.url}", cwd=tmp_path)
    client = server.client()
    runs = experiment_runs(client, "joblib-sweep")
    (parent,) = [r for r in runs if r.data.tags.get("ktt.sweep.role") == "parent"]
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(jobs) == 2
    assert_parent_served(server, parent, tmp_path)
    (best,) = [job for job in jobs if job.data.tags.get("ktt.sweep.best") == "true"]
    assert_served(server, best, tmp_path)
    (other,) = [job for job in jobs if job is not best]
    # keep_models=best, with two jobs ending about together: the summary deleted the other one's model files
    if other.data.metrics["val_leaf_accuracy"] < best.data.metrics["val_leaf_accuracy"]:
        assert "ktt.models_deleted" in other.data.tags
        assert "checkpoint" not in {a.path for a in client.list_artifacts(other.info.run_id)}
    (version,) = client.search_model_versions("name = 'sweep-best'")
    assert version.run_id == best.info.run_id
    assert version.tags["ktt.checkpoint_sha256"] == best.data.tags["ktt.checkpoint_sha256"]
    assert "registered: models:/sweep-best/1" in result.stdout
    assert_nothing_local(tmp_path)


def test_an_optuna_search_on_the_server_with_a_postgresql_study(server, postgres_url, icd_sample, tmp_path):
    import optuna

    storage = create_database(postgres_url, f"optuna_{uuid.uuid4().hex[:8]}")
    result = run_cli("-m", "hparams_search=tfidf_lsgd", "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=team",
                     *data(icd_sample), "progress=false", "n_jobs=1", "min_df=choice(1,2)",
                     "tracking.experiment=optuna-search", f"tracking.uri={server.url}", cwd=tmp_path,
                     env={"KTT_OPTUNA_STORAGE": storage})
    study = optuna.load_study(study_name="team", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    runs = experiment_runs(server.client(), "optuna-search")
    (parent,) = [r for r in runs if r.data.tags.get("ktt.sweep.role") == "parent"]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 2
    assert_parent_served(server, parent, tmp_path)
    kept = [trial for trial in trials if "ktt.models_deleted" not in trial.data.tags]  # keep_models=best
    assert kept and all(trial.data.metrics["val_leaf_accuracy"] == max(t.data.metrics["val_leaf_accuracy"]
                                                                        for t in trials) for trial in kept)
    for trial in kept:
        assert_served(server, trial, tmp_path)
    for trial in set(trials) - set(kept):
        assert "checkpoint" not in {a.path for a in server.client().list_artifacts(trial.info.run_id)}
    assert sorted(t.value for t in study.trials) == sorted(r.data.metrics["val_leaf_accuracy"] for r in trials)
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert_nothing_local(tmp_path)


# ------------------------------------------------------------------ a server that is down or refuses
@pytest.mark.parametrize("how", ["down", "refuses", "down-sweep"])
def test_a_server_down_or_refusing_is_one_line_and_leaves_nothing(server, icd_sample, tmp_path, how):
    uri = server.refusing_url if how == "refuses" else f"http://127.0.0.1:{free_port()}"
    sweep = ["-m", "loss=hinge,modified_huber"] if how == "down-sweep" else []
    result = run_cli(*sweep, *data(icd_sample), *SMALL, f"tracking.uri={uri}", cwd=tmp_path, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    expected = (rf"ktt: error: the MLflow tracking server tracking\.uri='{uri}' refused \S+ \(HTTP 403: Invalid Host"
                if how == "refuses" else rf"ktt: error: cannot reach the MLflow tracking server {uri} ")
    assert re.match(expected, lines[0]), lines[0]
    assert_nothing_local(tmp_path)
    assert not (tmp_path / ".ktt").exists(), "the data was adapted although the run could not be tracked"


# ------------------------------------------------------------------ a fresh local store
def test_three_runs_started_together_on_a_fresh_sqlite_store_all_finish(icd_sample, tmp_path):
    args = [sys.executable, "-m", "ktt", *data(icd_sample), *SMALL]
    processes = [subprocess.Popen([*args, f"loss={loss}"], cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for loss in ("hinge", "modified_huber", "log_loss")]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], "\n".join(err[-2000:] for _, err in outputs)
    runs = mlflow_runs(tmp_path)
    assert sorted(r.data.params["loss"] for r in runs) == ["hinge", "log_loss", "modified_huber"]
    assert all(r.info.status == "FINISHED" for r in runs)
    from conftest import mlflow_client

    assert {r.info.experiment_id for r in runs} == {mlflow_client(tmp_path).get_experiment_by_name("icd_sample").experiment_id}


# ------------------------------------------------------------------ Ray
@pytest.fixture(scope="module")
def ray_head():
    """A local Ray cluster with 2 CPUs (``ray start --head`` on 127.0.0.1): its address, folder and token."""
    with ray_cluster(num_cpus=2) as cluster:
        yield cluster


def test_a_grid_on_a_ray_cluster_lands_in_one_parent_run(ray_head, icd_sample, tmp_path):
    address, folder, token = ray_head
    result = run_cli("-m", "hydra/launcher=ray", f"hydra.launcher.address={address}", "loss=hinge,modified_huber",
                     "alpha=1e-4,1e-5", *data(icd_sample), *SMALL, cwd=tmp_path, env=token)
    runs = mlflow_runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags.get("ktt.sweep.role") == "parent"]
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 5 and parent.info.status == "FINISHED" and parent.data.tags["ktt.sweep.launcher"] == "ray"
    assert sorted(json.loads(j.data.tags["ktt.sweep.overrides"])[:2] for j in jobs) == [
        ["loss=hinge", "alpha=0.0001"], ["loss=hinge", "alpha=1e-05"],
        ["loss=modified_huber", "alpha=0.0001"], ["loss=modified_huber", "alpha=1e-05"]]
    assert all(j.info.status == "FINISHED" and j.data.tags["ktt.sweep"] == parent.info.run_id for j in jobs)
    assert "4 job(s), 4 finished" in result.stdout
    # each job ran in one of the cluster's workers (their output is in its logs, not the sweep's), in the sweep's folder
    workers = "".join(path.read_text(errors="replace") for path in folder.glob("session_*/logs/worker-*.out"))
    for job in jobs:
        assert f"run {job.info.run_id} " in workers and f"run {job.info.run_id} " not in result.stdout
    assert len(list((tmp_path / "multirun").glob("*/*/*/ktt.log"))) == 4


def test_a_ray_cluster_that_refuses_the_sweep_is_one_line(ray_head, icd_sample, tmp_path):
    address, _, token = ray_head
    wrong = {**token, "RAY_AUTH_TOKEN": "0" * 64}  # Ray retries for ~20 s before it gives up
    result = run_cli("-m", "hydra/launcher=ray", f"hydra.launcher.address={address}", "loss=hinge,modified_huber",
                     *data(icd_sample), *SMALL, cwd=tmp_path, env=wrong, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines[-1].startswith(f"ktt: error: cannot connect to the Ray cluster at {address}"), \
        result.stderr[-3000:]
    assert "Traceback" not in result.stderr

