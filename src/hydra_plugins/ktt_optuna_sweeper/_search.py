"""The Optuna search behind ``hydra.sweeper.search=optuna``.

Ask ``n_jobs`` trials, launch them as one batch of Hydra jobs, tell Optuna
each job's return value (or FAIL), until ``n_trials`` trials have run. The
study lives in ``storage`` from the first ask to the last tell, so an
interrupted search keeps every finished trial and a rerun with the same
``study_name`` and ``storage`` continues its trial numbers.

A configuration is never run twice: when the sampler proposes the parameters
of a finished trial, the new trial is told that trial's value without running
(user attribute ``duplicate_of``); when it proposes those of a trial still
running in the same batch, the new trial is pruned. After
:data:`MAX_DUPLICATES_IN_A_ROW` such proposals in a row the space is taken as
exhausted and the search ends.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
from pathlib import Path
from typing import Any, List, Sequence

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hydra_plugins.ktt_optuna_sweeper._experiment import write_experiment
from hydra_plugins.ktt_optuna_sweeper._search_space import (SearchSpaceError, as_override, checked_conditions,
                                                            search_space, suggest_all)
from ktt.secrets import mask_error, mask_text

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"
#: Proposals in a row that repeat a configuration before a search ends as exhausted.
MAX_DUPLICATES_IN_A_ROW = 50


def masked(url: str | None) -> str:
    """A storage URL without its password (``in memory`` for None)."""
    if not url:
        return "in memory"
    return mask_text(str(url))


def open_study(sweeper) -> optuna.Study:
    """Create, resume or join the sweeper's study; a seeded sampler continues from the study's trial count."""
    try:
        study = optuna.create_study(study_name=sweeper.study_name, storage=sweeper.storage,
                                    direction=sweeper.direction, load_if_exists=True)
    except ValueError as error:
        raise SearchSpaceError(f"ktt: error: cannot use Optuna study {sweeper.study_name!r} in {masked(sweeper.storage)}: "
                               f"{str(error).splitlines()[0]}") from None
    except Exception as error:  # noqa: BLE001 - a storage that cannot be reached, in one line
        raise SearchSpaceError(f"ktt: error: cannot open Optuna storage {masked(sweeper.storage)}: {mask_error(error)}") from None
    if study.direction.name.lower() != sweeper.direction:
        raise SearchSpaceError(f"ktt: error: Optuna study {study.study_name!r} was created to {study.direction.name.lower()}, "
                               f"not {sweeper.direction}; use another study_name")
    seed = None if sweeper.seed is None else int(sweeper.seed) + len(study.get_trials(deepcopy=False))
    study.sampler = (optuna.samplers.RandomSampler(seed=seed) if sweeper.sampler == "random"
                     else optuna.samplers.TPESampler(seed=seed))
    return study


def run_search(sweeper, arguments: List[str]) -> List[Sequence[JobReturn]]:
    """Run ``sweeper.n_trials`` trials of the sweeper's study; see the module docstring."""
    parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)
    space, fixed = search_space(sweeper.params, arguments, parser)
    if not space:
        raise SearchSpaceError("ktt: error: the Optuna sweeper has no search space: set hydra.sweeper.params "
                               "(e.g. min_df: choice(1, 2, 4)) or sweep a key on the command line")
    fixed_values = {override.get_key_element(): override.get_value_element_as_str()
                    for override in parser.parse_overrides(list(fixed.values()))}
    conditions = checked_conditions(sweeper.conditions, space, fixed_values)
    sweep_dir = Path(str(sweeper.config.hydra.sweep.dir)).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(sweeper.config, sweep_dir / "multirun.yaml")
    study = open_study(sweeper)
    log.info("Optuna study %r (%s, %s): %d trial(s) so far; running %d, %d at a time, over %s",
             study.study_name, masked(sweeper.storage), sweeper.direction, len(study.get_trials(deepcopy=False)),
             sweeper.n_trials, sweeper.n_jobs, ", ".join(space))

    returns: List[Sequence[JobReturn]] = []
    mine: List[int] = []
    try:
        while len(mine) < sweeper.n_trials:
            batch = run_batch(sweeper, study, (space, conditions, fixed_values), fixed, mine, sweep_dir)
            if not batch:
                if len(mine) < sweeper.n_trials:
                    log.info("The sampler proposed only configurations that have run (%d in a row): "
                             "the search space is exhausted", MAX_DUPLICATES_IN_A_ROW)
                break
            returns.append(batch)
    finally:
        write_results(sweeper, study, mine, sweep_dir)
    return returns


def run_batch(sweeper, study: optuna.Study, space: tuple[dict, dict, dict], fixed: dict, mine: List[int],
              sweep_dir: Path) -> Sequence[JobReturn]:
    """Ask up to ``n_jobs`` trials, launch them as one batch, tell their results.

    ``space`` is the distributions, the checked conditions and the set values they may
    name (:func:`~hydra_plugins.ktt_optuna_sweeper._search_space.suggest_all`).

    Whatever stops the batch (Ctrl-C, a launcher error) turns its trials that
    were not told yet into FAIL trials before it propagates, so no trial is left
    RUNNING in the storage.
    """
    trials: List[optuna.Trial] = []
    asked: List[optuna.Trial] = []
    told: set = set()
    repeats = 0
    try:
        while len(trials) < sweeper.n_jobs and len(mine) < sweeper.n_trials and repeats < MAX_DUPLICATES_IN_A_ROW:
            with sigint_deferred():  # a Ctrl-C inside ask() would leave a RUNNING trial this code never saw
                trial = study.ask()
                asked.append(trial)
                suggest_all(trial, *space)
            mine.append(trial.number)
            if not skip_duplicate(study, trial, trials):
                trials.append(trial)
                repeats = 0
            else:
                told.add(trial.number)  # settled as a repeat
                repeats += 1
        if not trials:
            return []
        job_idx = _jobs_run(study, mine, trials)
        batch = []
        for offset, trial in enumerate(trials):
            overrides = list(fixed.values()) + [as_override(key, value) for key, value in trial.params.items()]
            trial.set_user_attr("overrides", [mask_text(o) for o in overrides])  # the storage may be shared
            trial.set_user_attr("job", job_idx + offset)
            trial.set_user_attr("sweep_dir", str(sweep_dir))
            batch.append(overrides)
        sweeper.validate_batch_is_legal(batch)
        results = sweeper.launcher.launch(batch, initial_job_idx=job_idx)
        for trial, result in zip(trials, results):
            tell(study, trial, result)
            told.add(trial.number)
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        for trial in asked:
            if trial.number not in told:
                fail(study, trial, "interrupted" if interrupted else f"not run: {error}", interrupted)
        raise
    return results


