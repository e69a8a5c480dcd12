"""Serving: the exported bento under a real ``bentoml serve`` on 127.0.0.1, its monitoring hook, and its pieces.

The bento is built by training with ``export=bento``, moved as a ``.bento`` archive
into a fresh ``BENTOML_HOME`` and served from there, so it proves to carry all it needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests

from ktt.testing import stop_process, wait_for
from conftest import free_port, mlflow_runs, run_cli

TEXTS = ["Cholera due to Vibrio cholerae", "Typhoid fever with heart involvement", "Sézary disease, unspecified site"]


# ------------------------------------------------------------------ a monitor
class Monitor:
    """A tiny monitoring service on 127.0.0.1: records the rows POSTed to /iterate, or answers slowly."""

    def __init__(self, delay_s: float = 0.0):
        self.rows: list = []
        self.delay_s = delay_s
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if monitor.delay_s:
                    time.sleep(monitor.delay_s)
                if self.path == "/iterate":
                    monitor.rows.extend(json.loads(body)["data"])
                self.send_response(200 if self.path == "/iterate" else 404)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/iterate"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()




def metric(text: str, name: str, **labels) -> float:
    """Sum of a metric's samples (matching ``labels``) in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


# ------------------------------------------------------------ the served bento
@pytest.fixture(scope="module")
def bento(icd_sample, tmp_path_factory):
    """Train with export=bento (archive logged), then import the archive into a fresh BENTOML_HOME."""
    import mlflow

    cwd = tmp_path_factory.mktemp("bento_train")
    run_cli("reference=true", "export=bento", f"export.bentoml_home={cwd / 'bentoml'}", "export.archive=true",
            "export.max_body_bytes=65536", "export.monitoring_timeout_s=0.5", "dataset=file", "min_df=2",
            "progress=false", "plots=false", f"dataset.path={icd_sample}", cwd=cwd)
    (run,) = mlflow_runs(cwd)
    tag = run.data.tags["ktt.bento_tag"]
    name = tag.split(":")[0]
    archive = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                  artifact_path=f"export/bento/{name}.bento",
                                                  tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    home = tmp_path_factory.mktemp("fresh_bentoml_home")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    subprocess.run([sys.executable, "-m", "bentoml", "import", archive], env=env, check=True, capture_output=True,
                   timeout=120)
    return {"tag": tag, "home": home, "run": run, "cwd": cwd}


@contextlib.contextmanager
def serve_bento(tag: str, home, log_dir, **extra_env):
    """``bentoml serve <tag>`` on a free 127.0.0.1 port until the block ends; yields its URL and process."""
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True", **extra_env}
    env.pop("PYTHONPATH", None)
    log = log_dir / "serve.log"
    with open(log, "w") as stream:
        server = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", tag, "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, cwd=log_dir, stdout=stream,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready():
            assert server.poll() is None, f"bentoml serve exited:\n{log.read_text()[-3000:]}"
            try:
                return requests.get(f"{url}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout_s=120, step_s=0.3)
        yield {"url": url, "server": server, "log": log}
    finally:
        stop_process(server, 20, group=True)


@pytest.fixture(scope="module")
def served(bento, tmp_path_factory):
    """The bento served, its monitor a recording server started here."""
    monitor = Monitor()
    try:
        with serve_bento(bento["tag"], bento["home"], tmp_path_factory.mktemp("serve"),
                         EVIDENTLY_HOST="127.0.0.1", EVIDENTLY_PORT=str(monitor.port)) as server:
            yield {"monitor": monitor, **server, **bento}
    finally:
        monitor.stop()


def exported_hsgd_run(data_path, home, tmp_path, *overrides):
    """Train tfidf_hsgd on ``data_path`` with export=bento into ``home``; its run, checked FINISHED."""
    run_cli("model=tfidf_hsgd", "export=bento", f"export.bentoml_home={home}", "dataset=file", "progress=false",
            "plots=false", f"dataset.path={data_path}", *overrides, cwd=tmp_path)
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"
    return run


def predict(url: str, body, **kwargs) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) or hasattr(body, "__next__") else json.dumps(body)
    return requests.post(f"{url}/predict", data=data, headers={"content-type": "application/json"}, timeout=30,
                         **kwargs)


