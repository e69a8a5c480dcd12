"""Load test of an exported bento against a bare in-process endpoint serving the same model.

Starts ``bentoml serve <tag>`` on 127.0.0.1, drives ``POST /predict`` with N
concurrent clients sending real texts for a bounded time (or request count),
stops it, then does the same with a bare uvicorn + Starlette app that loads the
same checkpoint (from the bento) and predicts inline, without batching or a
second process. Prints requests/s, p50/p99 latency and errors of both, and the
bento/bare ratios. Only 127.0.0.1 is ever contacted; both servers are started
and stopped here.

Examples
--------
::

    BENTOML_HOME=/tmp/bentoml .venv/bin/python scripts/loadtest.py tfidf_lsgd_icd10cm:latest
    .venv/bin/python scripts/loadtest.py tfidf_lsgd_icd10cm:latest --clients 64 --duration 20 --batch 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ktt.testing import free_port, stop_process

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEXTS = Path(os.environ.get("KTT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "icd10cm" / "icd10cm.parquet"


def load_texts(path: Path, n: int, seed: int) -> list[str]:
    """``n`` texts (column ``text``) of a Parquet/CSV file, sampled with ``seed``."""
    import pandas as pd

    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    texts = frame["text"].dropna().astype(str).tolist()
    random.Random(seed).shuffle(texts)
    return texts[:n]


# ---------------------------------------------------------------- servers
def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start a server in its own process group (so that it and its workers stop together)."""
    with open(log, "w") as stream:
        return subprocess.Popen(command, env=env, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=log.parent)


