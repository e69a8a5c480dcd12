"""A battery of bad inputs: each one is one line, ``ktt: error: <cause>; <fix>``, and nothing else.

For every command case: stderr is exactly that line (no traceback, no MLflow or
library chatter, no progress bars), the exit status is 2 (1 for a failed sweep),
the MLflow run is FAILED with the same line as its ``ktt.error`` (or there is no
new run, when the command fails before one starts), the earlier runs are
untouched, and no other file changed (cache, artifacts, data; a cache entry may
be added only by a case that fails after the data was adapted).

Cases cover CLI overrides, data files, the dataset cache, the tracking store,
SQL sources, checkpoints and exports (``python -m ktt.export``), permissions and
the served API. Speed: every case starts from a copy of one template folder with
two runs trained once (tiny data); commands run in one batch through
``tests/forkserver.py`` (forked from a process that has the imports done, two at
a time); permission cases run as real subprocesses without CAP_DAC_OVERRIDE (root
ignores chmod); the served API runs in process (the bento service's ASGI app).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from conftest import ROOT, cli_env
from ktt.testing import free_port

ERROR = "ktt: error: "
LEAVES = {"Food > Snacks > Chips": "salted potato chips crisp", "Food > Snacks > Nuts": "roasted peanuts almonds",
          "Food > Drinks > Tea": "green tea bags herbal", "Home > Garden > Hose": "garden hose water spray",
          "Home > Garden > Tools": "steel rake shovel", "Home > Decor > Hooks": "wall hooks metal hanger"}
BASE = ["dataset=file", "dataset.path=tiny.csv", "min_df=1", "plots=false", "progress=false"]
BAD = ["dataset=file", "dataset.path=bad.csv", "min_df=1", "plots=false", "progress=false"]
SQL = ["dataset=sql", "dataset.url=sqlite:///shop.db", "min_df=1", "plots=false", "progress=false"]
SETPRIV = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
#: Settings that keep a tfidf_lsgd model convertible to ONNX, where its config has char n-grams and sublinear tf.
ONNX_READY = (["char_ngrams=null", "sublinear_tf=false"]
              if "char_ngrams" in (ROOT / "conf" / "model" / "tfidf_lsgd.yaml").read_text() else [])


def tiny_rows(n: int = 60) -> list[tuple[str, str]]:
    """``n`` rows over 6 leaves (3 levels): a few shuffled words per leaf and a number."""
    rows = []
    for i in range(n):
        path = list(LEAVES)[i % len(LEAVES)]
        words = LEAVES[path].split()
        words = words[i % len(words):] + words[: i % len(words)]
        rows.append((f"{' '.join(words)} item {i}", path))
    return rows


def write_csv(path: Path, rows, header=("text", "category")) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


# --------------------------------------------------------------------- the fork server
class ForkServer:
    """The client of ``tests/forkserver.py``: runs batches of ``python -m ...`` commands."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "forkserver.py")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=cli_env(), cwd=ROOT)
        line = self.process.stdout.readline()
        assert line and json.loads(line)["ready"], "the fork server did not start"

    def run(self, commands: list[dict], parallel: int = 2) -> list[dict]:
        self.process.stdin.write(json.dumps({"parallel": parallel, "commands": commands}) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(60)


def command(module: str, args: list[str], cwd: Path, timeout: int = 240) -> dict:
    return {"module": module, "args": args, "cwd": str(cwd), "stdout": str(cwd.parent / f"{cwd.name}.out"),
            "stderr": str(cwd.parent / f"{cwd.name}.err"), "timeout": timeout}


# ------------------------------------------------------------------------- the template
@dataclass
class Template:
    root: Path
    lsgd: str  # FINISHED tfidf_lsgd run with a reference set
    hsgd_failed: str  # FAILED tfidf_hsgd run that has a checkpoint (export=onnx failed after training)

    def copy(self, dest: Path) -> Path:
        """A copy of the template (store, artifacts, cache, data) whose MLflow store points at its own artifacts."""
        shutil.copytree(self.root, dest, symlinks=True)
        db = sqlite3.connect(dest / "mlflow.db")
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                              ("logged_models", "artifact_location")):
            db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (str(self.root), str(dest)))
        db.commit()
        db.close()
        return dest

    def artifacts(self, cwd: Path, run_id: str) -> Path:
        (path,) = (cwd / "mlruns").glob(f"*/{run_id}/artifacts")
        return path


@pytest.fixture(scope="session")
def server():
    forks = ForkServer()
    yield forks
    forks.close()


@pytest.fixture(scope="session")
def template(tmp_path_factory, server) -> Template:
    """Two runs on 60 rows of tiny data, trained once for the whole battery."""
    root = tmp_path_factory.mktemp("bad_inputs") / "template"
    root.mkdir()
    write_csv(root / "tiny.csv", tiny_rows())
    logs = root.parent
    first = server.run([command("ktt", BASE + ["model=tfidf_lsgd", "reference=true", *ONNX_READY], root)],
                       parallel=1)  # the store: alone
    second = server.run([command("ktt", BASE + ["model=tfidf_hsgd", "export=onnx"], root)], parallel=1)
    assert [r["status"] for r in first + second] == [0, 2], (logs / "template.err").read_text()
    shutil.rmtree(root / "outputs")
    store = read_store(root)
    by = {(run["name"], run["status"]): run_id for run_id, run in store["runs"].items()}
    return Template(root, lsgd=by["tfidf_lsgd", "FINISHED"], hsgd_failed=by["tfidf_hsgd", "FAILED"])


