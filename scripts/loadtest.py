"""Load test of ktt's served model with wrk, against baselines measured in the same run.

One after the other, each target is started on 127.0.0.1, checked with one real
request, warmed up, driven by ``wrk`` (a Lua script POSTs real ICD-10-CM phrasings
as JSON, rotating through them, each thread from its own offset) and stopped:

``bento_constant``
    a BentoML 1.4 service whose ``/predict`` answers a constant prediction of the
    same JSON shape (same API workers and timeout as the bento): the baseline;
``bento_constant_response``
    the same constant answer returned as a ready Starlette response, which BentoML
    sends without validating and serialising it, as ktt's bento returns its
    predictions: BentoML's ceiling for that path;
``bento``
    ``bentoml serve <tag>``, the exported bento as built (monitoring off unless
    ``--monitoring``): the model inside the HTTP service by default, two services for a
    bento exported with ``export.adaptive_batching=true``;
``bento_inline``
    the same bento served with ``KTT_ADAPTIVE_BATCHING=0``: the model inside the HTTP
    service, no model service (the same as ``bento`` for a default bento);
``starlette_model``
    Starlette + uvicorn (one process, no batching) serving the bento's checkpoint
    through :class:`ktt.serving.ModelRuntime`;
``mlflow``
    ``mlflow models serve -m runs:/<run>/model --env-manager local``, the run's
    pyfunc model (``POST /invocations`` with ``{"inputs": [...]}``; it answers the
    leaf class only);
``starlette_echo``
    Starlette + uvicorn answering the request's JSON back: the HTTP floor.

Prints one table: requests/s (2xx answers only), p50 and p99 latency (wrk's, all
answers), non-2xx answers and socket errors, and the ratios of req/s, p50 and p99
to ``bento_constant``. With ``--rounds N`` every target is measured N times,
interleaved, and the table shows medians (ratios: the median of each round's ratio). Only 127.0.0.1 is contacted; every server is stopped at the
end, also on errors and Ctrl-C. Needs ``wrk`` (``apt-get install wrk``; ``bash
scripts/setup.sh --dev`` installs it).

Examples
--------
::

    BENTOML_HOME=/tmp/bentoml .venv/bin/python scripts/loadtest.py tfidf_lsgd_icd10cm:latest
    .venv/bin/python scripts/loadtest.py tfidf_lsgd_icd10cm:latest --connections 64 --duration 30s \\
        --tracking-uri sqlite:///runs/mlflow.db --targets bento_constant,bento,mlflow
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ktt.testing import free_port, stop_process

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEXTS = Path(os.environ.get("KTT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "icd10cm" / "icd10cm.parquet"
TARGETS = ("bento_constant", "bento_constant_response", "bento", "bento_inline", "starlette_model", "mlflow",
           "starlette_echo")
BASELINE = "bento_constant"
RESULT_MARK = "KTT_RESULT "

# The wrk script: %(bodies)s is a Lua table of request bodies. wrk loads it once per
# thread (init, request) and once in its main state (setup, done).
LUA = r"""-- written by scripts/loadtest.py
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
%(bodies)s
}
local threads = 0
function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end
function init(args)
  i = offset or 0
