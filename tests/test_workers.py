"""ktt.workers: fitting jobs on several cores give what one core gives, and fail in one line."""

import functools
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from ktt.errors import KttError
from ktt.workers import forks, run_jobs

needs_fork = pytest.mark.skipif(not forks(), reason="worker processes are forked on Linux only")


def _fit(seed: int):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(400, 30))
    labels = (features[:, 0] + rng.normal(scale=2.0, size=400) > 0).astype(int)
    model = LinearSVC(tol=1e-2, random_state=0).fit(features, labels)
    return seed, model.coef_.copy(), os.getpid()


@needs_fork
def test_processes_give_every_result_of_one_process():
    jobs = [functools.partial(_fit, seed) for seed in range(6)]
    alone = {seed: coef for seed, coef, _ in run_jobs(jobs, n_jobs=1, processes=True)}
    results = list(run_jobs(jobs, n_jobs=2, processes=True))
    assert sorted(seed for seed, _, _ in results) == list(range(6))
    assert all(pid != os.getpid() for _, _, pid in results)  # fitted in the workers
    for seed, coef, _ in results:
        np.testing.assert_array_equal(coef, alone[seed])


def test_one_core_runs_in_this_process():
    results = list(run_jobs([functools.partial(_fit, 0), functools.partial(_fit, 1)], n_jobs=1, processes=True))
    assert [pid for _, _, pid in results] == [os.getpid()] * 2


def test_threads_for_other_learners():
    results = list(run_jobs([functools.partial(_fit, seed) for seed in range(3)], n_jobs=2))
    assert sorted(seed for seed, _, _ in results) == [0, 1, 2]
    assert {pid for _, _, pid in results} == {os.getpid()}


def _fail(message: str):
    raise ValueError(message)


@needs_fork
def test_a_failing_job_raises_its_error():
    with pytest.raises(ValueError, match="bad node"):
        list(run_jobs([functools.partial(_fit, 0), functools.partial(_fail, "bad node")], n_jobs=2, processes=True))


def _killed():
    os.kill(os.getpid(), signal.SIGKILL)


@needs_fork
def test_a_killed_worker_is_one_line():
    with pytest.raises(KttError, match=r"a worker process fitting the classifiers died .*n_jobs=1"):
        list(run_jobs([_killed, functools.partial(_fit, 0)], n_jobs=2, processes=True))


@needs_fork
def test_joblib_inside_a_worker_does_not_wait_for_its_parents_processes():
    """A one-vs-rest fit with n_jobs=2 inside a forked worker, after the parent used joblib's processes:
    without ktt.workers' guard it waited for the parent's executor (minutes)."""
    script = textwrap.dedent("""
        import numpy as np
        from joblib import Parallel, delayed
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from ktt.workers import run_jobs

        X = np.random.default_rng(0).normal(size=(300, 5))
        y = np.arange(300) % 3
        Parallel(n_jobs=2)(delayed(abs)(i) for i in range(4))

        def job():
            return int(OneVsRestClassifier(LogisticRegression(), n_jobs=2).fit(X, y).predict(X).sum())

        print(list(run_jobs([job, job], 2, processes=True)))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("[")