# --------------------------------------------------------------------------- snapshots
def read_store(cwd: Path) -> dict:
    """Runs (status, stage, tags, params, metrics) and experiments of the sqlite store in ``cwd``."""
    path = cwd / "mlflow.db"
    if not path.is_file():
        return {"runs": {}, "experiments": {}}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        runs = {run_id: {"name": name, "status": status, "stage": stage, "end": end, "tags": {}, "params": {},
                         "metrics": {}}
                for run_id, name, status, stage, end in
                db.execute("SELECT run_uuid, name, status, lifecycle_stage, end_time FROM runs")}
        for table, kind in (("tags", "tags"), ("params", "params"), ("latest_metrics", "metrics")):
            for key, value, run_id in db.execute(f"SELECT key, value, run_uuid FROM {table}"):
                runs[run_id][kind][key] = value
        experiments = dict(db.execute("SELECT experiment_id, name FROM experiments"))
    finally:
        db.close()
    return {"runs": runs, "experiments": experiments}


IGNORED = ("outputs", "multirun", "mlflow.db", "mlflow.db-journal")  # Hydra's job folders, the store


def read_files(cwd: Path) -> dict[str, tuple]:
    """Every file and folder under ``cwd`` (Hydra's outputs/ and the store aside): size and mtime of files."""
    found = {}
    for path in cwd.rglob("*"):
        relative = path.relative_to(cwd).as_posix()
        if relative.split("/")[0] in IGNORED:
            continue
        stat = path.lstat()
        found[relative] = ("dir",) if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return found


# ------------------------------------------------------------------------------ cases
@dataclass
class Case:
    """One bad input.

    ``run``: ``none`` (no new run, no new experiment), ``failed`` (one new FAILED run whose
    ``ktt.error`` is the line) or ``sweep`` (new runs allowed, all FAILED). ``cache``: the
    failure comes after the data was adapted, so a new cache entry is fine. ``privileged``:
    run as a real subprocess without CAP_DAC_OVERRIDE (permission cases).
    """

    id: str
    args: list[str]
    message: str
    run: str = "none"
    module: str = "ktt"
    prepare: Callable[[Path, Template], None] | None = None
    status: int = 2
    cache: bool = False
    subprocess: bool = False
    privileged: bool = False
    env: dict = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # strings that must not appear (e.g. a password)


def files(**contents) -> Callable:
    """Prepare: write files (str or bytes) into the case folder."""
    def prepare(cwd, template):
        for name, content in contents.items():
            name = name.replace("__", ".")
            (cwd / name).write_bytes(content) if isinstance(content, bytes) else (cwd / name).write_text(content)
    return prepare


def bad_csv(rows) -> Callable:
    return lambda cwd, template: write_csv(cwd / "bad.csv", rows)


def run_status(status: str, run: str = "lsgd") -> Callable:
    def prepare(cwd, template):
        db = sqlite3.connect(cwd / "mlflow.db")
        column = "lifecycle_stage" if status == "deleted" else "status"
        db.execute(f"UPDATE runs SET {column} = ? WHERE run_uuid = ?", (status, getattr(template, run)))
        db.commit()
        db.close()
    return prepare


def checkpoint(action: str) -> Callable:
    def prepare(cwd, template):
        path = template.artifacts(cwd, template.lsgd) / "checkpoint" / "model.joblib"
        if action == "delete":
            path.unlink()
        else:
            path.write_bytes(b"not the checkpoint that was trained")
    return prepare


def damage_cache(relative: str, content: str) -> Callable:
    def prepare(cwd, template):
        (entry,) = (cwd / ".ktt" / "cache" / "tiny").iterdir()
        (entry / relative).write_text(content)
    return prepare


def chmod(relative: str, mode: int) -> Callable:
    def prepare(cwd, template):
        path = cwd / relative
        if not path.exists():
            path.mkdir(parents=True)
        os.chmod(path, mode)
    return prepare


def chmod_tree(relative: str) -> Callable:
    def prepare(cwd, template):
        shutil.copy(cwd / "tiny.csv", cwd / "other.csv")  # a new dataset: a new cache entry to write
        for folder, _, _ in os.walk(cwd / relative):
            os.chmod(folder, 0o555)
    return prepare


CLASSES = [(1, None, "Food"), (2, 1, "Snacks"), (3, 1, "Drinks"), (4, None, "Home"), (5, 4, "Garden")]
ITEMS = [(i, f"thing {i} word{i % 3}", [2, 3, 5][i % 3]) for i in range(1, 41)]


