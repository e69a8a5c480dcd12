"""End-to-end training: ``python -m ktt`` vs a bare scikit-learn script, in one run.

Both read the same CSV, split it 8:1:1 into the same rows in the same order
(ktt's adapter keeps file order within a split; SGD's shuffling depends on it),
preprocess with ktt's tokeniser+stemmer,
fit TfidfVectorizer(min_df) + SGDClassifier(modified_huber) over the leaf
classes and score the test split. ktt also adapts and caches the data, computes
all metrics on val and test, plots, and logs everything to MLflow. The ratio
ktt / bare is the framework's overhead.

Machines here are noisy (the same fit takes 20 s or 35 s minutes apart), so each
repeat runs the bare script before *and* after the two ktt runs and divides by
their mean; the table shows the median ratio over the repeats. It also splits
each run into the fit and the rest ("outside the fit"), from the times both
print, since the fit is the same work in both.

Usage: python scripts/bench_train.py [--data ../shared/data/icd10cm/icd10cm.csv] [--min-df 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "icd10cm" / "icd10cm.csv"

BARE = r"""
import sys, time, numpy as np, pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from ktt.preprocess import preprocess
frame = pd.read_csv(sys.argv[1], dtype=str)
order = np.random.default_rng(43).permutation(len(frame))
n_train, n_val = round(len(frame) * 0.8), round(len(frame) * 0.1)
train, test = frame.iloc[np.sort(order[:n_train])], frame.iloc[np.sort(order[n_train + n_val:])]  # ktt's rows, in its order
texts = preprocess(train.text.tolist())
start = time.perf_counter()
vectorizer = TfidfVectorizer(min_df=int(sys.argv[2]))
clf = SGDClassifier(loss="modified_huber", n_jobs=-1, random_state=42)
clf.fit(vectorizer.fit_transform(texts), train.category)
print("fitting done in", time.perf_counter() - start)
scores = clf.predict_proba(vectorizer.transform(preprocess(test.text.tolist())))
print("leaf_accuracy", (clf.classes_[scores.argmax(axis=1)] == test.category.to_numpy()).mean())
"""
_FIT = re.compile(r"fitting \S* ?done in ([0-9.]+)")


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, fit seconds (from the output) and stdout of ``command``."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    elapsed = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    fit = _FIT.search(result.stdout + result.stderr)
    return elapsed, float(fit.group(1)) if fit else float("nan"), result.stdout


def measure(csv: Path, min_df: int, repeat: int, verbose: bool = True) -> dict[str, float]:
    """Median ratios over ``repeat`` rounds of bare, ktt (fresh cache), ktt (cached), bare.

    Returns
    -------
    dict
        ``bare_s`` (median bare wall time, to size the baseline), ``cold`` and
        ``warm`` (ktt wall time / bare), ``outside_fit`` (ktt's time outside the
        fit, cached data, / bare's time outside the fit) and ``fit`` (ktt's fit
        / bare's fit: ~1, the same work).
    """
    bare_command = [sys.executable, "-c", BARE, str(csv), str(min_df)]
    ktt_command = [sys.executable, "-m", "ktt", "dataset=file", f"dataset.path={csv}", f"min_df={min_df}",
                   "progress=false"]
    rounds = []
    for number in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            before, before_fit, bare_out = timed(bare_command, Path(tmp))
            cold, _, _ = timed(ktt_command, Path(tmp))
            warm, warm_fit, ktt_out = timed(ktt_command, Path(tmp))
            after, after_fit, _ = timed(bare_command, Path(tmp))
        bare, bare_fit = (before + after) / 2, (before_fit + after_fit) / 2
        rounds.append({"bare_s": bare, "cold": cold / bare, "warm": warm / bare,
                       "outside_fit": (warm - warm_fit) / (bare - bare_fit), "fit": warm_fit / bare_fit})
        if verbose:
            print(f"round {number + 1}: bare {before:.1f}/{after:.1f} s, ktt {cold:.1f}/{warm:.1f} s; "
                  f"{next(line for line in bare_out.splitlines() if line.startswith('leaf_accuracy'))}, "
                  f"ktt {next(line for line in ktt_out.splitlines() if line.startswith('leaf_accuracy'))}",
                  flush=True)
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--min-df", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result = measure(Path(args.data), args.min_df, args.repeat)
    print(f"\nmedian of {args.repeat} rounds")
    print(f"{'bare sklearn script (mean of before/after)':<48}{result['bare_s']:>7.1f} s")
    print(f"{'python -m ktt (fresh cache) / bare':<48}{result['cold']:>7.2f}")
    print(f"{'python -m ktt (cached data) / bare':<48}{result['warm']:>7.2f}")
    print(f"{'time outside the fit, ktt (cached) / bare':<48}{result['outside_fit']:>7.2f}")
    print(f"{'fit, ktt / bare (the same work)':<48}{result['fit']:>7.2f}")


if __name__ == "__main__":
    main()
