"""Time a 4-job sweep on a local Ray cluster against the same sweep on the joblib launcher.

Both run the real ``python -m ktt -m ...`` in one working directory (one MLflow
store, the data cache warmed by an untimed first run), two jobs at a time: joblib
with ``hydra.launcher.n_jobs=2``, Ray on a local cluster started with
``ray start --head --num-cpus 2`` (untimed: a cluster is started once and serves
many sweeps). Rounds alternate the two launchers; the table gives each sweep's
wall-clock time (process start to exit: the parent run, the jobs, the summary)
and the ratio Ray / joblib per round and for the medians.

Usage::

    .venv/bin/python scripts/bench_ray.py                   # 2 rounds, 10% of the bundled ICD-10-CM data
    .venv/bin/python scripts/bench_ray.py --rounds 3 --proportion 0.05
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ktt.testing import ray_cluster

#: A 4-job grid of the flat model, one core per job.
GRID = ["loss=hinge,modified_huber", "alpha=1e-4,1e-5"]
MODEL = ["model=tfidf_lsgd", "char_ngrams=null", "progress=false", "plots=false", "n_jobs=1"]


def ktt(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run ``python -m ktt <args>`` in ``cwd`` (with more ``env``); its wall-clock seconds (raises if it fails)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")} | (env or {})
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "ktt", *args], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"python -m ktt {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--proportion", type=float, default=0.1, help="dataset.proportion of the bundled data")
    args = parser.parse_args()
    common = [*MODEL, f"dataset.proportion={args.proportion}"]
    with tempfile.TemporaryDirectory(prefix="ktt-bench-ray-") as tmp, ray_cluster(num_cpus=2) as (address, _, token):
        cwd = Path(tmp)
        ktt(common, cwd)  # the store and the data cache, untimed
        launchers = {"joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                     "ray": ["hydra/launcher=ray", f"hydra.launcher.address={address}"]}
        times: dict[str, list[float]] = {name: [] for name in launchers}
        for round_ in range(args.rounds):
            order = list(launchers) if round_ % 2 == 0 else list(reversed(launchers))
            for name in order:
                times[name].append(ktt(["-m", *launchers[name], *GRID, *common], cwd, token))
                print(f"round {round_ + 1}: {name:6s} {times[name][-1]:6.1f} s", flush=True)
    print(f"\n4-job sweep (2 at a time), dataset.proportion={args.proportion}, {args.rounds} round(s)\n")
    print(f"{'round':>6}  {'joblib s':>9}  {'ray s':>7}  {'ray / joblib':>12}")
    for round_, (joblib_s, ray_s) in enumerate(zip(times["joblib"], times["ray"]), 1):
        print(f"{round_:>6}  {joblib_s:9.1f}  {ray_s:7.1f}  {ray_s / joblib_s:12.2f}")
    joblib_s, ray_s = statistics.median(times["joblib"]), statistics.median(times["ray"])
    print(f"{'median':>6}  {joblib_s:9.1f}  {ray_s:7.1f}  {ray_s / joblib_s:12.2f}")


if __name__ == "__main__":
    main()