def stop(process: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM the server's process group, SIGKILL it if it outlives ``timeout_s``."""
    stop_process(process, timeout_s, group=True)


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before it was ready; see {log}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{url} not ready after {timeout_s:.0f} s; see {log}")


def bare_app(folder: Path):
    """A Starlette app predicting inline with the bento's checkpoint (no batching, one process)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ktt.preprocess import preprocess
    from ktt.serving import InputError, ModelRuntime, ServiceSettings, parse_texts

    settings = ServiceSettings.load(folder, environ={})
    settings.monitoring = False
    runtime = ModelRuntime.load(settings)

    async def predict(request: Request):
        try:
            body = await request.json()
            texts, single = parse_texts(body.get("text"), body.get("texts")) if isinstance(body, dict) \
                else parse_texts()
        except (InputError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        predictions = runtime.classify(preprocess(texts))
        return JSONResponse(predictions[0] if single else {"predictions": predictions})

    async def ready(_: Request):
        return JSONResponse({})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", ready)])


def serve_bare(folder: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(folder), host=HOST, port=port, log_level="warning", access_log=False)


# ----------------------------------------------------------------- client
async def drive(url: str, texts: list[str], clients: int, duration_s: float, max_requests: int | None,
                batch: int) -> dict:
    """``clients`` concurrent loops POSTing texts until the time or the request budget is spent."""
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + duration_s

    def payload(i: int) -> dict:
        if batch == 1:
            return {"text": texts[i % len(texts)]}
        return {"texts": [texts[(i + j) % len(texts)] for j in range(batch)]}

    async def client(session) -> None:
        nonlocal sent
        while time.perf_counter() < deadline and (max_requests is None or sent < max_requests):
            i = sent
            sent += 1
            start = time.perf_counter()
            try:
                async with session.post(url, json=payload(i * batch)) as response:
                    await response.read()
                    status = response.status
            except Exception as error:  # count it and go on
                status = type(error).__name__
            if status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients), timeout=timeout) as session:
        begin = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - begin
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {"requests": len(latencies) + sum(errors.values()), "ok": len(latencies), "errors": errors,
            "rps": len(latencies) / elapsed, "texts_per_s": len(latencies) * batch / elapsed,
            "p50_ms": quantile(0.50), "p99_ms": quantile(0.99), "seconds": elapsed}


def mean_batch_size(url: str) -> float:
    """Mean adaptive batch size of the model service so far (from its Prometheus metrics)."""
    import re

    import requests

    page = requests.get(url, timeout=10).text
    totals = {}
    for kind in ("sum", "count"):
        totals[kind] = sum(float(v) for v in re.findall(rf"^bentoml_service_adaptive_batch_size_{kind}{{.*}} (\S+)$",
                                                         page, re.MULTILINE))
    return totals["sum"] / totals["count"] if totals["count"] else float("nan")


def measure(url: str, texts: list[str], args) -> dict:
    asyncio.run(drive(url, texts, min(args.clients, 8), 2.0, 200, args.batch))  # warm-up (caches, connections)
    return asyncio.run(drive(url, texts, args.clients, args.duration, args.requests, args.batch))


# ------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tag", nargs="?", help="bento tag, e.g. tfidf_lsgd_icd10cm:latest")
    parser.add_argument("--bentoml-home", help="BentoML store (default: $BENTOML_HOME or BentoML's default)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--duration", type=float, default=15, help="seconds of load per target (default 15)")
    parser.add_argument("--requests", type=int, help="stop after this many requests per target")
    parser.add_argument("--batch", type=int, default=1, help="texts per request (1: {'text'}; more: {'texts'})")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="Parquet/CSV with a text column")
    parser.add_argument("--n-texts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--monitoring", action="store_true", help="keep the bento's monitoring hook on")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve-bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_bare:  # the bare server's own process
        serve_bare(args.serve_bare, args.port)
        return
    if not args.tag:
        parser.error("a bento tag is required")
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True"}
    if args.bentoml_home:
        env["BENTOML_HOME"] = str(Path(args.bentoml_home).resolve())
    if not args.monitoring:
        env["KTT_MONITORING"] = "0"
    os.environ.update({k: v for k, v in env.items() if k.startswith("BENTOML")})
    import bentoml

    bento = bentoml.get(args.tag)
    texts = load_texts(args.texts, args.n_texts, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="ktt-loadtest-"))  # the servers' logs; removed when all went well
    results = {}

    port = free_port()
    log = workdir / "bento.log"
    server = start([sys.executable, "-m", "bentoml", "serve", str(bento.tag), "--host", HOST, "--port", str(port)],
                   env, log)
    try:
        wait_ready(f"http://{HOST}:{port}/readyz", server, log)
        results["bento"] = measure(f"http://{HOST}:{port}/predict", texts, args)
        results["bento"]["mean_batch_size"] = mean_batch_size(f"http://{HOST}:{port}/metrics")
    finally:
        stop(server)

    port = free_port()
    log = workdir / "bare.log"
    server = start([sys.executable, str(Path(__file__).resolve()), "--serve-bare", bento.path_of("src"),
                    "--port", str(port)], env, log)
    try:
        wait_ready(f"http://{HOST}:{port}/readyz", server, log)
        results["bare"] = measure(f"http://{HOST}:{port}/predict", texts, args)
    finally:
        stop(server)
    shutil.rmtree(workdir, ignore_errors=True)

    print(f"bento {bento.tag}, {args.clients} clients, {args.batch} text(s) per request, "
          f"{args.duration:g} s per target{'' if args.requests is None else f' or {args.requests} requests'}")
    print(f"{'target':8} {'requests':>9} {'errors':>7} {'req/s':>8} {'texts/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        errors = sum(r["errors"].values())
        print(f"{name:8} {r['requests']:9d} {errors:7d} {r['rps']:8.1f} {r['texts_per_s']:8.1f} "
              f"{r['p50_ms']:8.1f} {r['p99_ms']:8.1f}" + (f"  {r['errors']}" if errors else ""))
    bento_r, bare_r = results["bento"], results["bare"]
    print(f"bento: mean adaptive batch size {bento_r['mean_batch_size']:.1f} texts")
    ratios = {"throughput": bento_r["rps"] / bare_r["rps"], "p50": bento_r["p50_ms"] / bare_r["p50_ms"],
              "p99": bento_r["p99_ms"] / bare_r["p99_ms"]}
    print(f"bento/bare: throughput {ratios['throughput']:.2f}x, p50 latency {ratios['p50']:.2f}x, "
          f"p99 latency {ratios['p99']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratios": ratios, "tag": str(bento.tag),
                                         "clients": args.clients, "batch": args.batch}, indent=1))


if __name__ == "__main__":
    main()