def test_predict_single_and_batch_forms(served):
    from ktt import tracking
    from ktt.preprocess import preprocess

    model = tracking.load_model(served["run"].info.run_id, tracking_uri=f"sqlite:///{served['cwd'] / 'mlflow.db'}")
    expected = [model.hierarchy.path_names(leaf) for leaf in model.predict(preprocess(TEXTS))]

    single = predict(served["url"], {"text": TEXTS[0]})
    assert single.status_code == 200, single.text
    body = single.json()
    assert body["path"] == expected[0] and len(body["scores"]) == 3
    assert all(0 <= s <= 1 + 1e-9 for s in body["scores"])
    assert body["scores"][0] >= body["scores"][1] >= body["scores"][2]  # a class's score covers its children

    batch = predict(served["url"], {"texts": TEXTS})
    assert batch.status_code == 200, batch.text
    assert [p["path"] for p in batch.json()["predictions"]] == expected

    many = predict(served["url"], {"texts": TEXTS * 50})  # more than max_batch_size: split into batches
    assert [p["path"] for p in many.json()["predictions"]] == expected * 50


@pytest.mark.parametrize("body, message", [
    ({}, "missing input"),
    ({"text": None}, "missing input"),
    ({"txt": "Cholera"}, "missing input"),
    ({"text": 42}, '"text" must be a string, got a number'),
    ({"text": ["a list"]}, '"text" must be a string, got an array'),
    ({"text": ""}, '"text" is empty'),
    ({"text": "  \n "}, '"text" is empty'),
    ({"texts": "Cholera"}, '"texts" must be an array of strings, got a string'),
    ({"texts": []}, '"texts" is an empty array'),
    ({"texts": ["Cholera", 3]}, '"texts"[1] must be a string, got a number'),
    ({"texts": ["Cholera", ""]}, '"texts"[1] is empty'),
    ({"text": "a", "texts": ["b"]}, 'either "text" or "texts"'),
    (b"{not json", "invalid JSON: "),
    (b'["a", "b"]', "the body must be a JSON object, got an array"),
    (b"[" * 10_000 + b"]" * 10_000, "JSON nested too deeply"),
])
def test_bad_requests_get_400_with_a_message(served, body, message):
    response = predict(served["url"], body)
    assert response.status_code == 400
    assert response.json() == {"error": response.json()["error"]} and message in response.json()["error"]


def test_non_json_content_types_get_415_and_refusals_are_one_warning_line(served):
    for content_type, body in (("text/plain", b'{"text": "Cholera"}'), ("application/x-www-form-urlencoded", b"text=x")):
        response = requests.post(f"{served['url']}/predict", data=body, headers={"content-type": content_type},
                                 timeout=30)
        assert response.status_code == 415 and "Content-Type" in response.json()["error"]
    assert predict(served["url"], b"{not json").status_code == 400
    log = served["log"].read_text()
    assert "Traceback" not in log and "validation error" not in log
    assert re.search(r"WARNING.*415 POST /predict: unsupported Content-Type 'text/plain'", log), log[-3000:]
    assert re.search(r"WARNING.*400 POST /predict: invalid JSON", log), log[-3000:]


def test_oversized_bodies_get_413_and_the_service_stays_up(served):
    big = json.dumps({"text": "cholera " * 10_000}).encode()  # 80 kB > max_body_bytes=65536
    response = predict(served["url"], big)
    assert response.status_code == 413 and "over the limit of 65536 bytes" in response.json()["error"]
    chunked = predict(served["url"], iter([big[i:i + 8192] for i in range(0, len(big), 8192)]))  # no Content-Length
    assert chunked.status_code == 413
    fits = predict(served["url"], {"texts": ["cholera " * 100] * 50})  # 40 kB: accepted
    assert fits.status_code == 200 and len(fits.json()["predictions"]) == 50
    assert served["server"].poll() is None
    assert requests.get(f"{served['url']}/readyz", timeout=5).status_code == 200
    assert predict(served["url"], {"text": TEXTS[1]}).status_code == 200


