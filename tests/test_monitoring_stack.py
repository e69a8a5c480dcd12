"""The deployable stack: the compose bundle checked statically (Docker does not run here), its
Grafana dashboard against the metrics the services really export, and the monitoring service
scraped end to end by a real Prometheus (Debian's /usr/bin/prometheus).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
import yaml

from conftest import free_port
from ktt.testing import stop_process
from test_monitoring import (CLASSES, WINDOW, icd_monitoring_data, post_rows, running_service, synthetic_reference,
                             wait_for)

from ktt.errors import KttError
from ktt.monitoring.bundle import write_bundle
from ktt.monitoring.dashboard import build_dashboard

BENTO_TAG = "tfidf_lsgd_icd10cm:5hx3qwd2ngbqxq6g"
TEMPLATE = Path(__file__).resolve().parents[1] / "src" / "ktt" / "monitoring" / "dashboard_template.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan"}


# ------------------------------------------------------------ metric names
def family_names(registry) -> set[str]:
    """Sample names of every metric family in a prometheus_client registry (children or not)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created"), "gauge": ("",)}
    return {family.name + suffix for family in registry.collect() for suffix in suffixes.get(family.type, ("",))}


def bentoml_metric_names() -> set[str]:
    """What BentoML 1.4 services export, read from the installed BentoML source.

    The traffic middleware's metrics (namespace from BentoML's default configuration,
    ``services.metrics.namespace``) and the adaptive-batching histogram.
    """
    from importlib.util import find_spec

    root = Path(find_spec("bentoml").origin).parent
    service_app = Path(find_spec("_bentoml_impl").origin).parent / "server" / "app.py"
    defaults = yaml.safe_load((root / "_internal/configuration/v2/default_configuration.yaml").read_text())
    namespace = defaults["services"]["metrics"]["namespace"]
    suffixes = {"Counter": ("_total",), "Histogram": ("_bucket", "_sum", "_count"), "Summary": ("_sum", "_count"),
                "Gauge": ("",)}
    names = set()
    for source in (root / "_internal/server/http/instruments.py", service_app):
        for kind, space, name in re.findall(r'metrics_client\.(\w+)\(\s*namespace=([^,]+),\s*name="(\w+)"',
                                            source.read_text()):
            prefix = space.strip('"') if space.startswith('"') else namespace
            if kind == "Counter":  # prometheus_client exposes a counter "x_total" (or "x") as x_total
                name = name.removesuffix("_total")
            names.update(f"{prefix}_{name}{suffix}" for suffix in suffixes[kind])
    assert {"bentoml_service_request_total", "bentoml_service_request_duration_seconds_bucket",
            "bentoml_service_adaptive_batch_size_count"} <= names, names
    return names


def exported_metric_names() -> set[str]:
    """Every metric the stack's services export: the monitoring service, the inference hook, BentoML."""
    import prometheus_client

    from ktt.monitoring.config import MONITORS
    from ktt.monitoring.metrics import DriftMetrics
    from ktt.serving import batching, runtime
    from ktt.serving.monitoring import metrics as hook_metrics

    hook_metrics()  # the serving runtime creates its counters on first use, in the global registry
    runtime._retries()
    batching._batch_sizes()
    hook = {n for n in family_names(prometheus_client.REGISTRY)
            if n.startswith(("ktt_monitoring_", "ktt_classify_", "ktt_batch_"))}
    return family_names(DriftMetrics(MONITORS, 30).registry) | hook | bentoml_metric_names()


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, keywords, labels or strings)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return {m.group(1) for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", expr)
            if not m.group(2) and m.group(1) not in PROMQL_WORDS}


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


# ------------------------------------------------------------------ bundle
def exported_config(**service) -> dict:
    """An evidently.yaml as the bento export writes it (see ktt.export.bento.write_evidently_config)."""
    return {"service": {"reference_path": "./reference_set.parquet", "min_reference_size": 30, "use_reference": True,
                        "moving_reference": False, "window_size": 30, "calculation_period_sec": 60,
                        "monitors": ["cat_target_drift", "data_drift"], **service},
            "target": "targets", "features": ["F0", "F1", "F2"], "prediction": [f"C{c}" for c in CLASSES]}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    reference = synthetic_reference(folder / "reference.parquet")
    config = folder / "evidently.yaml"
    config.write_text(yaml.safe_dump(exported_config()))
    return write_bundle(folder / "stack", bento_tag=BENTO_TAG, model_name="tfidf_lsgd", evidently_config=config,
                        reference_set_path=reference, dashboard_path=TEMPLATE)


def test_the_dashboard_template_is_the_generated_dashboard():
    assert json.loads(TEMPLATE.read_text()) == build_dashboard("tfidf_lsgd")


