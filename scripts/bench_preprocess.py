"""Preprocessing speed: the original per-row NLTK pipeline vs ktt.preprocess, in one run.

Times, on the ``text`` column of a parquet file:

1. the original approach: ``Series.apply`` of word_tokenize + SnowballStemmer
   (stop words unstemmed) per row;
2. the same with a memoised stemmer;
3. ``ktt.preprocess.preprocess`` from empty caches.

All three outputs must be identical (exit status 1 otherwise). Machines here are
noisy: compare the speed-up ratios, not the seconds.

Usage: python scripts/bench_preprocess.py [--data ../shared/data/icd10cm/icd10cm.parquet] [--repeat 1] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import lru_cache
from pathlib import Path

import pandas as pd
from nltk.stem.snowball import SnowballStemmer
from nltk.tokenize import word_tokenize

from ktt import preprocess as pp

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "icd10cm" / "icd10cm.parquet"


def original_approach(texts: pd.Series) -> list[str]:
    stemmer = SnowballStemmer("english")

    def original(text):
        return " ".join(
            stemmer.stem(w) if w not in pp.STOP_WORDS else w
            for w in word_tokenize(text, preserve_line=True)
        )

    return texts.apply(original).tolist()


def memoised_stemmer(texts: pd.Series) -> list[str]:
    stem = lru_cache(maxsize=2**20)(SnowballStemmer("english").stem)

    def original(text):
        return " ".join(
            stem(w) if w not in pp.STOP_WORDS else w
            for w in word_tokenize(text, preserve_line=True)
        )

    return texts.apply(original).tolist()


def ktt_preprocess(texts: pd.Series) -> list[str]:
    return pp.preprocess(texts)


METHODS = [
    ("original: per-row Series.apply", original_approach),
    ("original + memoised stemmer", memoised_stemmer),
    ("ktt.preprocess (cold caches)", ktt_preprocess),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="parquet file with a 'text' column")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the fastest counts")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N rows")
    args = parser.parse_args()

    texts = pd.read_parquet(args.data, columns=["text"])["text"]
    if args.limit is not None:
        texts = texts.iloc[: args.limit]
    # Warm up imports and lazily built objects so that no method pays for them.
    word_tokenize("Warm up.", preserve_line=True)
    pp.preprocess_text("Warm up.")

    best: dict[str, float] = {}
    outputs: dict[str, list[str]] = {}
    for _ in range(args.repeat):
        for name, method in METHODS:
            pp.clear_caches()  # empties every memoisation cache in ktt.preprocess
            start = time.perf_counter()
            outputs[name] = method(texts)
            elapsed = time.perf_counter() - start
            best[name] = min(elapsed, best.get(name, elapsed))

    chars = int(texts.str.len().sum())
    print(f"{args.data}: {len(texts):,} texts, {chars:,} characters, best of {args.repeat}")
    baseline = best[METHODS[0][0]]
    width = max(len(name) for name, _ in METHODS)
    print(f"{'method':<{width}}  {'seconds':>8}  {'speed-up':>8}")
    for name, _ in METHODS:
        print(f"{name:<{width}}  {best[name]:8.2f}  {baseline / best[name]:7.1f}x")

    reference = outputs[METHODS[0][0]]
    for name, _ in METHODS[1:]:
        mismatches = sum(a != b for a, b in zip(reference, outputs[name], strict=True))
        print(f"identical to the original ({name}): {mismatches} mismatching rows")
        if mismatches:
            sys.exit(1)


if __name__ == "__main__":
    main()