def test_monitoring_rows_reach_the_monitor(served):
    import mlflow
    import pandas as pd

    monitor = served["monitor"]
    before = len(monitor.rows)
    assert predict(served["url"], {"texts": TEXTS}).status_code == 200
    wait_for(lambda: len(monitor.rows) >= before + len(TEXTS))
    reference = mlflow.artifacts.download_artifacts(run_id=served["run"].info.run_id,
                                                    artifact_path="reference/reference_set.parquet",
                                                    tracking_uri=f"sqlite:///{served['cwd'] / 'mlflow.db'}")
    columns = pd.read_parquet(reference).columns  # targets, F0.., C<class>..: the same layout as the rows
    row = monitor.rows[-1]
    assert len(row) == len(columns) and row[0] == 0.0
    n_features = sum(c.startswith("F") for c in columns)
    assert abs(sum(row[1 + n_features:]) - 1) < 1e-6  # the scores (probabilities) close every row
    page = requests.get(f"{served['url']}/metrics", timeout=10).text
    assert metric(page, "ktt_monitoring_rows_sent_total") >= len(monitor.rows)


def test_a_slow_then_down_monitor_neither_slows_nor_fails_predictions(served):
    monitor = served["monitor"]
    monitor.delay_s = 3.0  # far over the bento's monitoring_timeout_s=0.5
    for text in TEXTS:
        start = time.perf_counter()
        assert predict(served["url"], {"text": text}).status_code == 200
        assert time.perf_counter() - start < 2.0

    def failures(reason):
        return metric(requests.get(f"{served['url']}/metrics", timeout=10).text, "ktt_monitoring_rows_failed_total",
                      reason=reason)

    wait_for(lambda: failures("timeout") > 0)
    monitor.stop()  # now nothing listens on its port
    for text in TEXTS:
        assert predict(served["url"], {"text": text}).status_code == 200
    wait_for(lambda: failures("connection") > 0)
    assert served["server"].poll() is None


def test_the_bento_imports_and_answers_in_a_clean_process(bento, tmp_path):
    """A fresh interpreter with only BENTOML_HOME set loads the bento's own code (not the checkout's)."""
    script = f"""
import json, bentoml
from starlette.testclient import TestClient
service = bentoml.load({bento['tag']!r})
import ktt, ktt_models
with TestClient(service.to_asgi()) as client:
    response = client.post("/predict", json={{"text": {TEXTS[0]!r}}})
    bad = client.post("/predict", json={{"text": ""}})
print(json.dumps({{"ktt": ktt.__file__, "models": ktt_models.__file__, "status": response.status_code,
                  "body": response.json(), "bad": bad.status_code}}))
"""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BENTOML", "PYTHON", "MLFLOW"))}
    env.update({"BENTOML_HOME": str(bento["home"]), "BENTOML_DO_NOT_TRACK": "True", "KTT_MONITORING": "0"})
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    bento_root = str(Path(bento["home"]).resolve())
    assert answer["ktt"].startswith(bento_root) and answer["models"].startswith(bento_root)
    assert answer["status"] == 200 and len(answer["body"]["path"]) == 3
    assert answer["bad"] == 400


# ---------------------------------------------------------------- the pieces
def test_monitoring_client_posts_drops_and_counts_failures():
    import numpy as np

    from ktt.serving.monitoring import MonitoringClient, metrics, monitoring_rows

    counters = metrics()
    sent0, dropped0 = counters["sent"]._value.get(), counters["dropped"]._value.get()
    failed0 = counters["failed"].labels(reason="connection")._value.get()

    recording = Monitor()
    rows = monitoring_rows(np.full((2, 3), 0.5), np.array([[0.25, 0.75], [1.0, 0.0]]))
    assert rows.tolist() == [[0.0, 0.5, 0.5, 0.5, 0.25, 0.75], [0.0, 0.5, 0.5, 0.5, 1.0, 0.0]]
    client = MonitoringClient(recording.url, queue_size=4, timeout_s=1)
    assert client.submit(rows)
    wait_for(lambda: len(recording.rows) == 2)
    assert recording.rows == rows.tolist()
    wait_for(lambda: counters["sent"]._value.get() == sent0 + 2)
    client.close()
    recording.stop()

    slow = Monitor(delay_s=2.0)
    client = MonitoringClient(slow.url, queue_size=2, timeout_s=5)
    start = time.perf_counter()
    accepted = [client.submit([[0.0, 1.0]]) for _ in range(10)]  # one in flight, two queued, the rest dropped
    assert time.perf_counter() - start < 0.5  # never blocks
    assert accepted.count(False) >= 6
    assert counters["dropped"]._value.get() - dropped0 == accepted.count(False)
    client.close(timeout_s=0.1)
    slow.stop()

    down = MonitoringClient(f"http://127.0.0.1:{free_port()}/iterate", timeout_s=1)
    down.submit([[0.0, 1.0], [0.0, 1.0]])
    wait_for(lambda: counters["failed"].labels(reason="connection")._value.get() == failed0 + 2)
    down.close()


