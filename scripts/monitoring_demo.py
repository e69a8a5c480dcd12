"""Drift monitoring end to end on this machine: model -> monitoring service -> Prometheus.

Fits tfidf_lsgd on ICD-10-CM rows of the first three chapters (seeded), writes its reference
set, ``evidently.yaml`` and the compose bundle (``ktt.monitoring.bundle``), runs the bundle's
monitoring service and, if installed, a real Prometheus scraping it every second, then
feeds windows of rows built exactly as the inference service builds them and prints the
drift of each:

* held-out ICD rows of the same chapters (should not drift);
* ICD rows of three other chapters;
* 20newsgroups posts (if ../shared/data is there).

Usage::

    .venv/bin/python scripts/monitoring_demo.py [--out DIR] [--window 200] [--keep-running]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
NEWSGROUPS = ROOT.parent / "shared" / "data" / "20newsgroups" / "test.parquet"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except requests.ConnectionError:
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise SystemExit(f"monitoring_demo: {what} did not happen within {timeout_s:.0f} s")


def build_rows(window: int, reference_rows: int):
    """The reference set and the rows of each phase, from a model fitted here."""
    from ktt.data.icd10cm import ICD10CMAdapter
    from ktt.data.loaders import Loader
    from ktt.pooling import pool_features
    from ktt.preprocess import preprocess
    from ktt.serving.monitoring import monitoring_rows
    from ktt_models.tfidf_lsgd import TfidfLSGD

    frame = ICD10CMAdapter(name="icd10cm").read()
    chapters = frame["path"].map(lambda path: path[0])
    names = chapters.unique()
    same = frame[chapters.isin(names[:3])].sample(frac=1.0, random_state=0)
    other = frame[chapters.isin(names[3:6])].sample(n=window, random_state=0)
    texts = preprocess(same["text"].tolist())
    leaves = same["path"].map(lambda path: path[-1]).to_numpy()
    fit_end = len(texts) - reference_rows - window
    model = TfidfLSGD(min_df=2, n_jobs=1, random_state=0).fit(Loader(texts[:fit_end], leaves[:fit_end]))

    def rows(batch):
        features = model.encode(batch)
        return monitoring_rows(pool_features(features), model.score_features(features))

    reference = model.gen_reference_set(Loader(texts[fit_end:fit_end + reference_rows],
                                               leaves[fit_end:fit_end + reference_rows]))
    phases = {"held-out ICD rows (same chapters)": rows(texts[fit_end + reference_rows:]),
              "ICD rows of 3 other chapters": rows(preprocess(other["text"].tolist()))}
    if NEWSGROUPS.is_file():
        news = pd.read_parquet(NEWSGROUPS, columns=["text"]).sample(n=window, random_state=0)["text"].tolist()
        phases["20newsgroups posts"] = rows(preprocess(news))
    n_features = reference.filter(regex=r"^F\d+$").shape[1]
    print(f"model: {len(model.classes_)} leaf classes, {n_features} pooled features; "
          f"fitted on {fit_end} rows, reference {len(reference)} rows")
    return reference, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the bundle (default: a temp folder)")
    parser.add_argument("--window", type=int, default=200, help="rows per window (default: %(default)s)")
    parser.add_argument("--reference-rows", type=int, default=1000)
    parser.add_argument("--keep-running", action="store_true", help="leave the services up until Ctrl+C")
    args = parser.parse_args()

    from ktt.monitoring.bundle import write_bundle

    out = args.out or Path(tempfile.mkdtemp(prefix="ktt-monitoring-demo-"))
    reference, phases = build_rows(args.window, args.reference_rows)
    out.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(out / "reference_set.parquet")
    config = {"service": {"min_reference_size": 30, "use_reference": True, "moving_reference": False,
                          "window_size": args.window, "calculation_period_sec": 1,
                          "monitors": ["cat_target_drift", "data_drift"]}}
    stack = write_bundle(out / "stack", bento_tag="tfidf_lsgd_demo:latest", model_name="tfidf_lsgd",
                         evidently_config=config, reference_set_path=out / "reference_set.parquet")
    print(f"bundle: {stack}")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    processes = [subprocess.Popen(
        [sys.executable, "-m", "ktt.monitoring", "--config", str(stack / "monitoring" / "evidently.yaml"),
         "--port", str(port)], env={"PYTHONPATH": str(stack / "monitoring" / "app"), "PATH": "/usr/bin:/bin"},
        stdout=open(out / "monitoring.log", "w"), stderr=subprocess.STDOUT)]
    prometheus_url = None
    binary = shutil.which("prometheus")
    try:
        if binary:
            (out / "prometheus.yml").write_text(yaml.safe_dump({
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [{"job_name": "monitoring", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
            }))
            prometheus_port = free_port()
            prometheus_url = f"http://127.0.0.1:{prometheus_port}"
            processes.append(subprocess.Popen(
                [binary, f"--config.file={out / 'prometheus.yml'}", f"--storage.tsdb.path={out / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"],
                stdout=open(out / "prometheus.log", "w"), stderr=subprocess.STDOUT))
            wait_for(lambda: requests.get(f"{prometheus_url}/-/ready", timeout=2).ok, 60, "Prometheus start")
        else:
            print("prometheus is not installed: reading the service's /drift only")
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).ok, 60, "monitoring service start")

        for name, rows in phases.items():
            rows = rows[:args.window].tolist()
            for start in range(0, len(rows), 50):
                requests.post(f"{url}/iterate", json={"data": rows[start:start + 50]}, timeout=10).raise_for_status()
            received = requests.get(f"{url}/healthz").json()["rows_received"]
            result = wait_for(lambda: (r := requests.get(f"{url}/drift").json()) and r["rows_received"] >= received
                              and r, 180, f"a calculation on {name}")
            line = (f"{name:36s} drift share {result['data_drift']['share']:.2f} "
                    f"({result['data_drift']['drifted_features']}/{len(result['data_drift']['features'])} features, "
                    f"dataset drift {result['data_drift']['dataset_drift']}); prediction "
                    f"{result['prediction_drift']['stattest']} {result['prediction_drift']['score']:.3f} "
                    f"(drift {result['prediction_drift']['drifted']}); {result['duration_s']:.1f} s")
            if prometheus_url:
                def scraped():
                    """(ktt_drift_share,) once Prometheus has scraped this calculation, else None."""
                    values = {}
                    for expr in ("ktt_drift_share", "ktt_drift_last_calculation_timestamp_seconds"):
                        body = requests.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=5).json()
                        values[expr] = [float(r["value"][1]) for r in body["data"]["result"]]
                    fresh = values["ktt_drift_last_calculation_timestamp_seconds"] == [result["calculated_at"]]
                    return (values["ktt_drift_share"][0],) if fresh else None

                (share,) = wait_for(scraped, 30, "Prometheus scraping")
                line += f"; Prometheus: ktt_drift_share {share:.2f}"
            print(line)
        if args.keep_running:
            print(f"monitoring: {url}/metrics  prometheus: {prometheus_url or '-'}   (Ctrl+C to stop)")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        print(json.dumps({"logs": str(out)}))


if __name__ == "__main__":
    main()
