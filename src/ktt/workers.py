"""Fitting jobs on every core, with the same result as one after another.

A model's classifiers are independent jobs (class groups of the flat
classifier, parent nodes of a hierarchical model). Most learners run them in
threads of this process. liblinear (``svm``, ``logreg``) cannot: scikit-learn's
copy of it draws every random number from one generator per process, seeded
at the start of each fit, so two fits in two threads draw from each other's
sequence, and the same seed gave a different model from run to run (measured:
scores 2e-3 apart on 20,000 ICD-10-CM rows). Its jobs run in worker processes
forked from this one instead: each worker fits one job at a time from its own
generator, so every classifier is the one a single-core fit gives. A fork
inherits the jobs and their features, so nothing is copied to the workers; only
the fitted weights come back.

Where ``fork`` is not the platform's way to start processes (Windows, macOS),
such jobs run one after another in this process.
"""

from __future__ import annotations

import itertools
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator, Sequence

from joblib import effective_n_jobs, parallel_config
from sklearn.utils.parallel import Parallel, delayed

from ktt.errors import KttError

#: The jobs of each running process pool, by pool: forked workers inherit them.
_POOLS: dict[int, Sequence[Callable]] = {}
_pool_ids = itertools.count()


def forks() -> bool:
    """Whether worker processes can be forked here (Linux)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def run_jobs(jobs: Sequence[Callable], n_jobs: int | None, processes: bool = False) -> Iterator:
    """Each job's result (``job()``), in the order the jobs finish.

    Parameters
    ----------
    jobs : sequence of callables without arguments
    n_jobs : int or None
        Cores to use (joblib's convention: -1 for all).
    processes : bool
        Run the jobs in forked worker processes (see the module docstring), or
        one after another where processes cannot be forked; else in threads.

    Raises
    ------
    KttError
        When a worker process dies (killed, for instance for lack of memory).
    """
    workers = min(effective_n_jobs(n_jobs), len(jobs))
    if workers <= 1 or (processes and not forks()):
        yield from (job() for job in jobs)
    elif processes:
        yield from _in_processes(jobs, workers)
    else:
        parallel = Parallel(n_jobs=workers, prefer="threads", return_as="generator_unordered")
        yield from parallel(delayed(job)() for job in jobs)


def _in_processes(jobs: Sequence[Callable], workers: int) -> Iterator:
    pool = next(_pool_ids)
    _POOLS[pool] = jobs  # before the first submit, which forks the workers
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        futures = [executor.submit(_run_job, pool, index) for index in range(len(jobs))]
        yield from (future.result() for future in as_completed(futures))
    except BrokenProcessPool as error:
        raise KttError("a worker process fitting the classifiers died (killed, perhaps for lack of memory); "
                       "fit with n_jobs=1 to use one process") from error
    finally:
        del _POOLS[pool]
        executor.shutdown(wait=True, cancel_futures=True)


def _run_job(pool: int, index: int):
    """One job in a worker process, found in the jobs it inherited.

    joblib inside a forked worker would find the executor state of its parent, whose processes are not
    its own (measured: a nested one-vs-rest fit waited 10 minutes); its parallel calls run in line.
    """
    with parallel_config(backend="sequential"):
        return _POOLS[pool][index]()