def shop(classes=CLASSES, items=ITEMS) -> Callable:
    """Prepare: a SQLite shop database with ``classes`` and ``items`` tables."""
    def prepare(cwd, template):
        db = sqlite3.connect(cwd / "shop.db")
        db.execute("CREATE TABLE classes (id INTEGER, parent_id INTEGER, name TEXT)")
        db.execute("CREATE TABLE items (id INTEGER, text TEXT, class_id INTEGER)")
        db.executemany("INSERT INTO classes VALUES (?, ?, ?)", classes)
        db.executemany("INSERT INTO items VALUES (?, ?, ?)", items)
        db.commit()
        db.close()
    return prepare


ROWS = tiny_rows(40)
PORT = free_port()  # nothing listens there

CASES = [
    # ---------------------------------------------------------------- the command line
    Case("unknown-loss", BASE + ["loss=foo"], r"invalid loss='foo' \(allowed: hinge"),
    Case("min_df-not-a-number", BASE + ["min_df=abc"], r"invalid min_df='abc'"),
    Case("max_iter-zero", BASE + ["max_iter=0"], r"invalid max_iter=0"),
    Case("negative-tol", BASE + ["tol=-1"], r"invalid tol=-1"),
    Case("unknown-keep_models", BASE + ["keep_models=some"], r"invalid keep_models='some' \(allowed: best, all\)"),
    Case("negative-seed", BASE + ["seed=-1"], r"invalid seed=-1 \(allowed: null or an integer in \[0, inf\]\)"),
    Case("model-key-out-of-range", BASE + ["model.C=-1"], r"invalid model.C=-1"),
    Case("unknown-key", BASE + ["los=hinge"], r"unknown key 'los'"),
    Case("unknown-model", BASE + ["model=nope"], r"unknown model 'nope' \(available: .*tfidf_lsgd"),
    Case("unknown-export", BASE + ["export=nope"], r"unknown export 'nope'"),
    Case("unknown-dataset-key", BASE + ["dataset.pth=x"], r"unknown key 'dataset.pth'"),
    Case("missing-dataset-path", ["dataset=file"], r"missing required setting dataset\.path.*dataset\.path="),
    Case("missing-data-file", ["dataset=file", "dataset.path=missing.csv"], r"missing\.csv does not exist"),
    Case("split-of-two", BASE + ["dataset.split=[0.5,0.5]"], r"invalid split=\[0\.5, 0\.5\]"),
    Case("proportion-zero", BASE + ["dataset.proportion=0"], r"invalid proportion=0"),
    Case("unknown-format", BASE + ["dataset.format=xls"], r"invalid format='xls'"),
    Case("empty-delimiter", BASE + ["dataset.delimiter="], r"invalid delimiter=''"),
    Case("text-column-is-the-label-column", BASE + ["dataset.text_col=category"],
         r"dataset\.text_col and dataset\.label_col name the same column 'category'; give each its own column$"),
    Case("export-batch-of-one", BASE + ["export=bento", "export.max_batch_size=1"], r"invalid export\.max_batch_size=1"),
    Case("override-syntax", BASE + ["loss=[1"], r"cannot parse the override 'loss=\[1'"),
    Case("unknown-flag", BASE + ["--nope"], r"unrecognized arguments: --nope"),
    Case("reference-needs-test", BASE + ["reference=true", "evaluate_test=false"], r"reference_split=test needs"),
    Case("unknown-reference-split", BASE + ["reference=true", "reference_split=nope"],
         r"invalid reference_split='nope' \(allowed: train, val, test\)"),
    Case("plots-not-a-bool", BASE + ["plots=maybe"], r"invalid plots='maybe'"),
    Case("extra-adapter-argument", BASE + ["+dataset.foo=1"], r"invalid settings for dataset: .*'foo'"),
    Case("unknown-target", BASE + ["model._target_=nope.Nope"], r"cannot find 'nope\.Nope' \(set by model\._target_\)"),
    Case("unset-environment-variable", BASE + ["dataset.text_col=${oc.env:KTT_TEST_UNSET}"],
         r"invalid setting dataset\.text_col=.*KTT_TEST_UNSET"),
    Case("unknown-resolver", BASE + ["dataset.text_col=${nope:x}"], r"invalid setting dataset\.text_col"),
    Case("hydra-run-dir-is-a-file", BASE + ["hydra.run.dir=tiny.csv"],
         r"already exists: tiny\.csv \(from hydra\.run\.dir=tiny\.csv\)"),
    Case("unknown-launcher", BASE + ["hydra/launcher=nope"], r"unknown hydra/launcher 'nope' \(available: basic, joblib"),
    Case("sweeper-setting-not-a-number", ["-m", "hparams_search=tfidf_lsgd", "hydra.sweeper.n_trials=abc", *BASE[:2]],
         r"hydra\.sweeper\.n_trials=abc.*could not be converted to Integer"),
    Case("launcher-without-workers", ["-m", *BASE, "hydra/launcher=joblib", "hydra.launcher.n_jobs=0",
                                      "loss=hinge,log_loss"], r"n_jobs == 0.*hydra\.launcher\.n_jobs", run="sweep"),
    Case("sweep-of-failures", ["-m", *BASE[:2], "plots=false", "loss=hinge,foo", "min_df=100000"],
         r"^2 of 2 sweep jobs failed: job 0 \(loss=hinge\), job 1 \(loss=foo\)$", run="sweep", status=1, cache=True),
    # ------------------------------------------------------------------ the tracking store
    Case("tracking-uri-unknown-scheme", BASE + ["tracking.uri=foo://bar"],
         r"MLflow does not support tracking\.uri='foo://bar'.*tracking\.uri=sqlite:///mlflow\.db"),
    Case("tracking-uri-file-store", BASE + ["tracking.uri=./runs"], r"MLflow's file store.*MLFLOW_ALLOW_FILE_STORE"),
    Case("tracking-server-down", BASE + [f"tracking.uri=http://127.0.0.1:{PORT}"],
         rf"cannot reach the MLflow tracking server http://127\.0\.0\.1:{PORT}"),
    Case("tracking-db-not-a-database", BASE + ["tracking.uri=sqlite:///tiny.csv"],
         r"database error: file is not a database; check that tiny\.csv"),
    Case("empty-experiment-name", BASE + ["tracking.experiment="], r"experiment name.*tracking\.experiment"),
    # ------------------------------------------------------------------------ data files
    Case("no-such-text-column", BASE + ["dataset.text_col=title"], r"column 'title' not found in tiny\.csv", run="failed"),
    Case("depth-deeper-than-data", BASE + ["dataset.depth=5"], r"depth=5 is deeper than the data", run="failed"),
    Case("reserved-stop-label", BAD, r"the label '<stop>' is reserved", run="failed",
         prepare=bad_csv([(t, "A > <stop>" if i % 2 else "A > B > C") for i, (t, _) in enumerate(ROWS)])),
    Case("unknown-split-value", BAD + ["dataset.split_col=fold"],
         r"dataset\.split_col=fold: row 3 has the split 'dev' \(allowed: train, val, test", run="failed",
         prepare=files(bad__csv="text,category,fold\n" + "".join(
             f"{t},{p},{'dev' if i == 3 else ('train', 'val', 'test')[i % 3]}\n" for i, (t, p) in enumerate(ROWS)))),
    Case("empty-given-split", BAD + ["dataset.split_col=fold"], r"the val split of dataset 'bad' is empty",
         run="failed", prepare=files(bad__csv="text,category,fold\n" + "".join(
             f"{t},{p},{('train', 'test')[i % 2]}\n" for i, (t, p) in enumerate(ROWS)))),
    Case("empty-file", BAD, r"cannot read bad\.csv as csv", run="failed", prepare=files(bad__csv="")),
    Case("header-only", BAD, r"no usable rows \(0 read", run="failed", prepare=files(bad__csv="text,category\n")),
    Case("all-texts-empty", BAD, r"no usable rows \(40 read, all dropped: empty or missing text \(40\)\)", run="failed",
         prepare=bad_csv([("", p) for _, p in ROWS])),
    Case("trailing-separator-in-every-label", BAD,
         r"no usable rows \(40 read, all dropped: label path with an empty level \(40\)\)", run="failed",
         prepare=bad_csv([(t, p + " > ") for t, p in ROWS])),
    Case("binary-file", BAD, r"cannot read bad\.csv as csv: it is not UTF-8 text \(byte 0x80\)", run="failed",
         prepare=files(bad__csv=bytes(range(256)) * 20)),
    Case("latin-1-file", BAD, r"cannot read bad\.csv as csv: it is not UTF-8 text \(byte 0xe9\); convert it first, "
         r"e\.g\. iconv -f latin1 -t utf-8 bad\.csv > bad\.utf8\.csv$", run="failed",
         prepare=files(bad__csv="text,category\ncafé crème,Food > Drinks\n".encode("latin-1"))),
    Case("not-parquet", ["dataset=file", "dataset.path=bad.parquet"], r"cannot read bad\.parquet as parquet",
         run="failed", prepare=files(bad__parquet="text,category\n")),
    Case("truncated-json", ["dataset=file", "dataset.path=bad.json"], r"cannot read bad\.json as json", run="failed",
         prepare=files(bad__json='{"text": [1, 2')),
    Case("data-path-is-a-folder", ["dataset=file", "dataset.path=mlruns"], r"dataset\.path=mlruns is a folder"),
    Case("progress-bars-stay-off-stderr", ["dataset=file", "dataset.path=bad.csv", "min_df=100000", "plots=false"],
         r"min_df=100000 is larger than the 8\d{3} training texts", run="failed", cache=True,
         prepare=bad_csv([(f"word{i} thing", f"A > {i % 5}") for i in range(10_500)])),
    Case("unknown-suffix", ["dataset=file", "dataset.path=bad.txt"], r"cannot tell the format of bad\.txt",
         prepare=files(bad__txt="text")),
    Case("tsv-named-csv", BAD, r"column 'text' not found in bad\.csv", run="failed",
         prepare=files(bad__csv="text\tcategory\n" + "word thing\tA > B\n" * 30)),
    Case("too-few-rows", BAD, r"2 usable rows: too few for split", run="failed",
         prepare=bad_csv([("word thing", "A > B"), ("other word", "C > D")])),
    Case("punctuation-only-texts", BAD, r"no terms \(empty vocabulary\)", run="failed", cache=True,
         prepare=bad_csv([("!! a , b ?", p) for _, p in ROWS])),
    Case("punctuation-only-texts-hsgd", BAD + ["model=tfidf_hsgd"], r"no terms \(empty vocabulary\)", run="failed",
         cache=True, prepare=bad_csv([("!! a , b ?", p) for _, p in ROWS])),
    Case("single-class", BAD, r"class", run="failed", cache=True,
         prepare=bad_csv([(t, "A > B") for t, _ in ROWS])),
    Case("min_df-too-high", BASE[:2] + ["min_df=100000", "plots=false"], r"min_df=100000 is larger than the 48",
         run="failed", cache=True),
    Case("min_df-fraction-leaves-nothing", BAD[:2] + ["min_df=0.99", "plots=false"], r"min_df.*lower min_df",
         run="failed", cache=True, prepare=bad_csv([(f"word{i} thing{i}", p) for i, (_, p) in enumerate(ROWS)])),
    Case("n_jobs-zero", BASE + ["n_jobs=0"],
         r"invalid n_jobs=0 \(allowed: null or an integer in \[-inf, -1\] or an integer in \[1, inf\]\)"),
    Case("objective-not-a-metric", BASE + ["objective=nope"], r"objective 'nope' is not a computed metric",
         run="failed", cache=True),
    # ------------------------------------------------------------------------- the cache
    Case("cache-dir-is-a-file", BASE + ["paths.cache_dir=tiny.csv"],
         r"not a directory: tiny\.csv/tiny \(from paths\.cache_dir=tiny\.csv\)", run="failed"),
    Case("cache-meta-damaged", BASE, r"cached dataset \.ktt/cache/tiny/\w+ is damaged.*delete", run="failed",
         prepare=damage_cache("meta.json", "{not json")),
    Case("cache-split-damaged", BASE, r"cached dataset .* is damaged.*delete", run="failed",
         prepare=damage_cache("train.parquet", "garbage")),
    # ------------------------------------------------------------------------- SQL sources
    Case("sqlite-file-missing", SQL, r"SQLite database shop\.db does not exist"),
    Case("sql-syntax-error", SQL + ["dataset.items_query=SELEC nope"], r"cannot run items_query.*syntax error",
         run="failed", prepare=shop()),
    Case("sql-cycle", SQL, r"class 6 is its own ancestor", run="failed",
         prepare=shop(CLASSES + [(6, 7, "A"), (7, 6, "B")], ITEMS + [(99, "loop", 6)])),
    Case("sql-orphan", SQL, r"class 6 has parent_id 77", run="failed",
         prepare=shop(CLASSES + [(6, 77, "A")], ITEMS + [(99, "orphan", 6)])),
    Case("sql-not-a-database", SQL, r"file is not a database", run="failed", prepare=files(shop__db="not a database")),
    Case("sql-server-down-password-masked", ["dataset=sql", f"dataset.url=postgresql+psycopg://u:s3cret@127.0.0.1:{PORT}/db"],
         r"cannot connect to postgresql\+psycopg://u:\*\*\*@", run="failed", absent=("s3cret",)),
    # --------------------------------------------------------------- checkpoints and exports
    Case("export-failed-run", ["run_id={hsgd_failed}", "export=bento"], r"is FAILED \(.*\), not FINISHED.*allow_unfinished=true",
         module="ktt.export"),
    Case("export-failed-run-onnx", ["run_id={lsgd}", "export=onnx"], r"is FAILED, not FINISHED", module="ktt.export",
         prepare=run_status("FAILED")),
    Case("export-killed-run", ["run_id={lsgd}", "export=onnx"], r"is KILLED, not FINISHED", module="ktt.export",
         prepare=run_status("KILLED")),
    Case("export-running-run", ["run_id={lsgd}", "export=onnx"], r"is RUNNING, not FINISHED", module="ktt.export",
         prepare=run_status("RUNNING")),
    Case("export-deleted-run", ["run_id={lsgd}", "export=onnx"], r"is deleted; restore it", module="ktt.export",
         prepare=run_status("deleted")),
    Case("export-unsupported-format", ["run_id={hsgd_failed}", "export=onnx", "allow_unfinished=true"],
         r"ONNX export is not supported for TfidfHSGD", module="ktt.export"),
    Case("export-nothing", ["run_id={lsgd}"], r"nothing to export", module="ktt.export"),
    Case("export-without-run-id", ["export=onnx"], r"give one run_id=", module="ktt.export"),
    Case("export-unknown-run", ["run_id=nope", "export=onnx"], r"no MLflow run 'nope'", module="ktt.export"),
    Case("export-latest-of-nothing", ["run_id=latest", "export=onnx", "dataset=file", "dataset.path=other.csv"],
         r"no MLflow experiment 'other'", module="ktt.export", prepare=files(other__csv="text,category\n")),
    Case("export-tampered-checkpoint", ["run_id={lsgd}", "export=onnx"],
         r"runs:/\w+/checkpoint/model\.joblib does not match its recorded sha256", module="ktt.export",
         prepare=checkpoint("tamper")),
    Case("export-missing-checkpoint", ["run_id={lsgd}", "export=onnx"], r"records a checkpoint, but .* cannot be downloaded",
         module="ktt.export", prepare=checkpoint("delete")),
    Case("export-bad-flag-value", ["run_id={lsgd}", "export=onnx", "allow_unfinished=maybe"],
         r"invalid allow_unfinished='maybe'", module="ktt.export"),
    Case("export-bad-setting", ["run_id={lsgd}", "export=onnx", "export.tolerance=0"], r"invalid export\.tolerance=0",
         module="ktt.export"),
    Case("export-unknown-store", ["run_id={lsgd}", "export=onnx", "tracking.uri=foo://x"], r"MLflow does not support",
         module="ktt.export"),
    # ------------------------------------------- real subprocesses: permissions, verbose, no fork
    Case("cache-dir-not-writable", BASE + ["paths.cache_dir=ro/cache"],
         r"permission denied: ro/cache \(from paths\.cache_dir=ro/cache\)", run="failed", privileged=True,
         prepare=chmod("ro", 0o555)),
    Case("cache-tree-not-writable", ["dataset=file", "dataset.path=other.csv", "plots=false"],
         r"permission denied: \.ktt/cache/other \(from paths\.cache_dir", run="failed", privileged=True,
         prepare=chmod_tree(".ktt")),
    Case("data-file-not-readable", BASE, r"permission denied: tiny\.csv \(from dataset\.path=tiny\.csv\)", run="failed",
         privileged=True, prepare=chmod("tiny.csv", 0)),
    Case("working-directory-not-writable", BASE, r"permission denied: outputs; .*folder this user can write",
         privileged=True, prepare=chmod(".", 0o555)),
    Case("store-read-only", BASE, r"attempt to write a readonly database", privileged=True,
         prepare=chmod("mlflow.db", 0o444)),
    Case("missing-dataset-path-no-fork", ["dataset=file"], r"missing required setting dataset\.path", subprocess=True),
    Case("empty-vocabulary-no-fork", BAD, r"no terms \(empty vocabulary\)", run="failed", cache=True, subprocess=True,
         prepare=bad_csv([("!! a , b ?", p) for _, p in ROWS])),
]