end
function request()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[i %% #bodies + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%(mark)s{\"requests\": %%d, \"duration_us\": %%d, \"connect\": %%d, \"read\": %%d, \"write\": %%d, " ..
    "\"status\": %%d, \"timeout\": %%d, \"p50_us\": %%d, \"p99_us\": %%d}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

CONSTANT_SERVICE = '''"""A BentoML service answering a constant prediction (written by scripts/loadtest.py)."""
from typing import Any

import bentoml

CONSTANT = {constant!r}


@bentoml.service(name="ktt_constant", workers={workers}, traffic={{"timeout": {timeout}}})
class Constant:
    @bentoml.api(route="/predict")
    async def predict(self, text: Any = None, texts: Any = None) -> dict:
        return CONSTANT if texts is None else {{"predictions": [CONSTANT] * len(texts)}}


@bentoml.service(name="ktt_constant_response", workers={workers}, traffic={{"timeout": {timeout}}})
class ConstantResponse:
    """The same answer as a ready response, which BentoML sends without serialising it (as ktt's bento does)."""

    @bentoml.api(route="/predict")
    async def predict(self, text: Any = None, texts: Any = None) -> dict:
        from starlette.responses import JSONResponse

        return JSONResponse(CONSTANT if texts is None else {{"predictions": [CONSTANT] * len(texts)}})
'''


@dataclass
class Target:
    """How to start one server and what to send it."""

    name: str
    command: list[str]
    path: str  # the URL path wrk drives
    ready_path: str
    body: str  # "predict": {"text": ...} / {"texts": [...]}; "mlflow": {"inputs": [...]}
    env: dict = field(default_factory=dict)
    cwd: Path | None = None


class ServerError(RuntimeError):
    """A server did not start, did not answer correctly, or wrk failed."""


# ----------------------------------------------------------------- texts and the wrk script
def load_texts(path: Path, n: int, seed: int) -> list[str]:
    """``n`` real ICD-10-CM descriptions: the ``text`` column of ``path`` (Parquet/CSV), else the bundled data."""
    import pandas as pd

    if path.is_file():
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        texts = frame["text"].dropna().astype(str).tolist()
    else:
        from ktt.data.icd10cm import ICD10CMAdapter

        texts = ICD10CMAdapter(name="icd10cm").read()["text"].astype(str).tolist()
    texts = [t for t in texts if t.strip()]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def request_body(texts: list[str], kind: str) -> dict:
    """The JSON body of one request carrying ``texts``."""
    if kind == "mlflow":
        return {"inputs": texts}
    return {"text": texts[0]} if len(texts) == 1 else {"texts": texts}


def lua_string(text: str) -> str:
    """``text`` as a Lua long-bracket string literal."""
    level = 0
    while f"]{'=' * level}]" in text or text.endswith("]" + "=" * level):
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def write_lua(path: Path, texts: list[str], kind: str, batch: int) -> Path:
    """The wrk script POSTing the texts in turn, ``batch`` per request."""
    groups = [[texts[(i + j) % len(texts)] for j in range(batch)] for i in range(0, len(texts), batch)]
    bodies = ",\n".join("  " + lua_string(json.dumps(request_body(g, kind))) for g in groups)
    path.write_text(LUA % {"bodies": bodies, "mark": RESULT_MARK})
    return path


def parse_wrk(output: str) -> dict:
    """The figures of one wrk run (the line the script's ``done`` writes).

    Returns
    -------
    dict
        ``requests``, ``seconds``, ``rps`` (2xx/3xx answers per second), ``non_2xx``,
        ``socket_errors`` (connect + read + write + timeout), ``p50_ms``, ``p99_ms``.
    """
    line = next((line for line in output.splitlines() if line.startswith(RESULT_MARK)), None)
    if line is None:
        raise ServerError(f"wrk printed no result line:\n{output.strip()[-2000:]}")
    raw = json.loads(line[len(RESULT_MARK):])
    seconds = raw["duration_us"] / 1e6
    sockets = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    ok = raw["requests"] - raw["status"]
    return {"requests": raw["requests"], "seconds": seconds, "rps": ok / seconds if seconds else 0.0,
            "non_2xx": raw["status"], "socket_errors": sockets,
            "socket_detail": {k: raw[k] for k in ("connect", "read", "write", "timeout") if raw[k]},
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000}


def run_wrk(url: str, script: Path, threads: int, connections: int, duration: str, timeout: str,
            log: Path | None = None) -> dict:
    """One wrk run against ``url``; its full output is appended to ``log``."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", f"--timeout={timeout}", "--latency",
               "-s", str(script), url]
    limit = seconds_of(duration) + 60
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise ServerError(f"wrk against {url} did not end within {limit:.0f} s") from None
    if log is not None:
        with open(log, "a") as stream:
            stream.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode:
        raise ServerError(f"wrk failed ({result.returncode}): {(result.stderr or result.stdout).strip()[:500]}")
    return parse_wrk(result.stdout)


def seconds_of(duration: str) -> float:
    """wrk's duration syntax (``20``, ``20s``, ``2m``, ``1h``) in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", duration)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {duration!r} (e.g. 20s, 2m)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def duration_arg(text: str) -> str:
    seconds_of(text)
    return text


# ----------------------------------------------------------------- servers
def start(target: Target, log: Path) -> subprocess.Popen:
    """Start a server in its own process group (so that it and its workers stop together)."""
    with open(log, "w") as stream:
        return subprocess.Popen(target.command, env={**os.environ, **target.env}, stdout=stream,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=target.cwd or log.parent)


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout_s: float, name: str) -> None:
    """Poll ``url`` until it answers 200; fail clearly if the server exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"{name} exited with status {process.returncode} before it was ready; "
                              f"last lines of {log}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise ServerError(f"{name} was not ready at {url} after {timeout_s:.0f} s; last lines of {log}:\n{tail(log)}")


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def post(url: str, body: dict) -> tuple[int, object]:
    """One JSON POST: the status and the decoded answer."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")[:300]


