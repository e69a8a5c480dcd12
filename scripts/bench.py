"""ktt's benchmark suite: one command, one table, every number a ratio to a baseline run in the same command.

Machines here are shared and noisy, so each section measures its own baseline
next to ktt and reports ``ratio = ktt / baseline`` (or a speed-up). Sections:

1. preprocessing: ktt's tokenise+stem vs the original KTT approach (NLTK
   ``word_tokenize`` + Snowball per row through ``pandas.apply``), identical tokens;
2. end-to-end training: ``python -m ktt`` vs a bare script of the same pipeline;
3. start-up: ``python -m ktt --help`` / ``--cfg job`` vs ``python -c "import hydra"``,
   and which heavy modules they import;
4. inference: ``scripts/bench_inference.py`` (single text and a batch of 10,000, ktt's
   prediction path vs a bare pipeline of the same shape, and vs the arithmetic);
5. scale: fit time and peak memory at 1x, 4x, 16x a base sample (resampled).

Usage: scripts/bench [--data icd10cm.parquet] [--sections 1,2,3,4,5] [--scale-base 0.05] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "icd10cm" / "icd10cm.parquet"
sys.path.insert(0, str(SCRIPTS))

ROWS: list[tuple[str, str, float | None, str]] = []  # section, what, value, note


def row(section: str, what: str, value: float | None, note: str = "") -> None:
    ROWS.append((section, what, value, note))
    shown = "" if value is None else f"{value:.2f}"
    print(f"  {what:<58}{shown:>9}  {note}", flush=True)


def best_of(repeat: int, function, *args) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def run(command: list[str], cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, result


# ---------------------------------------------------------------- sections
def preprocessing(texts: pd.Series, repeat: int) -> None:
    from bench_preprocess import ktt_preprocess, original_approach
    from ktt.preprocess import clear_caches

    print("1. preprocessing", flush=True)
    original_s, original = best_of(1, original_approach, texts)

    def cold(t):
        clear_caches()
        return ktt_preprocess(t)

    ktt_s, ours = best_of(repeat, cold, texts)
    assert ours == original, "ktt's preprocessing differs from the original"
    row("preprocessing", f"original (word_tokenize+Snowball per row), {len(texts)} texts", original_s, "s")
    row("preprocessing", "ktt preprocess (cold caches), speed-up vs original", original_s / ktt_s, "x, identical tokens")


def training(csv: Path, min_df: int, repeat: int) -> None:
    from bench_train import measure

    print("2. end-to-end training", flush=True)
    result = measure(csv, min_df, repeat, verbose=False)
    note = f"median of {repeat} rounds, bare run before and after each"
    row("training", "bare sklearn script (read, split, preprocess, fit, test)", result["bare_s"], f"s; {note}")
    row("training", "python -m ktt, fresh cache / bare", result["cold"], "ratio (target <= 1.25)")
    row("training", "python -m ktt, cached data / bare", result["warm"], "ratio (target <= 1.25)")
    row("training", "time outside the fit, ktt (cached) / bare", result["outside_fit"],
        f"ratio; the fits themselves: {result['fit']:.2f}x")


HEAVY = ("mlflow", "sklearn", "bentoml", "skl2onnx")
PROBE = ("import sys, runpy; sys.argv = ['ktt', *{args!r}]\n"
         "try:\n    runpy.run_module('ktt', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "print('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n")


def startup(repeat: int) -> None:
    print("3. start-up", flush=True)
    base_s = min(run([sys.executable, "-c", "import hydra"])[0] for _ in range(repeat))
    row("start-up", 'python -c "import hydra"', base_s, "s")
    for args in (["--help"], ["--cfg", "job"]):
        times, heavy = [], ""
        for _ in range(repeat):
            elapsed, result = run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)])
            times.append(elapsed)
            heavy = result.stderr.strip().splitlines()[-1].removeprefix("HEAVY=")
        row("start-up", f"python -m ktt {' '.join(args)} / import hydra", min(times) / base_s,
            f"ratio; heavy modules imported: {heavy or 'none'}")


def inference(data: str, repeat: int) -> None:
    """Section 4 is ``scripts/bench_inference.py``: ktt's prediction path vs a bare pipeline of the same shape."""
    from bench_inference import main as bench_inference

    print("4. inference", flush=True)
    for result in bench_inference(["--data", data, "--min-df", "1,50", "--repeat", str(repeat)]):
        what = f"min_df={result['min_df']} {result['model']}"
        row("inference", f"{what}: single text speed-up vs bare", result["single_speedup"], "x")
        row("inference", f"{what}: single text / arithmetic", result["single_over_arithmetic"], "ratio")
        row("inference", f"{what}: batch of 10,000 speed-up vs bare", result["batch_speedup"], "x")


SCALE_FIT = r"""
import json, sys, time, numpy as np, pandas as pd
from ktt.data.loaders import Loader
from ktt.preprocess import preprocess
from ktt_models.tfidf_lsgd import TfidfLSGD
frame = pd.read_parquet(sys.argv[1])
texts = preprocess(frame["text"].tolist())
targets = np.asarray([p[-1] for p in frame["category"]], dtype=object)
start = time.perf_counter()
TfidfLSGD(min_df=1).fit(Loader(texts, targets))
fit = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would include the parent's peak.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"fit": fit, "peak_mb": peak_kb / 1024}))
"""


def scale(frame: pd.DataFrame, base: float) -> None:
    print("5. scale", flush=True)
    base_frame = frame.sample(frac=base, random_state=0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (1, 4, 16):
            sample = base_frame.sample(n=len(base_frame) * factor, replace=factor > 1, random_state=factor)
            path = Path(tmp) / f"x{factor}.parquet"
            sample.to_parquet(path)
            _, result = run([sys.executable, "-c", SCALE_FIT, str(path)])
            results[factor] = json.loads(result.stdout.strip().splitlines()[-1])
    one = results[1]
    row("scale", f"1x = {len(base_frame)} rows: fit s / peak MB", one["fit"], f"s, {one['peak_mb']:.0f} MB")
    for factor in (4, 16):
        r = results[factor]
        row("scale", f"{factor}x rows: fit time / 1x", r["fit"] / one["fit"], f"ratio; peak memory {r['peak_mb'] / one['peak_mb']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="parquet with text and category (list) columns")
    parser.add_argument("--sections", default="1,2,3,4,5")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--min-df", type=int, default=50)
    parser.add_argument("--scale-base", type=float, default=0.05, help="share of the data that is 1x")
    parser.add_argument("--quick", action="store_true", help="a 10%% sample for sections 1, 2 and 4")
    args = parser.parse_args()
    frame = pd.read_parquet(args.data)
    sample = frame.sample(frac=0.1, random_state=0) if args.quick else frame
    sections = {int(s) for s in args.sections.split(",")}
    if 1 in sections:
        preprocessing(sample["text"], args.repeat)
    if 2 in sections:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "data.csv"
            sample.assign(category=sample["category"].map(" > ".join)).to_csv(csv, index=False)
            training(csv, args.min_df, args.repeat)
    if 3 in sections:
        startup(args.repeat)
    if 4 in sections:
        inference(args.data, args.repeat)
    if 5 in sections:
        scale(frame, args.scale_base)
    print("\n| section | measurement | value | unit / note |\n|---|---|---|---|")
    for section, what, value, note in ROWS:
        print(f"| {section} | {what} | {'' if value is None else f'{value:.2f}'} | {note} |")


if __name__ == "__main__":
    main()