def case_id(case):
    return case.id


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str
    before: dict
    after: dict
    files_before: dict
    files_after: dict
    seconds: float


def _restore_permissions(cwd: Path) -> None:
    for folder, dirs, names in os.walk(cwd):
        os.chmod(folder, 0o755)
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink():
                os.chmod(path, 0o644)


@pytest.fixture(scope="session")
def outcomes(template, server, tmp_path_factory, request) -> dict[str, Outcome]:
    """Every selected command case, run once: forked ones two at a time, then the subprocess ones."""
    base = tmp_path_factory.mktemp("cases")
    ids = {"lsgd": template.lsgd, "hsgd_failed": template.hsgd_failed}
    selected = {item.callspec.params["case"].id for item in request.session.items
                if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)}
    cases = [case for case in CASES if case.id in selected]
    prepared = {}
    for case in cases:
        cwd = template.copy(base / case.id)
        if case.prepare:
            case.prepare(cwd, template)
        args = [arg.format(**ids) if "{" in arg and "${" not in arg else arg for arg in case.args]
        prepared[case.id] = (cwd, args, read_store(cwd), read_files(cwd))

    forked = [case for case in cases if not (case.subprocess or case.privileged)]
    results = dict(zip([c.id for c in forked], server.run(
        [command(c.module, prepared[c.id][1], prepared[c.id][0]) | {"env": c.env} for c in forked], parallel=2)))

    def real(case):
        cwd, args = prepared[case.id][:2]
        prefix = SETPRIV if case.privileged and os.geteuid() == 0 else []  # root ignores chmod without it
        if prefix and not shutil.which("setpriv"):
            return None
        result = subprocess.run([*prefix, sys.executable, "-m", case.module, *args], cwd=cwd, capture_output=True,
                                text=True, env=cli_env(case.env), timeout=300)
        (cwd.parent / f"{cwd.name}.out").write_text(result.stdout)
        (cwd.parent / f"{cwd.name}.err").write_text(result.stderr)
        return {"status": result.returncode, "seconds": 0.0}

    others = [case for case in cases if case.subprocess or case.privileged]
    with ThreadPoolExecutor(2) as pool:
        results.update(zip([c.id for c in others], pool.map(real, others)))

    found = {}
    for case in cases:
        cwd, _, store, before = prepared[case.id]
        _restore_permissions(cwd)
        if results[case.id] is None:
            continue
        found[case.id] = Outcome(results[case.id]["status"], (base / f"{case.id}.out").read_text(),
                                 (base / f"{case.id}.err").read_text(), store, read_store(cwd), before,
                                 read_files(cwd), results[case.id]["seconds"])
    if os.environ.get("KTT_TEST_TIMINGS"):
        print("\n" + "\n".join(f"{o.seconds:6.2f} {i}" for i, o in sorted(found.items(), key=lambda x: -x[1].seconds)))
    return found


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_bad_input_is_one_line_and_changes_nothing_else(case, outcomes):
    if case.id not in outcomes:
        pytest.skip("permission cases run as root need setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    outcome = outcomes[case.id]
    lines = outcome.stderr.rstrip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), outcome.stderr[-3000:]
    message = lines[0][len(ERROR):]
    assert re.search(case.message, message), message
    assert outcome.status == case.status, outcome.stderr
    for secret in case.absent:
        assert secret not in outcome.stderr + outcome.stdout

    before, after = outcome.before["runs"], outcome.after["runs"]
    for run_id, run in before.items():  # earlier runs untouched: status, tags, params, metrics
        assert after[run_id] == run, f"run {run_id} changed"
    new = {run_id: run for run_id, run in after.items() if run_id not in before}
    if case.run == "none":
        assert not new, new
        assert outcome.after["experiments"] == outcome.before["experiments"]
    elif case.run == "failed":
        assert len(new) == 1, new
        (run,) = new.values()
        assert run["status"] == "FAILED" and run["tags"]["ktt.error"] == message
    else:  # a sweep: its parent and jobs, all FAILED
        assert new and all(run["status"] == "FAILED" for run in new.values())

    # nothing else changed: files of the new runs (and a new cache entry, if the data was adapted first) only
    new_runs = set(new)
    new_experiments = set(outcome.after["experiments"]) - set(outcome.before["experiments"])
    changed = {path for path in set(outcome.files_before) | set(outcome.files_after)
               if outcome.files_before.get(path) != outcome.files_after.get(path)}
    allowed = set()
    for path in changed:
        parts = path.split("/")
        if parts[0] == "mlruns" and (len(parts) < 3 or parts[1] in new_experiments or parts[2] in new_runs):
            allowed.add(path)
        elif case.cache and parts[0] == ".ktt" and path not in outcome.files_before:
            allowed.add(path)
    assert changed == allowed, sorted(changed - allowed)
    assert not [p for p in outcome.files_after if ".tmp-" in p], "temporary files left behind"


