"""Tuning: ``python -m ktt -m hparams_search=...`` with ktt's Optuna sweeper (optuna >= 4).

The search space and experiment conversions are checked in-process; the rest
runs the real CLI: a study persisted in sqlite, interrupted and resumed; the
validation-only rule; a PostgreSQL study joined by two sweeps.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import ROOT, default_sigint, SHARED_DATA, mlflow_client, mlflow_runs, run_cli

SMALL = ["progress=false", "n_jobs=1", "min_df=choice(1,2)"]
SEARCH = ["-m", "hparams_search=tfidf_lsgd"]


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An initialised, empty MLflow sqlite store to copy into a test's cwd (its schema takes ~10 s to create)."""
    folder = tmp_path_factory.mktemp("store")
    mlflow_client(folder).search_experiments()
    return folder / "mlflow.db"


def workdir(path: Path, empty_store: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_store, path / "mlflow.db")
    return path


def data(icd_sample) -> list[str]:
    return ["dataset=file", f"dataset.path={icd_sample}"]


def sweeps(cwd: Path) -> list:
    """[(parent, children)] of every sweep in ``cwd``, oldest first."""
    runs = mlflow_runs(cwd)
    parents = sorted((r for r in runs if r.data.tags.get("ktt.sweep.role") == "parent"), key=lambda r: r.info.start_time)
    return [(p, [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]) for p in parents]


def trials(optuna_db: Path) -> list[tuple[int, str]]:
    """(number, state) of the trials in an Optuna sqlite storage."""
    with sqlite3.connect(optuna_db) as connection:
        return connection.execute("select number, state from trials order by number").fetchall()


# ------------------------------------------------------------------ in process
def test_search_space_maps_hydra_grammar_to_optuna_distributions():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hydra_plugins.ktt_optuna_sweeper._search_space import SearchSpaceError, as_override, search_space

    parser = OverridesParser.create()
    params = {"max_iter": "choice(500, 1000, 2000)", "min_df": "int(interval(1, 128))", "loss": "hinge",
              "alpha": "tag(log, interval(1e-5, 1e-1))", "step": "range(1, 10, 3)", "seed": 3}
    space, fixed = search_space(params, ["min_df=tag(log, int(interval(1, 64)))", "dataset=file"], parser)
    assert space == {
        "max_iter": CategoricalDistribution([500, 1000, 2000]),
        "min_df": IntDistribution(1, 64, log=True),  # the command line wins
        "alpha": FloatDistribution(1e-5, 0.1, log=True),
        "step": IntDistribution(1, 7, step=3),
    }
    assert fixed == {"loss": "loss=hinge", "seed": "seed=3", "dataset": "dataset=file"}
    assert as_override("name", "a b,c") == "name=a\\ b\\,c" and as_override("alpha", 1e-05) == "alpha=1e-05"
    with pytest.raises(SearchSpaceError, match="needs low > 0"):
        search_space({"alpha": "tag(log, interval(0.0, 1.0))"}, [], parser)


def test_a_parameter_is_sampled_only_for_the_learners_it_belongs_to():
    """``conditions`` (as the hparams_search configs set them): an svm trial gets C and no loss or alpha, an sgd
    trial the reverse; a learner set on the command line decides for every trial; a bad condition is one line."""
    import optuna
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hydra_plugins.ktt_optuna_sweeper._search_space import (SearchSpaceError, checked_conditions, search_space,
                                                                suggest_all)

    parser = OverridesParser.create()
    config = OmegaConf.load(ROOT / "conf" / "hparams_search" / "tfidf_hsgd.yaml")
    params, conditions = config.hydra.sweeper.params, OmegaConf.to_container(config.hydra.sweeper.conditions)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def sampled(arguments):
        space, fixed = search_space(dict(params), arguments, parser)
        values = {o.get_key_element(): o.get_value_element_as_str() for o in parser.parse_overrides(list(fixed.values()))}
        trials = []
        for _ in range(12):
            trial = study.ask()
            suggest_all(trial, space, checked_conditions(conditions, space, values), values)
            trials.append(trial.params)
            study.tell(trial, 0.0)
        return trials

    trials = sampled([])
    assert {t["learner"] for t in trials} == {"sgd", "svm"}
    for t in trials:
        assert ({"loss", "alpha"} <= set(t) and "C" not in t) if t["learner"] == "sgd" else \
            ("C" in t and not {"loss", "alpha"} & set(t))
    assert all("C" in t and "loss" not in t and "learner" not in t for t in sampled(["learner=svm"]))
    with pytest.raises(SearchSpaceError, match=r"^ktt: error: hydra.sweeper.conditions.C depends on solver, which is "
                                               r"neither searched"):
        checked_conditions({"C": {"solver": ["x"]}}, {"C": None}, {})
    with pytest.raises(SearchSpaceError, match=r"conditions.C must map a parameter to the values"):
        checked_conditions({"C": ["svm"]}, {"C": None}, {})