def check_answer(target: Target, url: str, texts: list[str], batch: int) -> None:
    """One real request before the load: a 200 with the expected shape, or a ServerError."""
    body = request_body(texts[:batch], target.body)
    status, answer = post(url, body)
    if status != 200:
        raise ServerError(f"{target.name}: POST {url} answered {status}: {answer}")
    if target.name == "starlette_echo":
        expected = answer == body
    elif target.body == "mlflow":
        expected = isinstance(answer, dict) and len(answer.get("predictions", ())) == batch
    else:
        items = [answer] if batch == 1 else answer.get("predictions", []) if isinstance(answer, dict) else []
        expected = len(items) == batch and all(isinstance(i, dict) and {"path", "scores"} <= set(i) for i in items)
    if not expected:
        raise ServerError(f"{target.name}: unexpected answer to {json.dumps(body)[:200]}: {str(answer)[:300]}")


#: Batch-size histograms of a bento: BentoML's adaptive batches of a model service, and ktt's batches of a
#: service that holds its model. A bento has one layout, so at most one of them counts anything.
BATCH_METRICS = ("bentoml_service_adaptive_batch_size", "ktt_batch_size")


def mean_batch_size(url: str) -> float:
    """Mean batch size of a bento so far, from its Prometheus metrics (:data:`BATCH_METRICS`)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
    except (urllib.error.URLError, OSError):
        return float("nan")
    totals = {kind: sum(float(v) for metric in BATCH_METRICS for v in re.findall(
        rf"^{metric}_{kind}(?:{{.*}})? (\S+)$", page, re.MULTILINE)) for kind in ("sum", "count")}
    return totals["sum"] / totals["count"] if totals["count"] else float("nan")


def measure(target: Target, port: int, workdir: Path, texts: list[str], args) -> dict:
    """Start ``target`` on ``port``, check it, warm it up, load it with wrk, stop it."""
    log = workdir / f"{target.name}.log"
    print(f"{target.name}: starting", file=sys.stderr, flush=True)
    process = start(target, log)
    try:
        wait_ready(f"http://{HOST}:{port}{target.ready_path}", process, log, args.ready_timeout, target.name)
        url = f"http://{HOST}:{port}{target.path}"
        check_answer(target, url, texts, args.batch)
        script = write_lua(workdir / f"{target.body}.lua", texts, target.body, args.batch)
        wrk_log = workdir / f"{target.name}.wrk.txt"
        if seconds_of(args.warmup) > 0:
            run_wrk(url, script, args.threads, args.connections, args.warmup, args.timeout, wrk_log)
        print(f"{target.name}: wrk -t{args.threads} -c{args.connections} -d{args.duration}", file=sys.stderr,
              flush=True)
        result = run_wrk(url, script, args.threads, args.connections, args.duration, args.timeout, wrk_log)
        if target.name in ("bento", "bento_inline"):
            result["mean_batch_size"] = mean_batch_size(f"http://{HOST}:{port}/metrics")
        return result
    finally:
        stop_process(process, 15, group=True)


# ----------------------------------------------------------------- the in-script servers
def model_app(folder: Path):
    """A Starlette app predicting inline with the bento's checkpoint through ModelRuntime (no batching)."""
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

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", _ready)])


def echo_app():
    """A Starlette app answering the request's JSON back."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request):
        return JSONResponse(await request.json())

    return Starlette(routes=[Route("/predict", echo, methods=["POST"]), Route("/readyz", _ready)])


async def _ready(_):
    from starlette.responses import JSONResponse

    return JSONResponse({})


def serve(kind: str, folder: Path | None, port: int) -> None:
    import uvicorn

    app = model_app(folder) if kind == "model" else echo_app()
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


# ----------------------------------------------------------------- main
def tracking_uri(given: str | None) -> str:
    """The MLflow store holding the bento's run, with a relative sqlite path made absolute."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def constant_prediction(folder: Path, text: str) -> dict:
    """The bento's own answer to ``text`` (what the constant service returns)."""
    from ktt.preprocess import preprocess
    from ktt.serving import ModelRuntime, ServiceSettings

    settings = ServiceSettings.load(folder, environ={})
    settings.monitoring = False
    return ModelRuntime.load(settings).classify(preprocess([text]))[0]