def test_verbose_shows_the_traceback_then_the_line(template, server, tmp_path):
    """``--verbose`` (or HYDRA_FULL_ERROR=1, as Hydra does) shows the traceback of a user error, then its line."""
    cwd = template.copy(tmp_path / "verbose")
    result = subprocess.run([sys.executable, "-m", "ktt", *BASE, "loss=foo", "--verbose"], cwd=cwd,
                            capture_output=True, text=True, env=cli_env(), timeout=300)
    (forked,) = server.run([command("ktt", BASE + ["loss=foo"], cwd) | {"env": {"HYDRA_FULL_ERROR": "1"}}])
    for status, stderr in ((result.returncode, result.stderr), (forked["status"], (tmp_path / "verbose.err").read_text())):
        lines = stderr.strip().splitlines()
        assert status == 2 and lines[0] == "Traceback (most recent call last):", stderr
        assert lines[-1].startswith("ktt: error: invalid loss='foo'")


def test_allow_unfinished_exports_a_failed_run_and_tags_it(template, server, tmp_path):
    cwd = template.copy(tmp_path / "allowed")
    run_status("FAILED")(cwd, template)
    (result,) = server.run([command("ktt.export", [f"run_id={template.lsgd}", "export=onnx", "allow_unfinished=true"],
                                    cwd)])
    assert result["status"] == 0 and (tmp_path / "allowed.err").read_text() == ""
    run = read_store(cwd)["runs"][template.lsgd]
    assert run["status"] == "FAILED" and run["tags"]["ktt.export.allow_unfinished"] == "true"
    assert run["tags"]["ktt.export.onnx"].endswith("/export/onnx/model.onnx")