def test_best_trial_becomes_an_experiment_config():
    from hydra_plugins.ktt_optuna_sweeper._experiment import experiment_config, experiment_name

    overrides = ["hparams_search=tfidf_lsgd", "dataset=file", "dataset.path=/data/x.csv", "loss=hinge", "min_df=2"]
    choices = {"model": "tfidf_lsgd", "dataset": "file", "hparams_search": "tfidf_lsgd", "export": "none",
               "hydra/launcher": "basic"}
    assert experiment_config(overrides, choices) == {
        "defaults": [{"override /model": "tfidf_lsgd"}, {"override /dataset": "file"}, {"override /export": "none"}],
        "dataset": {"path": "/data/x.csv"}, "loss": "hinge", "min_df": 2,
    }
    assert experiment_name("tfidf_lsgd-icd sample") == "best_tfidf_lsgd-icd_sample"


# ----------------------------------------------------------------------- CLI
def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    """``python -m ktt`` in its own process group (so a test can Ctrl-C it), output to files in ``cwd``."""
    env = {**os.environ, "KTT_SHARED_DATA": str(SHARED_DATA)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("KTT_OPTUNA_STORAGE", None)
    return subprocess.Popen([sys.executable, "-m", "ktt", *args], cwd=cwd, env=env, start_new_session=True, preexec_fn=default_sigint,
                            stdout=open(cwd / "stdout.txt", "w"), stderr=open(cwd / "stderr.txt", "w"))


def test_interrupted_search_keeps_finished_trials_and_resumes_numbering(icd_sample, empty_store, tmp_path):
    cwd = workdir(tmp_path, empty_store)
    args = [*SEARCH, "hydra.sweeper.storage=sqlite:///optuna.db", "hydra.sweeper.study_name=resumable",
            *data(icd_sample), *SMALL]
    process = start_cli(*args, "hydra.sweeper.n_trials=20", cwd=cwd)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            if any(state == "COMPLETE" for _, state in trials(cwd / "optuna.db")):
                break
        except sqlite3.Error:
            continue  # not created yet, or busy
    assert process.poll() is None, (cwd / "stderr.txt").read_text()
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it: to the whole process group
    assert process.wait(timeout=180) == -signal.SIGINT
    assert "ktt: interrupted" in (cwd / "stderr.txt").read_text()

    before = trials(cwd / "optuna.db")
    assert before[0] == (0, "COMPLETE") and all(state in ("COMPLETE", "FAIL") for _, state in before), before
    ((parent, children),) = sweeps(cwd)
    assert parent.info.status == "KILLED"
    statuses = [c.info.status for c in children]
    assert "RUNNING" not in statuses and statuses.count("FINISHED") >= sum(s == "COMPLETE" for _, s in before)
    assert set(statuses) <= {"FINISHED", "KILLED", "FAILED"}
    assert "best of Optuna study 'resumable'" in (cwd / "stdout.txt").read_text()  # the summary still ran

    # the same command resumes the study: trial numbers continue after the interrupted ones
    result = run_cli(*args, "hydra.sweeper.n_trials=1", cwd=cwd)
    after = trials(cwd / "optuna.db")
    assert after[:len(before)] == before and after[len(before):] == [(len(before), "COMPLETE")]
    assert f"{len(before)} trial(s) so far" in result.stdout
    assert sweeps(cwd)[1][0].info.status == "FINISHED"


def adapt_in_process(overrides: list[str], cache_dir: Path):
    """The intermediate dataset ``python -m ktt <overrides>`` would use, adapted here."""
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    from ktt.cli import register_resolvers

    register_resolvers()
    with initialize_config_module("ktt.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return instantiate(cfg.dataset, _convert_="all").adapt(cache_dir)


def test_tuning_never_reads_the_test_split(icd_sample, empty_store, tmp_path):
    cwd = workdir(tmp_path, empty_store)
    dataset = adapt_in_process(data(icd_sample), cwd / ".ktt" / "cache")
    (dataset.path / "test.parquet").unlink()  # reading the test split would now fail the trial
    result = run_cli(*SEARCH, "hydra.sweeper.n_trials=2", *data(icd_sample), *SMALL, cwd=cwd)

    ((parent, children),) = sweeps(cwd)
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED"] and parent.info.status == "FINISHED"
    for child in children:
        assert "val_leaf_accuracy" in child.data.metrics
        assert not [name for name in child.data.metrics if name.startswith("test_")]
        assert child.data.params["evaluate_test"] == "False"
    assert not (dataset.path / "test.parquet").exists()
    assert not (dataset.path / "preprocessed" / "test.parquet").exists()

    # the best parameters: printed, on the parent run, and a reusable experiment config
    (folder,) = list((cwd / "multirun").glob("*/*"))
    results = OmegaConf.to_container(OmegaConf.load(folder / "optimization_results.yaml"))
    best = results["best_params"]
    learners_own = {"loss", "alpha"} if best["learner"] == "sgd" else {"C"}  # hydra.sweeper.conditions
    assert set(best) == {"learner", "min_df", "word_ngrams", "sublinear_tf", "char_ngrams", "label_names"} | learners_own
    assert {k: parent.data.params[f"best.{k}"] for k in best} == {k: str(v) for k, v in best.items()}
    assert f"best of Optuna study 'tfidf_lsgd-icd_sample' (trial {results['best_trial']}" in result.stdout
    experiment = folder / "experiment" / "best_tfidf_lsgd-icd_sample.yaml"
    assert experiment.read_text().startswith("# @package _global_\n")
    assert "experiment/best_tfidf_lsgd-icd_sample.yaml" in {
        a.path for a in mlflow_client(cwd).list_artifacts(parent.info.run_id, "experiment")}
    composed = run_cli("-cd", str(folder), "+experiment=best_tfidf_lsgd-icd_sample", "--cfg", "job", cwd=cwd)
    job = OmegaConf.create(composed.stdout)
    assert {key: job[key] for key in best} == best
    assert job.evaluate_test is True and job.dataset.path == str(icd_sample)


def test_two_sweeps_on_two_machines_share_one_postgresql_study(icd_sample, empty_store, tmp_path, postgres_url):
    import optuna

    env = {"KTT_OPTUNA_STORAGE": postgres_url}  # the password stays out of Hydra's files
    args = [*SEARCH, "hydra.sweeper.study_name=shared", *data(icd_sample), *SMALL]
    first = run_cli(*args, "hydra.sweeper.n_trials=2", cwd=workdir(tmp_path / "a", empty_store), env=env)
    second = run_cli(*args, "hydra.sweeper.n_trials=1", cwd=workdir(tmp_path / "b", empty_store), env=env)

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    assert [(t.number, t.state.name) for t in study.trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    assert "2 trial(s) so far" in second.stdout and "postgresql+psycopg://ktt:***@" in second.stdout
    assert f"best trial {study.best_trial.number} of 3" in second.stdout
    for text in (first.stdout, first.stderr, second.stdout, second.stderr,
                 *(p.read_text() for p in tmp_path.rglob("*.yaml"))):
        assert "s3cret-pw" not in text


def test_a_search_never_runs_a_configuration_twice(icd_sample, empty_store, tmp_path):
    """Two configurations in the space, four trials: two jobs run, the repeats get the earlier values."""
    cwd = workdir(tmp_path, empty_store)
    fixed = ["learner=sgd", "C=1.0", "loss=hinge", "alpha=1e-4", "word_ngrams=1", "sublinear_tf=false",
             "char_ngrams=null", "label_names=false"]
    result = run_cli(*SEARCH, "hydra.sweeper.n_trials=4", "hydra.sweeper.sampler=random", *data(icd_sample),
                     *SMALL, *fixed, cwd=cwd)
    ((parent, children),) = sweeps(cwd)
    assert sorted(c.data.params["min_df"] for c in children) == ["1", "2"]  # each configuration ran once
    (folder,) = list((cwd / "multirun").glob("*/*"))
    records = OmegaConf.to_container(OmegaConf.load(folder / "optimization_results.yaml"))["trials"]
    assert len(records) <= 4 and {r["params"]["min_df"] for r in records} == {1, 2}
    by_number = {r["number"]: r for r in records}
    for record in records:
        same = [r for r in records if r["params"] == record["params"] and r["state"] == "COMPLETE"]
        assert len({r["value"] for r in same}) == 1  # a repeat carries the value of the run it repeats
    assert len(by_number) == len(records) and result.returncode == 0