def test_dashboard_queries_use_only_exported_metrics(bundle):
    dashboard = json.loads(next((bundle / "grafana" / "dashboards").glob("*.json")).read_text())
    exported = exported_metric_names()
    queries = panel_queries(dashboard)
    assert len(queries) >= 15
    for title, expr in queries:
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= exported, f"{title}: {sorted(names - exported)} exported by no service"
    used = set().union(*(promql_metric_names(expr) for _, expr in queries))
    for needed in ("ktt_drift_share", "ktt_drift_dataset_drift", "ktt_drift_feature_score", "ktt_drift_prediction_score",
                   "ktt_drift_rows_received_total", "ktt_drift_rows_rejected_total",
                   "bentoml_service_request_total", "bentoml_service_request_duration_seconds_bucket"):
        assert needed in used, f"no panel shows {needed}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_bundle_is_complete_and_consistent(bundle):
    compose = yaml.safe_load((bundle / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"inference", "monitoring", "prometheus", "grafana"}
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", compose["name"])

    # every bind mount and build context exists; named volumes are declared
    mounts = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            host, container = volume.split(":")[:2]
            if host.startswith("."):
                assert (bundle / host).exists(), f"{name} mounts missing {host}"
                mounts[(name, container)] = bundle / host
            else:
                assert host in compose["volumes"], f"{name} uses undeclared volume {host}"
    context = bundle / services["monitoring"]["build"]["context"]
    dockerfile = (context / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (context / source).exists(), f"Dockerfile copies missing {source}"
    pins = (context / "requirements.txt").read_text().split()
    assert "evidently==0.7.23" in pins and all("==" in pin for pin in pins)

    # inference: the containerized bento, posting to the monitoring service's port
    inference, monitoring = services["inference"], services["monitoring"]
    assert inference["image"] == BENTO_TAG
    command = monitoring["command"]
    assert command[:3] == ["python", "-m", "ktt.monitoring"]
    port = command[command.index("--port") + 1]
    assert inference["environment"] == {"EVIDENTLY_HOST": "monitoring", "EVIDENTLY_PORT": port}
    for flag in ("--config", "--reference"):
        assert (mounts[("monitoring", command[command.index(flag) + 1])]).is_file()

    # prometheus scrapes both services at the ports they listen on
    prometheus = yaml.safe_load((bundle / "prometheus" / "prometheus.yml").read_text())
    assert ("prometheus", "/etc/prometheus/prometheus.yml") in mounts
    targets = {t for job in prometheus["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    assert targets == {"inference:3000", f"monitoring:{port}"}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in prometheus["scrape_configs"])

    # grafana: the provisioned data source is the prometheus service, the dashboard folder is mounted
    provisioning = mounts[("grafana", "/etc/grafana/provisioning")]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasources[0]["type"] == "prometheus" and datasources[0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "ktt.yml").read_text())["providers"]
    dashboards = mounts[("grafana", providers[0]["options"]["path"])]
    assert [p.name for p in dashboards.glob("*.json")] == ["tfidf_lsgd.json"]
    assert json.loads((dashboards / "tfidf_lsgd.json").read_text()) == json.loads(TEMPLATE.read_text())

    # the monitoring config is the export's, pointing at the mounted reference set
    config = yaml.safe_load((bundle / "monitoring" / "evidently.yaml").read_text())
    assert config["service"]["reference_path"] == "./reference_set.parquet"
    assert config["prediction"] == [f"C{c}" for c in CLASSES]


def test_promtool_accepts_the_prometheus_config(bundle):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (bash scripts/setup.sh --dev installs Prometheus)")
    result = subprocess.run([promtool, "check", "config", str(bundle / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_bundle_refuses_bad_inputs(tmp_path):
    reference = synthetic_reference(tmp_path / "reference.parquet")
    with pytest.raises(KttError, match="invalid bento_tag='tfidf_lsgd'"):
        write_bundle(tmp_path / "a", bento_tag="tfidf_lsgd", model_name="m", evidently_config=exported_config(),
                     reference_set_path=reference)
    bad = exported_config()
    bad["features"] = ["F0", "F9"]
    with pytest.raises(KttError, match="no feature column"):
        write_bundle(tmp_path / "b", bento_tag=BENTO_TAG, model_name="m", evidently_config=bad,
                     reference_set_path=reference)


# ------------------------------------------------------------- end to end
@pytest.fixture
def prometheus_binary():
    binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if binary is None:
        pytest.skip("prometheus is not installed (bash scripts/setup.sh --dev installs Debian's prometheus)")
    return binary


def start_prometheus(binary: str, folder: Path, target: str) -> tuple[subprocess.Popen, str]:
    """A real Prometheus scraping ``target``'s /metrics every second; returns the process and its URL."""
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "monitoring", "static_configs": [{"targets": [target]}]}],
    }))
    port = free_port()
    log = open(folder / "prometheus.log", "w")
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                               stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def query(prometheus: str, expr: str) -> list:
    """An instant query's result vector (fails on a PromQL error)."""
    response = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


def scalar(prometheus: str, expr: str) -> float | None:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_drift_end_to_end(icd_sample, prometheus_binary, tmp_path):
    """Bundle -> its monitoring code and config serve -> rows as the inference service sends them ->
    Prometheus scrapes the drift metrics; every dashboard query runs against it."""
    data = icd_monitoring_data(icd_sample)
    reference = tmp_path / "reference_set.parquet"
    data.reference.to_parquet(reference)
    config = {"service": {"window_size": WINDOW, "calculation_period_sec": 1, "min_reference_size": 30,
                          "use_reference": True, "moving_reference": False,
                          "monitors": ["cat_target_drift", "data_drift"]},
              "target": "targets", "features": [f"F{i}" for i in range(data.n_features)],
              "prediction": [f"C{c}" for c in data.classes]}
    stack = write_bundle(tmp_path / "stack", bento_tag=BENTO_TAG, model_name="tfidf_lsgd", evidently_config=config,
                         reference_set_path=reference)
    code = str(stack / "monitoring" / "app")
    where = subprocess.run([sys.executable, "-c", "import ktt.monitoring; print(ktt.monitoring.__file__)"],
                           capture_output=True, text=True, env={"PYTHONPATH": code, "PATH": "/usr/bin:/bin"},
                           timeout=60)
    assert where.stdout.strip().startswith(code), where.stdout + where.stderr  # the bundle's own copy runs

    storage = Path(tempfile.mkdtemp(prefix="ktt-prometheus-"))
    with running_service(stack / "monitoring" / "evidently.yaml", tmp_path / "service.log",
                         pythonpath=code) as service:
        target = service.url.removeprefix("http://")
        prometheus, prometheus_url = start_prometheus(prometheus_binary, storage, target)
        try:
            def ready():
                if prometheus.poll() is not None:
                    pytest.fail(f"prometheus exited: {(storage / 'prometheus.log').read_text()}")
                try:
                    return requests.get(f"{prometheus_url}/-/ready", timeout=2).ok
                except requests.ConnectionError:
                    return False

            wait_for(ready, 60, what="Prometheus ready")
            phases = {}
            for name, rows in (("held-out ICD", data.heldout[:WINDOW]), ("20newsgroups", data.news)):
                post_rows(service.url, rows)
                received = requests.get(f"{service.url}/healthz").json()["rows_received"]
                result = wait_for(lambda: (r := requests.get(f"{service.url}/drift").json()) and
                                  r["rows_received"] >= received and r, 120, what=f"a calculation on {name}")
                # Prometheus has scraped that calculation
                wait_for(lambda: scalar(prometheus_url, "ktt_drift_last_calculation_timestamp_seconds") ==
                         result["calculated_at"], 30, what=f"Prometheus scraping the {name} calculation")
                phases[name] = {expr: scalar(prometheus_url, expr) for expr in (
                    "ktt_drift_share", "ktt_drift_dataset_drift", "ktt_drift_prediction_drifted",
                    "ktt_drift_prediction_score", "count(ktt_drift_feature_score)", "sum(ktt_drift_feature_drifted)")}
            print(f"\nscraped by Prometheus: {json.dumps(phases)}")
            same, other = phases["held-out ICD"], phases["20newsgroups"]
            assert same["ktt_drift_dataset_drift"] == 0 and same["ktt_drift_share"] <= 0.2
            assert same["ktt_drift_prediction_drifted"] == 0
            assert other["ktt_drift_dataset_drift"] == 1 and other["ktt_drift_share"] >= 0.8
            assert other["ktt_drift_prediction_drifted"] == 1
            assert other["count(ktt_drift_feature_score)"] == data.n_features
            labels = query(prometheus_url, "ktt_drift_feature_score")[0]["metric"]
            assert labels["job"] == "monitoring" and labels["feature"].startswith("F") and labels["stattest"]

            # every dashboard query is valid PromQL; the drift panels show data
            dashboard = json.loads(next((stack / "grafana" / "dashboards").glob("*.json")).read_text())
            for title, expr in panel_queries(dashboard):
                expr = expr.replace("$monitoring_job", ".*").replace("$service", ".*")
                result = query(prometheus_url, expr)
                if "ktt_drift_" in expr:
                    assert result, f"panel {title!r} shows no data: {expr}"
        finally:
            stop_process(prometheus)
            shutil.rmtree(storage, ignore_errors=True)