def test_a_bug_keeps_its_traceback():
    """An exception no rule claims is not a user error: the CLI boundary re-raises it."""
    from ktt.errors import error_line, user_message

    bug = ZeroDivisionError("division by zero")
    assert user_message(bug) is None and error_line(bug) == "ZeroDivisionError: division by zero"
    try:
        {}["key"]
    except KeyError as error:
        assert user_message(error) is None
    assert user_message(ValueError("a ValueError from ktt's own code")) is None
    assert user_message(FileNotFoundError(2, "No such file or directory")) is None  # no path: nothing to act on


def test_a_scikit_learn_error_inside_a_fit_is_one_line():
    """A ValueError that scikit-learn raises while fitting, with no rule of its own, names the settings."""
    from sklearn.svm import LinearSVC

    from ktt.errors import user_message

    try:
        LinearSVC(penalty="l1", loss="hinge").fit([[1.0, 0.0], [0.0, 1.0]] * 2, [0, 1, 0, 1])
    except ValueError as error:
        message = user_message(error)
    assert message.startswith("the model cannot be fitted with these settings and data: Unsupported set of "
                              "arguments") and message.endswith("; check the model's settings")


# ------------------------------------------------------------------------- the served API
H = {"content-type": "application/json"}
API_CASES = [
    # (id, body, headers, status, message)
    ("invalid-json", b"{not json", H, 400, r"^invalid JSON: "),
    ("truncated-json", b'{"text": "cholera"', H, 400, r"^invalid JSON: "),
    ("trailing-garbage", b'{"text": "a"} x', H, 400, r"^invalid JSON: trailing"),
    ("empty-body", b"", H, 400, r"^empty request body"),
    ("blank-body", b"  \n ", H, 400, r"^empty request body"),
    ("nan", b'{"text": NaN}', H, 400, r"^invalid JSON"),
    ("lone-surrogate", b'{"text": "\\ud800 chips"}', H, 400, r"^invalid JSON"),
    ("latin-1-body", b'{"text": "caf\xe9"}', H, 400, r"^invalid JSON"),
    ("deep-arrays", b"[" * 10_000 + b"]" * 10_000, H, 400, r"^JSON nested too deeply"),
    ("deep-objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, H, 400, r"^JSON nested too deeply"),
    ("deep-inside-texts", b'{"texts": ' + b"[" * 40 + b'"a"' + b"]" * 40 + b"}", H, 400, r"^JSON nested too deeply"),
    ("top-level-array", b'["a", "b"]', H, 400, r"^the body must be a JSON object, got an array"),
    ("top-level-string", b'"cholera"', H, 400, r"must be a JSON object, got a string"),
    ("top-level-null", b"null", H, 400, r"must be a JSON object, got null"),
    ("text-plain", b'{"text": "cholera"}', {"content-type": "text/plain"}, 415, r"^unsupported Content-Type 'text/plain'"),
    ("form-encoded", b"text=cholera", {"content-type": "application/x-www-form-urlencoded"}, 415,
     r"unsupported Content-Type 'application/x-www-form-urlencoded'"),
    ("xml", b"<text>cholera</text>", {"content-type": "application/xml"}, 415, r"unsupported Content-Type"),
    ("no-content-type", b'{"text": "cholera"}', {}, 415, r"^no Content-Type"),
    ("over-the-size-limit", b'{"text": "' + b"a" * 70_000 + b'"}', H, 413, r"over the limit of 65536 bytes"),
    ("chunked-over-the-limit", [b'{"text": "', b"a" * 40_000, b"a" * 40_000, b'"}'], H, 413, r"over the limit"),
    ("missing-text", b"{}", H, 400, r"^missing input"),
    ("misspelt-field", b'{"txt": "cholera"}', H, 400, r"^missing input"),
    ("text-a-number", b'{"text": 42}', H, 400, r'"text" must be a string, got a number'),
    ("text-empty", b'{"text": "  "}', H, 400, r'"text" is empty'),
    ("texts-a-string", b'{"texts": "cholera"}', H, 400, r'"texts" must be an array of strings'),
    ("texts-empty", b'{"texts": []}', H, 400, r'"texts" is an empty array'),
    ("texts-with-a-number", b'{"texts": ["cholera", 3]}', H, 400, r'"texts"\[1\] must be a string'),
    ("text-and-texts", b'{"text": "a", "texts": ["b"]}', H, 400, r'either "text" or "texts"'),
    ("huge-number", b'{"text": 1' + b"0" * 5000 + b"}", H, 400, r"^invalid JSON"),
]


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def api(template, tmp_path_factory):
    """The tfidf_lsgd service as the bento has it (its build context), in process, with a 64 KiB body limit."""
    from starlette.testclient import TestClient

    from ktt import tracking
    from ktt.export.bento import write_build_context

    model = tracking.load_model(template.lsgd, tracking_uri=f"sqlite:///{template.root / 'mlflow.db'}")
    context = write_build_context(model, tmp_path_factory.mktemp("service") / "context",
                                  info={"run_id": template.lsgd, "dataset": "tiny"})
    data = json.loads((context / "ktt_service.json").read_text())
    data.update(max_body_bytes=65_536, monitoring=False)
    (context / "ktt_service.json").write_text(json.dumps(data))
    spec = importlib.util.spec_from_file_location("ktt_bad_inputs_service", context / "service.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    records = Records()
    logging.getLogger().addHandler(records)
    try:
        with TestClient(module.TfidfLSGD.to_asgi(), raise_server_exceptions=False) as client:
            yield client, records
    finally:
        logging.getLogger().removeHandler(records)
        sys.modules.pop(spec.name, None)


@pytest.mark.parametrize("case_id, body, headers, status, message", API_CASES, ids=[c[0] for c in API_CASES])
def test_a_bad_request_gets_ktts_own_answer_and_one_warning(api, case_id, body, headers, status, message):
    client, records = api
    start = len(records.records)
    content = iter(body) if isinstance(body, list) else body
    response = client.post("/predict", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert set(answer) == {"error"} and re.search(message, answer["error"]), answer
    logged = [r for r in records.records[start:] if r.levelno >= logging.WARNING]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING, [r.getMessage()[:200] for r in logged]
    assert logged[0].name.startswith("ktt.serving") and "\n" not in logged[0].getMessage()
    assert not logged[0].exc_info
    assert client.post("/predict", json={"text": "salted potato chips"}).status_code == 200  # still serving
