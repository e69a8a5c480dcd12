"""The end of a sweep: a table of its jobs ranked by the objective, the best one tagged.

The table is built from MLflow (the jobs' runs under the parent), so it is the
same whichever launcher ran the jobs and wherever they ran. It is printed,
written to ``<sweep_dir>/summary.txt`` and logged on the parent run, with the
best job's overrides (or, for an Optuna search, the study's best parameters
from ``optimization_results.yaml``) as the parent's ``best.*`` params.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ktt.sweep.job import BEST_TAG, JOB_TAG, OVERRIDES_TAG, SweepParent

#: Written by ktt's Optuna sweeper in the sweep folder (the name hydra-optuna-sweeper used).
RESULTS_FILE = "optimization_results.yaml"
SUMMARY_FILE = "summary.txt"
BEST_RUN_TAG = "ktt.sweep.best_run_id"
#: Launchers whose jobs die with the sweep's process: their RUNNING runs are KILLED on Ctrl-C.
LOCAL_LAUNCHERS = ("basic", "joblib", "submitit_local")


@dataclass
class JobRow:
    """One job of the sweep as its MLflow run recorded it."""

    job: int
    status: str
    value: float | None
    overrides: list[str]
    run_id: str
    error: str | None = None
    varying: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``job 3 (loss=hinge min_df=2)``."""
        return f"job {self.job}" + (f" ({' '.join(self.varying)})" if self.varying else "")


def override_key(override: str) -> str:
    """``min_df`` of ``min_df=2`` (``+``/``~`` prefixes dropped)."""
    return override.split("=", 1)[0].lstrip("+~")


def job_rows(runs: list, objective: str, fixed_keys=()) -> list[JobRow]:
    """Rows of the sweep's runs; ``varying`` drops the overrides of ``fixed_keys`` (the same for every job)."""
    from ktt.tracking import ERROR_TAG

    rows = []
    for run in runs:
        value = run.data.metrics.get(objective)
        try:
            overrides = json.loads(run.data.tags.get(OVERRIDES_TAG, "[]"))
        except ValueError:
            overrides = []
        rows.append(JobRow(
            job=int(run.data.tags.get(JOB_TAG, -1)),
            status=run.info.status,
            value=None if value is None or math.isnan(value) else float(value),
            overrides=overrides,
            run_id=run.info.run_id,
            error=run.data.tags.get(ERROR_TAG),
        ))
    fixed = set(fixed_keys)
    for row in rows:
        row.varying = [o for o in row.overrides if override_key(o) not in fixed]
    return rows


def rank(rows: list[JobRow], direction: str = "maximize") -> list[JobRow]:
    """Finished jobs best first by the objective, then the others by job number."""
    sign = -1 if direction == "maximize" else 1
    finished = [r for r in rows if r.status == "FINISHED" and r.value is not None]
    rest = [r for r in rows if not (r.status == "FINISHED" and r.value is not None)]
    return sorted(finished, key=lambda r: (sign * r.value, r.job)) + sorted(rest, key=lambda r: r.job)


def render(rows: list[JobRow], parent: SweepParent) -> str:
    """The summary table, with the failed jobs and their errors below it."""
    from ktt.secrets import mask_text

    if not rows:
        return f"sweep {parent.run_id}: no job ran"
    ranked = rank(rows, parent.direction)
    counts = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    head = (f"sweep {parent.run_id}: {len(rows)} job(s), "
            + ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
            + f"; ranked by {parent.objective} ({parent.direction})")
    table = [["rank", "job", "status", parent.objective, "overrides", "run"]]
    for position, row in enumerate(ranked, 1):
        scored = row.status == "FINISHED" and row.value is not None
        table.append([str(position) if scored else "-", str(row.job), row.status,
                      f"{row.value:.4f}" if scored else "-", mask_text(" ".join(row.varying)) or "-", row.run_id])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [head, ""]
    for index, line in enumerate(table):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    for row in ranked:
        if row.status != "FINISHED":
            lines.append(mask_text(f"{row.status.lower()}: {row.label}: {row.error or 'no error recorded'}"))
    return "\n".join(lines)


def read_results(sweep_dir: str | Path) -> dict | None:
    """The Optuna sweeper's ``optimization_results.yaml`` of the sweep, if it wrote one."""
    path = Path(sweep_dir) / RESULTS_FILE
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def best_params(rows: list[JobRow], best: JobRow | None, results: dict | None) -> dict[str, str]:
    """The sweep's answer: the study's best parameters for a search, else the best job's varying overrides."""
    if results and results.get("best_params"):
        return {str(k): str(v) for k, v in results["best_params"].items()}
    if best is None:
        return {}
    return {override_key(o): o.split("=", 1)[1] for o in best.varying if "=" in o}


