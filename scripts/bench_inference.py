"""Inference against the arithmetic: ktt's prediction path vs a bare scikit-learn pipeline of the same shape.

For each min_df and each model (tfidf_lsgd, tfidf_hsgd, in the original KTT
feature shape so that a bare ``Pipeline(TfidfVectorizer, SGDClassifier)`` has
the same vocabulary and classes, and in ktt's default shape), one run measures:

* single text: ``model.predict_path([text])`` vs ``pipeline.predict_proba([text])``
  (median per call over the same texts);
* a batch of 10,000: ``model.predict_path(batch)`` vs ``pipeline.predict_proba(batch)``;
* the arithmetic: the matrix product alone on the already-encoded text, the floor
  that any prediction path pays;
* peak memory of loading the checkpoint and predicting one text, in a child
  process (VmHWM minus the process after its imports), ktt vs the bare pipeline.

Usage: python scripts/bench_inference.py [--data icd10cm.parquet] [--min-df 1,50] [--singles 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "icd10cm" / "icd10cm.parquet"

MEMORY_PROBE = r"""
import sys, joblib
import numpy as np
import sklearn.linear_model, sklearn.feature_extraction.text, scipy.sparse
import ktt.tfidf, ktt.hierarchical, ktt_models.tfidf_lsgd, ktt_models.tfidf_hsgd
def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
base = status("VmRSS:")
model = joblib.load(sys.argv[1])
text = [sys.argv[2]]
(model.predict_path if hasattr(model, "predict_path") else model.predict_proba)(text)
print((status("VmHWM:") - base) / 1024)
"""


def per_call(function, texts: list[str]) -> float:
    """Median seconds of ``function([text])`` over ``texts`` (after one warm-up call)."""
    function(texts[:1])
    times = []
    for text in texts:
        start = time.perf_counter()
        function([text])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def best_of(repeat: int, function, *args) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


def peak_mb(path: Path, text: str) -> float:
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), text], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    return float(result.stdout.strip().splitlines()[-1])


def bare_pipeline(min_df: int, train_texts, train_targets):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline([("tfidf", TfidfVectorizer(min_df=min_df)),
                     ("clf", SGDClassifier(loss="modified_huber", random_state=42, n_jobs=-1))]).fit(train_texts,
                                                                                                   train_targets)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--min-df", default="1,50")
    parser.add_argument("--singles", type=int, default=300, help="texts timed one by one")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--defaults", action="store_true", help="also ktt's default feature shape (char n-grams)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from ktt.hierarchy import Hierarchy
    from ktt.data.loaders import Loader
    from ktt.preprocess import preprocess
    from ktt_models.tfidf_hsgd import TfidfHSGD
    from ktt_models.tfidf_lsgd import TfidfLSGD

    frame = pd.read_parquet(args.data)
    paths = [tuple(p) for p in frame["category"]]
    hierarchy, codes = Hierarchy.from_paths(paths)
    texts = preprocess(frame["text"].tolist())
    targets = np.asarray(hierarchy.classes, dtype=object)[codes[:, -1]]
    batch, singles = texts[: args.batch], texts[: args.singles]
    train = Loader(texts[args.batch:], targets[args.batch:])
    original = dict(word_ngrams=1, char_ngrams=None, sublinear_tf=False)
    shapes = [("original", original)] + ([("default", dict(word_ngrams=2, char_ngrams=[2, 5], sublinear_tf=True))]
                                         if args.defaults else [])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for min_df in [int(m) for m in args.min_df.split(",")]:
            pipeline = bare_pipeline(min_df, train.texts, train.targets)
            bare_path = Path(tmp) / f"bare-{min_df}.joblib"
            import joblib

            joblib.dump(pipeline, bare_path)
            bare_single = per_call(pipeline.predict_proba, singles)
            bare_batch = best_of(args.repeat, pipeline.predict_proba, batch)
            bare_peak = peak_mb(bare_path, singles[0])
            for shape, features in shapes:
                for name, model in (("tfidf_lsgd", TfidfLSGD(min_df=min_df, **features)),
                                    ("tfidf_hsgd", TfidfHSGD(min_df=min_df, decoding="greedy", **features)),
                                    ("tfidf_hsgd blend", TfidfHSGD(min_df=min_df, **features,
                                                                   **({"learner": "svm"} if shape == "default" else {})))):
                    if name == "tfidf_hsgd" and shape != "original":
                        continue
                    model.fit(train, Loader(batch[:2000], targets[:2000]), hierarchy=hierarchy)
                    path = Path(tmp) / f"{name}-{min_df}.joblib".replace(" ", "_")
                    model.save(path)
                    single = per_call(model.predict_path, singles)
                    whole = best_of(args.repeat, model.predict_path, batch)
                    encoded = [model.encode([t]) for t in singles]
                    scorer = getattr(model, "scorer_", None) or model.nodes_.scorer
                    arithmetic = statistics.median(best_of(5, scorer.decisions, x) for x in encoded[:100])
                    result = {"min_df": min_df, "shape": shape, "model": name,
                              "single_ms": single * 1e3, "bare_single_ms": bare_single * 1e3,
                              "single_speedup": bare_single / single, "arithmetic_ms": arithmetic * 1e3,
                              "single_over_arithmetic": single / arithmetic,
                              "batch_texts_per_s": len(batch) / whole, "batch_speedup": bare_batch / whole,
                              "peak_mb": peak_mb(path, singles[0]), "bare_peak_mb": bare_peak}
                    results.append(result)
                    print(json.dumps(result), flush=True)
    print("\n| min_df | features | model | single text ms (bare) | speed-up | x arithmetic | batch texts/s | "
          "batch speed-up | peak MB (bare) |\n|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['min_df']} | {r['shape']} | {r['model']} | {r['single_ms']:.3f} ({r['bare_single_ms']:.2f}) | "
              f"{r['single_speedup']:.0f}x | {r['single_over_arithmetic']:.1f} | {r['batch_texts_per_s']:.0f} | "
              f"{r['batch_speedup']:.1f}x | {r['peak_mb']:.0f} ({r['bare_peak_mb']:.0f}) |")
    return results


if __name__ == "__main__":
    main()