@contextlib.contextmanager
def sigint_deferred():
    """Hold a Ctrl-C (SIGINT) until the block ends, then hand it to the handler in place before.

    A Python-level handler, not a signal mask: in a process with threads the kernel
    may deliver the signal to any thread that does not block it. Main thread only
    (elsewhere a no-op, as Python allows handlers there only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: List[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signal.SIGINT)


def skip_duplicate(study: optuna.Study, trial: optuna.Trial, pending: Sequence[optuna.Trial]) -> bool:
    """Settle a trial that repeats a configuration without running it; False for a new configuration.

    A repeat of a finished trial gets its value (``duplicate_of``), a repeat of a
    trial pending in this batch is pruned.
    """
    params = trial.params
    for earlier in pending:
        if earlier.params == params:
            trial.set_user_attr("duplicate_of", earlier.number)
            study.tell(trial, state=TrialState.PRUNED)
            return True
    for earlier in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if earlier.number != trial.number and earlier.params == params:
            trial.set_user_attr("duplicate_of", earlier.number)
            study.tell(trial, earlier.value)
            log.info("Trial %d repeats trial %d (%s): not run, value %.6g", trial.number, earlier.number,
                     " ".join(f"{k}={v}" for k, v in params.items()), earlier.value)
            return True
    return False


def _jobs_run(study: optuna.Study, mine: Sequence[int], pending: Sequence[optuna.Trial]) -> int:
    """Hydra job index of the first pending trial: the trials of this sweep that ran (were not duplicates)."""
    pending_numbers = {t.number for t in pending}
    settled = {t.number: t for t in study.get_trials(deepcopy=False)}
    return sum(1 for number in mine if number not in pending_numbers
               and "duplicate_of" not in settled[number].user_attrs)


def tell(study: optuna.Study, trial: optuna.Trial, result: JobReturn) -> None:
    """Report one job to Optuna: its return value if it is a number, else a FAIL trial."""
    if result.status != JobStatus.COMPLETED:
        from ktt.errors import error_line

        fail(study, trial, error_line(result._return_value))
        return
    value = result.return_value
    try:
        value = float(value)
    except (TypeError, ValueError):
        fail(study, trial, f"the task returned {value!r}, not a number")
        return
    if math.isnan(value):
        fail(study, trial, "the task returned nan")
        return
    study.tell(trial, value)
    log.info("Trial %d finished with value %.6g (%s)", trial.number, value,
             " ".join(f"{k}={v}" for k, v in trial.params.items()))


def fail(study: optuna.Study, trial: optuna.Trial, message: str, interrupted: bool = False) -> None:
    """Mark a trial FAIL with its error (masked) in the ``error`` user attribute."""
    try:
        trial.set_user_attr("error", mask_text(message)[:2000])
        if interrupted:
            trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    except Exception as error:  # noqa: BLE001 - keep failing the others
        log.warning("Could not mark trial %d failed: %s", trial.number, error)
    else:
        log.warning("Trial %d failed: %s", trial.number, mask_text(message))


def write_results(sweeper, study: optuna.Study, mine: List[int], sweep_dir: Path) -> None:
    """``optimization_results.yaml`` (the study's best and this sweep's trials) and the best trial as an experiment."""
    try:
        trials = study.get_trials(deepcopy=False)
        completed = [t for t in trials if t.state == TrialState.COMPLETE]
        results: dict[str, Any] = {
            "name": "optuna",
            "study_name": study.study_name,
            "storage": masked(sweeper.storage),
            "direction": sweeper.direction,
            "n_trials_in_study": len(trials),
            "best_trial": None,
            "best_value": None,
            "best_params": None,
            "experiment": None,
            "trials": [trial_record(t) for t in trials if t.number in set(mine)],
        }
        if completed:
            best = study.best_trial
            results.update(best_trial=best.number, best_value=float(best.value), best_params=dict(best.params))
            path = write_experiment(sweeper, study.study_name, best, sweep_dir)
            results["experiment"] = str(path) if path else None
            params = " ".join(f"{k}={v}" for k, v in best.params.items())
            print(f"Optuna study {study.study_name!r}: best trial {best.number} of {len(trials)}, "
                  f"value {best.value:.4f}: {params}", flush=True)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / RESULTS_FILE)
    except Exception as error:  # noqa: BLE001 - never hide the sweep's own outcome behind this
        log.warning("Could not write %s: %s", sweep_dir / RESULTS_FILE, error)


def trial_record(trial) -> dict:
    """One trial as plain data."""
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": None if trial.value is None else float(trial.value),
        "params": dict(trial.params),
        "job": trial.user_attrs.get("job"),
        "error": trial.user_attrs.get("error"),
    }
