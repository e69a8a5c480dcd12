"""End-to-end training: ``python -m ktt`` vs a bare scikit-learn script, in one run.

Both read the same CSV, split 8:1:1, preprocess with ktt's tokeniser+stemmer,
fit TfidfVectorizer(min_df) + SGDClassifier(modified_huber) over the leaf
classes and score the test split. ktt also adapts and caches the data, computes
all metrics on val and test, plots, and logs everything to MLflow. The ratio
ktt / bare is the framework's overhead (machines here are noisy: compare the
ratio, not the seconds).

Usage: python scripts/bench_train.py [--data ../shared/data/icd10cm/icd10cm.csv] [--min-df 50] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "icd10cm" / "icd10cm.csv"

BARE = r"""
import sys, numpy as np, pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from ktt.preprocess import preprocess
frame = pd.read_csv(sys.argv[1], dtype=str)
order = np.random.default_rng(43).permutation(len(frame))
n_train, n_val = round(len(frame) * 0.8), round(len(frame) * 0.1)
train, test = frame.iloc[order[:n_train]], frame.iloc[order[n_train + n_val:]]
vectorizer = TfidfVectorizer(min_df=int(sys.argv[2]))
clf = SGDClassifier(loss="modified_huber", n_jobs=-1, random_state=42)
clf.fit(vectorizer.fit_transform(preprocess(train.text.tolist())), train.category)
scores = clf.predict_proba(vectorizer.transform(preprocess(test.text.tolist())))
print("leaf_accuracy", (clf.classes_[scores.argmax(axis=1)] == test.category.to_numpy()).mean())
"""


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    elapsed = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--min-df", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            bare, bare_out = timed([sys.executable, "-c", BARE, args.data, str(args.min_df)], Path(tmp))
            cold, ktt_out = timed([sys.executable, "-m", "ktt", "dataset=file", f"dataset.path={args.data}",
                                   f"min_df={args.min_df}", "progress=false"], Path(tmp))
            warm, _ = timed([sys.executable, "-m", "ktt", "dataset=file", f"dataset.path={args.data}",
                             f"min_df={args.min_df}", "progress=false"], Path(tmp))
        rows.append((bare, cold, warm))
        print(bare_out.strip())
        print(next(line for line in ktt_out.splitlines() if line.startswith("leaf_accuracy")))
    bare, cold, warm = (sorted(column)[len(column) // 2] for column in zip(*rows))
    print(f"\n{'run':<40}{'seconds':>9}{'ratio':>8}")
    print(f"{'bare sklearn script':<40}{bare:>9.1f}{1:>8.2f}")
    print(f"{'python -m ktt (fresh cache)':<40}{cold:>9.1f}{cold / bare:>8.2f}")
    print(f"{'python -m ktt (cached data)':<40}{warm:>9.1f}{warm / bare:>8.2f}")


if __name__ == "__main__":
    main()