def targets(args, bento, run_id: str | None, ports: dict, workdir: Path, texts: list[str]) -> dict[str, Target]:
    """The command of every target, each on its own port."""
    from ktt.serving import ServiceSettings

    folder = Path(bento.path_of("src"))
    settings = ServiceSettings.load(folder, environ={})
    python = sys.executable
    me = str(Path(__file__).resolve())
    bento_env = {"BENTOML_DO_NOT_TRACK": "True"}
    if not args.monitoring:
        bento_env["KTT_MONITORING"] = "0"
    constant_dir = workdir / "constant"
    constant_dir.mkdir()
    (constant_dir / "constant_service.py").write_text(CONSTANT_SERVICE.format(
        constant=constant_prediction(folder, texts[0]), workers=settings.api_workers, timeout=settings.timeout_s))
    serve_port = ["--host", HOST, "--port"]
    return {
        "bento_constant": Target("bento_constant", [python, "-m", "bentoml", "serve", "constant_service:Constant",
                                                    *serve_port, str(ports["bento_constant"])],
                                 "/predict", "/readyz", "predict", bento_env, constant_dir),
        "bento_constant_response": Target("bento_constant_response",
                                          [python, "-m", "bentoml", "serve", "constant_service:ConstantResponse",
                                           *serve_port, str(ports["bento_constant_response"])],
                                          "/predict", "/readyz", "predict", bento_env, constant_dir),
        "bento": Target("bento", [python, "-m", "bentoml", "serve", str(bento.tag), *serve_port, str(ports["bento"])],
                        "/predict", "/readyz", "predict", bento_env),
        "bento_inline": Target("bento_inline", [python, "-m", "bentoml", "serve", str(bento.tag), *serve_port,
                                                str(ports["bento_inline"])],
                               "/predict", "/readyz", "predict", bento_env | {"KTT_ADAPTIVE_BATCHING": "0"}),
        "starlette_model": Target("starlette_model", [python, me, "--serve", "model", "--folder", str(folder),
                                                      "--port", str(ports["starlette_model"])],
                                  "/predict", "/readyz", "predict"),
        "mlflow": Target("mlflow", [python, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model",
                                    "--env-manager", "local", "-h", HOST, "-p", str(ports["mlflow"])],
                         "/invocations", "/ping", "mlflow",
                         {"MLFLOW_TRACKING_URI": tracking_uri(args.tracking_uri),
                          "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                          # it execs `uvicorn`: this Python's scripts first on the PATH
                          "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}),
        "starlette_echo": Target("starlette_echo", [python, me, "--serve", "echo", "--port",
                                                    str(ports["starlette_echo"])],
                                 "/predict", "/readyz", "predict"),
    }


def summarise(rounds: list[dict]) -> dict:
    """Per target: the median of each figure over the rounds, errors summed, and the median per-round
    ratios to the baseline (each round's target against the same round's baseline)."""
    from statistics import median

    summary = {}
    for name in TARGETS:
        runs = [(r[name], r.get(BASELINE)) for r in rounds if name in r]
        if not runs:
            continue
        row = {key: median(run[key] for run, _ in runs) for key in ("rps", "p50_ms", "p99_ms")}
        row.update({key: sum(run[key] for run, _ in runs) for key in ("non_2xx", "socket_errors")})
        row["rounds"] = len(runs)
        for key in ("rps", "p50_ms", "p99_ms"):
            ratios = [run[key] / base[key] for run, base in runs if base and base[key]]
            row[f"{key}_ratio"] = median(ratios) if ratios else None
        if any("mean_batch_size" in run for run, _ in runs):
            row["mean_batch_size"] = median(run["mean_batch_size"] for run, _ in runs if "mean_batch_size" in run)
        summary[name] = row
    return summary


def table(summary: dict, errors: dict) -> str:
    """One row per target: medians over the rounds, errors summed, median ratios to the baseline."""
    lines = [f"| {'target':15} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'non-2xx':>7} | {'socket':>6} | "
             f"{'req/s x':>7} | {'p50 x':>6} | {'p99 x':>6} |",
             "|" + "|".join("-" * w for w in (17, 10, 9, 9, 9, 8, 9, 8, 8)) + "|"]

    def ratio(value) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    for name in TARGETS:
        if name not in summary:
            if name in errors:
                lines.append(f"| {name:15} | failed (see above) |")
            continue
        r = summary[name]
        lines.append(f"| {name:15} | {r['rps']:8.1f} | {r['p50_ms']:7.1f} | {r['p99_ms']:7.1f} | {r['non_2xx']:7d} | "
                     f"{r['socket_errors']:6d} | {ratio(r['rps_ratio']):>7} | {ratio(r['p50_ms_ratio']):>6} | "
                     f"{ratio(r['p99_ms_ratio']):>6} |")
    return "\n".join(lines)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tag", nargs="?", help="bento tag, e.g. tfidf_lsgd_icd10cm:latest")
    parser.add_argument("--bentoml-home", help="BentoML store (default: $BENTOML_HOME or BentoML's default)")
    parser.add_argument("--tracking-uri", help="MLflow store of the bento's run, for the mlflow target "
                                               "(default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)")
    parser.add_argument("--run-id", help="the run whose pyfunc model mlflow serves (default: the bento's ktt.run_id)")
    parser.add_argument("-t", "--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("-d", "--duration", type=duration_arg, default="20s", help="wrk duration per target (20s)")
    parser.add_argument("--warmup", type=duration_arg, default="3s", help="unmeasured wrk run first (3s; 0: none)")
    parser.add_argument("--timeout", type=duration_arg, default="10s", help="wrk's per-request timeout (10s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every target this many times, interleaved; report medians (1)")
    parser.add_argument("--batch", type=int, default=1, help="texts per request (1: {'text'}; more: {'texts'})")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {', '.join(TARGETS)}")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS,
                        help="Parquet/CSV with a text column (default: ../shared/data icd10cm, else the bundled ICD data)")
    parser.add_argument("--n-texts", type=int, default=1000, help="distinct texts wrk rotates through (1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ready-timeout", type=float, default=180, help="seconds a server may take to start (180)")
    parser.add_argument("--monitoring", action="store_true", help="keep the bento's monitoring hook on")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' and wrk's logs")
    parser.add_argument("--serve", choices=("model", "echo"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:  # an in-script server's own process
        serve(args.serve, args.folder, args.port)
        return 0
    if not args.tag:
        parser.error("a bento tag is required")
    chosen = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(chosen) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk, or bash scripts/setup.sh --dev as root)")
    if min(args.batch, args.threads, args.rounds) < 1 or args.connections < args.threads:
        parser.error("--batch, --threads and --rounds must be >= 1 and --connections >= --threads")
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    if args.bentoml_home:
        os.environ["BENTOML_HOME"] = str(Path(args.bentoml_home).resolve())
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the servers too, as Ctrl-C does
    import bentoml

    bento = bentoml.get(args.tag)
    run_id = args.run_id or bento.info.labels.get("ktt.run_id")
    if "mlflow" in chosen and not run_id:
        parser.error(f"bento {bento.tag} has no ktt.run_id label: give --run-id for the mlflow target")
    texts = load_texts(args.texts, args.n_texts, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="ktt-loadtest-"))
    ports = {name: free_port() for name in TARGETS}
    rounds, errors = [], {}
    try:
        commands = targets(args, bento, run_id, ports, workdir, texts)
        for number in range(1, args.rounds + 1):
            rounds.append({})
            for name in [t for t in TARGETS if t in chosen and t not in errors]:
                if args.rounds > 1:
                    print(f"round {number}/{args.rounds}", end=", ", file=sys.stderr)
                try:
                    rounds[-1][name] = measure(commands[name], ports[name], workdir, texts, args)
                except ServerError as error:
                    errors[name] = str(error)
                    print(f"{name}: {error}", file=sys.stderr, flush=True)
    finally:
        if args.keep_logs or errors:
            print(f"logs: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise(rounds)
    medians = f"medians of {args.rounds} interleaved rounds" if args.rounds > 1 else "one round"
    print(f"bento {bento.tag} (run {run_id}); wrk -t{args.threads} -c{args.connections} -d{args.duration} "
          f"--timeout {args.timeout}, {len(texts)} ICD texts, {args.batch} per request; {medians}; "
          f"ratios against {BASELINE}")
    print(table(summary, errors))
    for name in ("bento", "bento_inline"):
        if "mean_batch_size" in summary.get(name, {}):
            print(f"{name}: mean batch size {summary[name]['mean_batch_size']:.1f} texts")
    if args.json:
        args.json.write_text(json.dumps({"tag": str(bento.tag), "threads": args.threads,
                                         "connections": args.connections, "duration": args.duration,
                                         "batch": args.batch, "summary": summary, "rounds": rounds,
                                         "errors": errors}, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("loadtest: interrupted; the servers are stopped", file=sys.stderr)
        sys.exit(130)