def finish(parent: SweepParent, interrupted: bool = False, crashed: bool = False) -> str | None:
    """Summarise the sweep, tag its best job and end the parent run.

    Parameters
    ----------
    parent : SweepParent
    interrupted : bool
        Ctrl-C: the parent ends KILLED, and so do runs of local jobs still RUNNING.
    crashed : bool
        The sweep stopped on an error outside the jobs: the parent ends FAILED.

    Returns
    -------
    str or None
        Why the sweep failed (for the exit status), or None. A grid sweep fails
        if any job failed; a search (the sweeper wrote ``optimization_results.yaml``)
        only if no job finished. An interrupted sweep returns None: the
        interruption itself sets the exit status.
    """
    from ktt.tracking.sweep import child_runs, end_run, prune_models, tag_runs

    if interrupted and parent.launcher in LOCAL_LAUNCHERS:
        kill_running(parent)
    if parent.keep_models == "best":
        prune_models(parent)
    rows = job_rows(child_runs(parent), parent.objective, parent.fixed_keys)
    ranked = rank(rows, parent.direction)
    best = ranked[0] if ranked and ranked[0].status == "FINISHED" and ranked[0].value is not None else None
    results = read_results(parent.sweep_dir)
    if best is not None:
        tag_runs(parent.tracking_uri, {best.run_id: {BEST_TAG: "true"}, parent.run_id: {BEST_RUN_TAG: best.run_id}})
    registered, register_error = (None, None) if interrupted or best is None else register_best(parent, best)
    text = render(rows, parent) + best_lines(parent, best, results)
    if registered:
        text += f"\nregistered: models:/{registered}"
    print(text, flush=True)
    _log_on_parent(parent, rows, best, results, text)

    message = None if interrupted else (failure(rows, search=results is not None) or register_error)
    status = "KILLED" if interrupted else "FAILED" if (crashed or message) else "FINISHED"
    error = None if status == "FINISHED" else "interrupted" if interrupted else (message or "the sweep stopped on an error")
    end_run(parent.tracking_uri, parent.run_id, status, error)
    return message


def register_best(parent: SweepParent, best: JobRow) -> tuple[str | None, str | None]:
    """With ``register=true`` (the best job's own setting), register its model: ``(name/version, error)``.

    Jobs of a sweep never register themselves (:func:`ktt.train.train`); the sweep
    registers its best job once, here. A failure to register is the sweep's error, not a crash.
    """
    from ktt.errors import error_line
    from ktt.tracking import client, register_model
    from ktt.tracking.sweep import run_params

    params = run_params(parent.tracking_uri, best.run_id)
    if params.get("register") != "True":
        return None, None
    try:
        version = register_model(best.run_id, params["tracking.registered_model"], client(parent.tracking_uri))
    except Exception as error:  # noqa: BLE001 - the sweep still ends and reports
        return None, f"could not register the best job's model (run {best.run_id}): {error_line(error)}"
    return f"{version.name}/{version.version}", None


def kill_running(parent: SweepParent) -> None:
    """End the sweep's RUNNING runs KILLED (their jobs died with the sweep's process)."""
    from ktt.tracking.sweep import child_runs, end_run

    for run in child_runs(parent):
        if run.info.status == "RUNNING":
            end_run(parent.tracking_uri, run.info.run_id, "KILLED", "interrupted")


def best_lines(parent: SweepParent, best: JobRow | None, results: dict | None) -> str:
    """The lines under the table: the best job, and a search's best parameters and experiment."""
    text = ""
    if best is not None:
        text += f"\nbest: {best.label}: {parent.objective}={best.value:.4f}, run {best.run_id}"
    if results and results.get("best_params"):
        params = " ".join(f"{k}={v}" for k, v in results["best_params"].items())
        text += (f"\nbest of Optuna study {results.get('study_name')!r} (trial {results.get('best_trial')}, "
                 f"value {results.get('best_value'):.4f}): {params}")
        if results.get("experiment"):
            name = Path(results["experiment"]).stem
            text += f"\nrun it with the test split: python -m ktt -cd {parent.sweep_dir} +experiment={name}"
    return text


def failure(rows: list[JobRow], search: bool) -> str | None:
    """Why the sweep failed, or None: a grid fails if any job failed, a search if none finished."""
    failed = [row for row in rank(rows) if row.status != "FINISHED"]
    if not failed or (search and len(failed) < len(rows)):
        return None
    return f"{len(failed)} of {len(rows)} sweep jobs failed: {', '.join(row.label for row in failed)}"


def _log_on_parent(parent: SweepParent, rows: list[JobRow], best: JobRow | None,
                   results: dict | None, text: str) -> None:
    from ktt.secrets import mask_file
    from ktt.tracking.sweep import log_summary

    sweep_dir = Path(parent.sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SUMMARY_FILE).write_text(text + "\n", encoding="utf-8")
    params = {f"best.{key}": value for key, value in best_params(rows, best, results).items()}
    value = results.get("best_value") if results and results.get("best_value") is not None else (best.value if best else None)
    metrics = {"n_jobs_finished": sum(r.status == "FINISHED" for r in rows),
               "n_jobs_failed": sum(r.status != "FINISHED" for r in rows)}
    if value is not None:
        metrics[f"best_{parent.objective}"] = float(value)
    files = [(str(sweep_dir / SUMMARY_FILE), None)]
    for name in (RESULTS_FILE, "multirun.yaml"):
        if (sweep_dir / name).is_file():
            mask_file(sweep_dir / name)
            files.append((str(sweep_dir / name), None))
    if results and results.get("experiment") and Path(results["experiment"]).is_file():
        files.append((results["experiment"], "experiment"))
    log_summary(parent, metrics, params, files)
