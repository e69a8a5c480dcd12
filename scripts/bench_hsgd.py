"""Benchmark tfidf_hsgd against tfidf_lsgd (and hiclass's LocalClassifierPerParentNode).

All models see the same preprocessed texts (:func:`ktt.preprocess.preprocess`),
the same split, the same ``min_df`` and the same SGD settings; times include
fitting the tf-idf vectoriser (fit) and vectorising the test texts (predict).
Times are also given as ratios to tfidf_lsgd's, measured in the same run, since
absolute times depend on the machine's load (``--repeats`` keeps the shortest of
several runs).

Usage::

    python scripts/bench_hsgd.py --data icd10cm --min-df 1
    python scripts/bench_hsgd.py --data icd10cm --min-df 50
    python scripts/bench_hsgd.py --data 20newsgroups --min-df 1
    python scripts/bench_hsgd.py --data icd10cm --proportion 0.2 --models lsgd,hsgd

Data: ``icd10cm`` is ``icd10cm/icd10cm.parquet`` (``text``, ``category``: 3
labels), split 80/20 with ``--seed``; ``20newsgroups`` is the official
``train.parquet``/``test.parquet`` split (``text``, ``path``: 2 labels), under
``$KTT_SHARED_DATA`` (default ``../shared/data`` beside the repository).
hiclass is optional (``pip install hiclass==5.0.8``); without it its row is skipped.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ktt.hierarchy import Hierarchy
from ktt.metrics import get_metrics, hierarchical_prf, level_accuracies, path_consistency
from ktt.data.loaders import Loader
from ktt.preprocess import preprocess
from ktt_models.tfidf_hsgd import TfidfHSGD
from ktt_models.tfidf_lsgd import TfidfLSGD

MODELS = ("lsgd", "hsgd", "hiclass")


def shared_data() -> Path:
    """The shared data folder: ``$KTT_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("KTT_SHARED_DATA", default))