def test_body_size_limit_with_and_without_content_length():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from ktt.serving import BodySizeLimit

    async def echo(request: Request):
        return JSONResponse({"size": len(await request.body())})

    app = Starlette(routes=[Route("/", echo, methods=["POST"])])
    client = TestClient(BodySizeLimit(app, max_bytes=100))
    assert client.post("/", content=b"x" * 100).json() == {"size": 100}
    assert client.post("/", content=b"x" * 101).status_code == 413
    assert client.post("/", content=iter([b"x" * 60, b"x" * 60])).status_code == 413
    assert client.post("/", content=iter([b"x" * 50, b"x" * 50])).json() == {"size": 100}


def test_settings_from_the_environment_are_checked(tmp_path):
    from ktt.errors import KttError
    from ktt.serving import ServiceSettings

    ServiceSettings(name="x", checkpoint="model/model.joblib", checkpoint_sha256="0" * 64).save(tmp_path)
    settings = ServiceSettings.load(tmp_path, environ={"EVIDENTLY_HOST": "monitor", "EVIDENTLY_PORT": "5002",
                                                       "KTT_MONITORING": "1", "KTT_MAX_LATENCY_MS": "5000"})
    assert settings.monitoring_url == "http://monitor:5002/iterate" and settings.monitoring
    assert settings.batching() == {"batchable": True, "max_batch_size": 64, "max_latency_ms": 5000}
    with pytest.raises(KttError, match="EVIDENTLY_PORT='x' is not a valid int"):
        ServiceSettings.load(tmp_path, environ={"EVIDENTLY_PORT": "x"})
    with pytest.raises(KttError, match=r"^invalid service setting max_batch_size=1 \(allowed: an integer in \[2, inf\]\)$"):
        ServiceSettings.load(tmp_path, environ={"KTT_MAX_BATCH_SIZE": "1"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(KttError, match="no ktt_service.json"):
        ServiceSettings.load(tmp_path / "empty")
    # a bento built with the model inside the HTTP service (the default) has no model service to turn on
    with pytest.raises(KttError, match=r"^KTT_ADAPTIVE_BATCHING=1, but this service was built without a model "
                                       r"service \(adaptive_batching=false\); re-export it with "
                                       r"export.adaptive_batching=true$"):
        ServiceSettings.load(tmp_path, environ={"KTT_ADAPTIVE_BATCHING": "1"})
    ServiceSettings(name="x", checkpoint="model/model.joblib", checkpoint_sha256="0" * 64,
                    adaptive_batching=True).save(tmp_path)
    assert not ServiceSettings.load(tmp_path, environ={"KTT_ADAPTIVE_BATCHING": "0"}).adaptive_batching


def test_the_bento_export_config_sets_every_service_setting_to_its_default():
    import yaml

    from ktt.export.run import EXPORT_CONSTRAINTS
    from ktt.serving.settings import OPTIONS

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "conf" / "export" / "bento.yaml").read_text())
    assert set(config) <= set(EXPORT_CONSTRAINTS)
    defaults = {key: option.default for key, option in OPTIONS.items()}
    assert {key: config[key] for key in OPTIONS} == {**defaults, "monitoring": True}  # true: when there is a reference set


