"""Featurising against scikit-learn: ktt's vectorised n-grams vs its per-text analyser vs TfidfVectorizer.

One run on preprocessed ICD-10-CM texts (``--train`` training rows, a batch of
``--batch`` others) measures, in texts per second:

* the char_wb block (2-5 characters) and the whole default featuriser (word
  1-2 grams + char_wb 2-5, sublinear tf) through ktt's vectorised n-grams
  (``windows``: a trie of the vocabulary walked with numpy), through ktt's
  per-text path (``analyser``: the same code with the windows off, scikit-learn's
  analyser text by text, what ktt did before) and through
  ``TfidfVectorizer.transform`` (``sklearn``, the blocks stacked), on single
  texts and on the batch; the three matrices are checked equal first;
* end to end, ``model.predict_path`` of a default tfidf_hsgd model (word 1-2 +
  char 2-5, LinearSVC per node, blend) trained on the training rows, windows on
  vs off, single texts and the batch.

Each time is the best of ``--repeat`` rounds with the methods interleaved in
every round, as wall time and as CPU time (process time: featurising is one
thread, and a loaded machine inflates wall time). The table gives texts/s of
the windows and their ratio to the others.

Usage: python scripts/bench_featuriser.py [--data icd10cm.parquet] [--train 20000] [--batch 10000] [--singles 300]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "icd10cm" / "icd10cm.parquet"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def fastest(methods: dict, repeat: int) -> dict[str, dict[str, float]]:
    """The shortest wall and CPU seconds of each ``methods[name]()``, interleaved over ``repeat`` rounds."""
    best = {name: dict.fromkeys(CLOCKS, float("inf")) for name in methods}
    for _ in range(repeat):
        for name, method in methods.items():
            start = {clock: read() for clock, read in CLOCKS.items()}
            method()
            for clock, read in CLOCKS.items():
                best[name][clock] = min(best[name][clock], read() - start[clock])
    return best


def one_by_one(function, texts: list[str]):
    """A method calling ``function([text])`` for each text."""
    return lambda: [function([text]) for text in texts]


def without_windows(features):
    """A copy of a fitted :class:`ktt.features.TfidfFeatures` that takes the analyser text by text."""
    copy = pickle.loads(pickle.dumps(features))
    copy.transform(["warm up"])
    for block in copy._transformers:
        block.windows = None
    return copy


def stacked(vectorizers):
    """``TfidfVectorizer.transform`` of each block, side by side (a single block alone)."""
    if len(vectorizers) == 1:
        return vectorizers[0].transform
    return lambda texts: sparse.hstack([v.transform(texts) for v in vectorizers], format="csr")


def assert_equal(*matrices) -> None:
    first = matrices[0]
    for other in matrices[1:]:
        other = other.tocsr()
        other.sort_indices()
        for part in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(first, part), getattr(other, part))


def measure(what: str, methods: dict, batch: list[str], singles: list[str], repeat: int) -> list[dict]:
    """Rows of the table: single texts and the batch, texts/s of each method and the windows' ratios."""
    rows = []
    for size, texts, timed in (("single", singles, {name: one_by_one(f, singles) for name, f in methods.items()}),
                               ("batch", batch, {name: (lambda f=f: f(batch)) for name, f in methods.items()})):
        best = fastest(timed, repeat)
        row = {"what": what, "texts": size, "n": len(texts)}
        for clock in CLOCKS:
            for name in methods:
                row[f"{name}_{clock}_texts_per_s"] = len(texts) / best[name][clock]
            for name in list(methods)[1:]:
                row[f"windows_over_{name}_{clock}"] = best[name][clock] / best["windows"][clock]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--train", type=int, default=20_000, help="training rows (featuriser and model)")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=300, help="texts featurised one by one")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-model", action="store_true", help="skip the end-to-end tfidf_hsgd measurement")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from ktt.data.loaders import Loader
    from ktt.features import TfidfFeatures
    from ktt.hierarchy import Hierarchy
    from ktt.preprocess import preprocess
    from ktt_models.tfidf_hsgd import TfidfHSGD

    frame = pd.read_parquet(args.data).sample(frac=1.0, random_state=0)
    frame = frame.iloc[: args.batch + args.train]
    texts = preprocess(frame["text"].tolist())
    batch, train, singles = texts[: args.batch], texts[args.batch:], texts[: args.singles]

    rows = []
    features = TfidfFeatures(word_ngrams=2, char_ngrams=(2, 5), sublinear_tf=True)
    features.fit_transform(train)
    features.transform(["warm up"])
    slow = without_windows(features)
    # The char block alone: its (rows, columns, values) entries.
    char_methods = {"windows": features._transformers[1].entries, "analyser": slow._transformers[1].entries,
                    "sklearn": features.vectorizers_[1].transform}
    whole_methods = {"windows": features.transform, "analyser": slow.transform,
                     "sklearn": stacked(features.vectorizers_)}
    assert_equal(*(f(batch) for f in whole_methods.values()))
    rows += measure("char_wb 2-5 block", char_methods, batch, singles, args.repeat)
    rows += measure("default featuriser", whole_methods, batch, singles, args.repeat)

    if not args.no_model:
        paths = [tuple(p) for p in frame["category"]]
        hierarchy, codes = Hierarchy.from_paths(paths)
        targets = np.asarray(hierarchy.classes, dtype=object)[codes[:, -1]]
        model = TfidfHSGD(learner="svm", word_ngrams=2, char_ngrams="auto", sublinear_tf=True)
        start = time.perf_counter()
        n_val = min(2000, args.batch)  # validation rows (temperature, blend weight): the batch's first
        model.fit(Loader(train, targets[args.batch:]), Loader(batch[:n_val], targets[:n_val]), hierarchy=hierarchy)
        print(f"tfidf_hsgd fitted in {time.perf_counter() - start:.0f} s: char_ngrams={model.features_.char_ngrams_}",
              flush=True)
        model.predict_path(batch[:1])
        slow_model = pickle.loads(pickle.dumps(model))
        slow_model.features_ = without_windows(model.features_)
        for ours, theirs in zip(model.predict_path(batch), slow_model.predict_path(batch)):
            np.testing.assert_array_equal(ours, theirs)
        rows += measure("tfidf_hsgd predict_path", {"windows": model.predict_path, "analyser": slow_model.predict_path},
                        batch, singles, args.repeat)

    print("\n| what | texts | windows texts/s (cpu) | / analyser (cpu, wall) | / sklearn (cpu, wall) |\n"
          "|---|---|---|---|---|")
    for r in rows:
        sklearn = (f"{r['windows_over_sklearn_cpu']:.1f}x, {r['windows_over_sklearn_wall']:.1f}x"
                   if "windows_over_sklearn_cpu" in r else "")
        print(f"| {r['what']} | {r['texts']} | {r['windows_cpu_texts_per_s']:,.0f} | "
              f"{r['windows_over_analyser_cpu']:.1f}x, {r['windows_over_analyser_wall']:.1f}x | {sklearn} |")
    return rows


if __name__ == "__main__":
    main()