def read_splits(name: str, proportion: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test frames with ``text`` and ``path`` (tuple of labels)."""
    root = shared_data()
    if name == "icd10cm":
        frame = pd.read_parquet(root / "icd10cm" / "icd10cm.parquet", columns=["text", "category"])
        frame = frame.rename(columns={"category": "path"}).sample(frac=proportion, random_state=seed)
        cut = int(0.8 * len(frame))
        train, test = frame.iloc[:cut], frame.iloc[cut:]
    else:
        train, test = (pd.read_parquet(root / "20newsgroups" / f"{split}.parquet", columns=["text", "path"])
                       .sample(frac=proportion, random_state=seed) for split in ("train", "test"))
    return tuple(f.assign(path=f["path"].map(tuple)).reset_index(drop=True) for f in (train, test))


def loaders(train: pd.DataFrame, test: pd.DataFrame) -> tuple[Hierarchy, dict, np.ndarray, Loader, Loader]:
    """The hierarchy of both splits, its prefix index, the test paths as class indices, and preprocessed loaders."""
    paths = [*train["path"], *test["path"]]
    hierarchy, codes = Hierarchy.from_paths(paths)
    classes = np.asarray(hierarchy.classes, dtype=object)
    leaves = classes[codes[:, -1]]
    texts = preprocess([*train["text"], *test["text"]])
    n = len(train)
    return hierarchy, prefix_index(paths, codes), codes[n:], Loader(texts[:n], leaves[:n]), Loader(texts[n:], leaves[n:])


def timed(function, *args):
    """``(result, seconds)`` of one call."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def repeated(bench, repeats: int) -> dict:
    """Run ``bench()`` ``repeats`` times: the last metrics, the shortest times (the least disturbed by load)."""
    runs = [bench() for _ in range(repeats)]
    return {**runs[-1], "fit_s": min(r["fit_s"] for r in runs), "predict_s": min(r["predict_s"] for r in runs)}


def bench_ktt(model, hierarchy: Hierarchy, train: Loader, test: Loader) -> dict:
    """Fit and test a ktt model; its metrics from :func:`ktt.metrics.get_metrics`."""
    _, fit_s = timed(model.fit, train, None, hierarchy)
    output, predict_s = timed(model.test, test)
    metrics = get_metrics(output, hierarchy)
    return {**metrics, "fit_s": fit_s, "predict_s": predict_s}


def bench_hiclass(args, hierarchy: Hierarchy, index_of: dict, true_paths: np.ndarray, train: Loader, test: Loader,
                  train_paths: list[tuple]) -> dict:
    """hiclass LocalClassifierPerParentNode with the same vectoriser and SGD base estimator."""
    from hiclass import LocalClassifierPerParentNode
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier

    base = SGDClassifier(loss="log_loss" if args.loss == "log" else args.loss, max_iter=1000,
                         class_weight=args.class_weight, random_state=42)

    def fit():
        vectorizer = TfidfVectorizer(min_df=args.min_df)
        features = vectorizer.fit_transform(train.texts)
        model = LocalClassifierPerParentNode(local_classifier=base, n_jobs=args.hiclass_jobs)
        return vectorizer, model.fit(features, np.array(train_paths, dtype=object))

    (vectorizer, model), fit_s = timed(fit)
    predicted, predict_s = timed(lambda: model.predict(vectorizer.transform(test.texts)))
    pred_paths = prefix_indices(index_of, predicted)
    precision, recall, f1 = hierarchical_prf(true_paths, pred_paths)
    levels = level_accuracies(true_paths, pred_paths)
    metrics = {f"level{i}_accuracy": float(a) for i, a in enumerate(levels, start=1)}
    return {**metrics, "leaf_accuracy": float(levels[-1]), "hierarchical_f1": f1,
            "path_consistency": path_consistency(pred_paths, hierarchy), "fit_s": fit_s, "predict_s": predict_s}


def prefix_index(paths: list[tuple], codes: np.ndarray) -> dict[tuple, int]:
    """Label-path prefix to class index, from the paths the hierarchy was built of."""
    return {path[: level + 1]: int(code[level]) for path, code in zip(paths, codes) for level in range(len(path))}


def prefix_indices(index_of: dict[tuple, int], label_paths) -> np.ndarray:
    """Class indices ``(n, depth)`` of label paths (hiclass predicts labels, level by level)."""
    rows = [[index_of[tuple(path[: level + 1])] for level in range(len(path))] for path in label_paths]
    return np.asarray(rows, dtype=np.int64)


def table(results: dict[str, dict], depth: int) -> str:
    """Aligned text: one row per model, ratios of times to tfidf_lsgd's."""
    base = results.get("tfidf_lsgd")
    columns = ["leaf_accuracy", "hierarchical_f1", *(f"level{i}_accuracy" for i in range(1, depth + 1)),
               "path_consistency", "fit_s", "predict_s"]
    header = ["model", "leaf_acc", "hF1", *(f"L{i}_acc" for i in range(1, depth + 1)), "path_cons",
              "fit_s", "predict_s", "fit_ratio", "predict_ratio"]
    rows = []
    for name, metrics in results.items():
        cells = [name, *(f"{metrics[c]:.4f}" if not c.endswith("_s") else f"{metrics[c]:.1f}" for c in columns)]
        for key in ("fit_s", "predict_s"):
            cells.append(f"{metrics[key] / base[key]:.2f}" if base else "-")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("icd10cm", "20newsgroups"), default="icd10cm")
    parser.add_argument("--min-df", type=lambda v: float(v) if "." in v else int(v), default=1,
                        help="TfidfVectorizer min_df (int: documents, float: share)")
    parser.add_argument("--proportion", type=float, default=1.0, help="share of the rows to use (seeded)")
    parser.add_argument("--loss", default="modified_huber")
    parser.add_argument("--class-weight", choices=("balanced",), default=None)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--n-jobs", type=int, default=-1, help="n_jobs of tfidf_lsgd and tfidf_hsgd")
    parser.add_argument("--hiclass-jobs", type=int, default=1,
                        help="hiclass n_jobs (>1 pickles the training data to every process)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsample and the icd10cm split")
    parser.add_argument("--repeats", type=int, default=1, help="fit and predict each model this often; report the shortest times")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    models = args.models.split(",")
    train_frame, test_frame = read_splits(args.data, args.proportion, args.seed)
    hierarchy, index_of, true_paths, train, test = loaders(train_frame, test_frame)
    print(f"{args.data}: {len(train.texts)} train / {len(test.texts)} test rows, levels {hierarchy.level_sizes}; "
          f"min_df={args.min_df}, loss={args.loss}, class_weight={args.class_weight}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # the original KTT features (unigrams), as hiclass gets them
    settings = dict(loss=args.loss, min_df=args.min_df, class_weight=args.class_weight, n_jobs=args.n_jobs,
                    word_ngrams=1, char_ngrams=None, sublinear_tf=False)
    results = {}
    if "lsgd" in models:
        results["tfidf_lsgd"] = repeated(lambda: bench_ktt(TfidfLSGD(**settings), hierarchy, train, test), args.repeats)
    if "hsgd" in models:
        results["tfidf_hsgd"] = repeated(lambda: bench_ktt(TfidfHSGD(decoding="greedy", **settings), hierarchy, train, test), args.repeats)
    if "hiclass" in models:
        try:
            import hiclass  # noqa: F401
        except ImportError:
            print("hiclass is not installed: its row is skipped (pip install hiclass==5.0.8)")
        else:
            results["hiclass_lcppn"] = repeated(lambda: bench_hiclass(
                args, hierarchy, index_of, true_paths, train, test, list(train_frame["path"])), args.repeats)
    print(table(results, hierarchy.depth))


if __name__ == "__main__":
    main()