def test_tfidf_hsgd_is_served_with_its_top_down_paths(icd_sample, tmp_path):
    from ktt import tracking
    from ktt.preprocess import preprocess

    home = tmp_path / "bentoml"
    run = exported_hsgd_run(icd_sample, home, tmp_path, "min_df=2", "export.adaptive_batching=true")
    model = tracking.load_model(run.info.run_id, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    paths, path_scores = model.predict_path(preprocess(TEXTS))
    expected = [[model.hierarchy.classes[i] for i in path] for path in paths]
    # the model in a service of its own, behind BentoML's adaptive batching
    with serve_bento(run.data.tags["ktt.bento_tag"], home, tmp_path) as server:
        answer = predict(server["url"], {"texts": TEXTS})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert [p["path"] for p in predictions] == expected
        np.testing.assert_allclose([p["scores"] for p in predictions], path_scores, rtol=1e-6)
        assert predict(server["url"], {"text": ""}).status_code == 400
    # the same bento with the model inside the HTTP service (as the default builds it): the same answers,
    # inline and in a worker thread
    with serve_bento(run.data.tags["ktt.bento_tag"], home, tmp_path, KTT_ADAPTIVE_BATCHING="0") as server:
        many = predict(server["url"], {"texts": TEXTS * 10}).json()["predictions"]  # > INLINE_CLASSIFY_TEXTS
        assert [p["path"] for p in many] == expected * 10
        single = predict(server["url"], {"text": TEXTS[0]}).json()
        assert single["path"] == expected[0]
        np.testing.assert_allclose(single["scores"], path_scores[0], rtol=1e-6)
        assert predict(server["url"], {"text": ""}).status_code == 400
        # concurrent requests, scored in shared calls (ktt.serving.batching): each gets its own answer
        from concurrent.futures import ThreadPoolExecutor

        order = [i % len(TEXTS) for i in range(96)]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda i: predict(server["url"], {"text": TEXTS[i]}).json(), order))
        assert [a["path"] for a in answers] == [expected[i] for i in order]
        np.testing.assert_allclose([a["scores"] for a in answers], path_scores[order], rtol=1e-6)
        metrics = requests.get(f"{server['url']}/metrics", timeout=30).text
        calls = float(re.search(r"^ktt_batch_size_count(?:{.*})? (\S+)$", metrics, re.MULTILINE).group(1))
        texts = float(re.search(r"^ktt_batch_size_sum(?:{.*})? (\S+)$", metrics, re.MULTILINE).group(1))
        assert texts == len(TEXTS) * 10 + 1 + len(order) and calls <= -(-len(TEXTS) * 10 // 64) + 1 + len(order)
        assert "classifier" not in server["log"].read_text().lower()  # no model service was started


def test_a_loaded_runtime_has_built_its_featuriser_before_the_first_request(tmp_path):
    """``ModelRuntime.load`` builds what the first call would (the featuriser's tries)."""
    import hashlib

    from ktt.data.loaders import Loader
    from ktt.hierarchy import Hierarchy
    from ktt.serving import ServiceSettings
    from ktt.serving.runtime import ModelRuntime
    from ktt_models.tfidf_hsgd import TfidfHSGD

    texts = ["green tea leaf", "roast peanut", "garden hose pipe", "black tea"] * 10
    targets = np.array(["Tea", "Nuts", "Hose", "Tea"] * 10, dtype=object)
    hierarchy, _ = Hierarchy.from_paths([("Food", "Tea"), ("Food", "Nuts"), ("Home", "Hose")])
    model = TfidfHSGD(min_df=1).fit(Loader(texts, targets), hierarchy=hierarchy)
    (tmp_path / "model").mkdir()
    model.save(tmp_path / "model" / "model.joblib")
    sha = hashlib.sha256((tmp_path / "model" / "model.joblib").read_bytes()).hexdigest()
    ServiceSettings(name="x", checkpoint="model/model.joblib", checkpoint_sha256=sha).save(tmp_path)
    runtime = ModelRuntime.load(ServiceSettings.load(tmp_path, environ={}))
    assert runtime.monitor is None
    assert runtime.model.features_._transformers is not None  # built on load, not by the first request
    assert runtime.classify(["green tea"])[0]["path"] == ["Food", "Tea"]
