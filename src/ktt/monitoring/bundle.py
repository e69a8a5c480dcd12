"""A deployable monitoring stack for a bento: docker-compose with inference, monitoring, Prometheus, Grafana.

:func:`write_bundle` writes::

    docker-compose.yml
    README.md
    monitoring/Dockerfile           python image running python -m ktt.monitoring
    monitoring/requirements.txt     the monitoring service's packages, pinned to the installed versions
    monitoring/app/ktt/...          ktt.monitoring and the two modules it needs (errors, params)
    monitoring/evidently.yaml       the model's config, reference_path pointing at the mounted set
    monitoring/reference_set.parquet
    prometheus/prometheus.yml       scrapes inference:3000/metrics and monitoring:5001/metrics
    grafana/provisioning/datasources/prometheus.yml
    grafana/provisioning/dashboards/ktt.yml
    grafana/dashboards/<model_name>.json

The inference service is the image ``bentoml containerize <bento_tag>`` builds
(tagged like the bento); it gets ``EVIDENTLY_HOST=monitoring`` and
``EVIDENTLY_PORT`` so that its monitoring hook posts to the monitoring service.
"""

from __future__ import annotations

import re
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ktt.errors import KttError

#: What the monitoring image installs (each pinned to the version installed here).
MONITORING_REQUIREMENTS = ("evidently", "pandas", "numpy", "scipy", "pyarrow", "pyyaml", "starlette", "uvicorn",
                           "prometheus-client")
#: The ktt modules the monitoring service imports, besides ktt.monitoring itself.
KTT_MODULES = ("__init__.py", "errors.py", "params.py")
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
GRAFANA_IMAGE = "grafana/grafana:11.2.0"
#: The monitoring image's Python: the one the requirements were pinned with.
PYTHON_IMAGE = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
#: Paths inside the containers.
MONITORING_DIR = "/monitoring"
DASHBOARDS_DIR = "/etc/grafana/dashboards"
BENTO_TAG = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?:[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")


def write_bundle(out_dir, *, bento_tag: str, model_name: str, evidently_config, reference_set_path,
                 dashboard_path=None, monitoring_port: int = 5001, inference_port: int = 3000,
                 prometheus_port: int = 9090, grafana_port: int = 3001, scrape_interval_s: int = 15) -> Path:
    """Write the compose stack of a bento with drift monitoring into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Created if needed; files of an earlier bundle are overwritten.
    bento_tag : str
        ``name:version`` of the bento; the inference image is the one
        ``bentoml containerize <bento_tag>`` builds (same tag).
    model_name : str
        Names the compose project, the Prometheus label ``model`` and the dashboard.
    evidently_config : path-like or dict
        The model's ``evidently.yaml`` (as the bento export writes it) or its content.
    reference_set_path : path-like
        The run's reference set (Parquet).
    dashboard_path : path-like, optional
        The model's Grafana dashboard; default: :func:`ktt.monitoring.dashboard.build_dashboard`.
    monitoring_port, inference_port, prometheus_port, grafana_port : int
        Ports published on the host (the containers listen on 5001, 3000, 9090, 3000).
    scrape_interval_s : int
        Prometheus' scrape interval.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    KttError
        If the tag is not ``name:version``, or the config does not fit the reference set.
    """
    import yaml

    from ktt.monitoring.config import config_from_dict
    from ktt.monitoring.dashboard import dashboard_json
    from ktt.monitoring.reference import load_reference

    if not isinstance(bento_tag, str) or not BENTO_TAG.match(bento_tag):
        raise KttError(f"invalid bento_tag={bento_tag!r} (expected name:version, as `bentoml list` shows it)")
    slug = re.sub(r"[^a-z0-9_-]+", "-", str(model_name).lower()).strip("-_") or "ktt"
    out = Path(out_dir)
    monitoring = out / "monitoring"
    monitoring.mkdir(parents=True, exist_ok=True)

    # the monitoring service's config and reference set, checked together as the service will read them
    config = _read_config(evidently_config)
    config.setdefault("service", {})
    config["service"] = {**(config["service"] or {}), "reference_path": "./reference_set.parquet"}
    shutil.copyfile(reference_set_path, monitoring / "reference_set.parquet")
    checked = config_from_dict(config, base=monitoring, name="evidently.yaml")
    load_reference(checked)
    (monitoring / "evidently.yaml").write_text(
        f"# Drift monitoring of {model_name} (python -m ktt.monitoring; options: ktt.monitoring.config)\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    _write_monitoring_image(monitoring)

    _write(out / "prometheus" / "prometheus.yml", yaml.safe_dump({
        "global": {"scrape_interval": f"{scrape_interval_s}s", "evaluation_interval": f"{scrape_interval_s}s"},
        "scrape_configs": [
            {"job_name": "inference", "metrics_path": "/metrics",
             "static_configs": [{"targets": ["inference:3000"], "labels": {"model": slug}}]},
            {"job_name": "monitoring", "metrics_path": "/metrics",
             "static_configs": [{"targets": ["monitoring:5001"], "labels": {"model": slug}}]},
        ],
    }, sort_keys=False))
    _write(out / "grafana" / "provisioning" / "datasources" / "prometheus.yml", yaml.safe_dump({
        "apiVersion": 1,
        "datasources": [{"name": "Prometheus", "type": "prometheus", "uid": "prometheus", "access": "proxy",
                         "url": "http://prometheus:9090", "isDefault": True, "editable": False}],
    }, sort_keys=False))
    _write(out / "grafana" / "provisioning" / "dashboards" / "ktt.yml", yaml.safe_dump({
        "apiVersion": 1,
        "providers": [{"name": "ktt", "folder": "ktt", "type": "file", "disableDeletion": True,
                       "allowUiUpdates": False, "options": {"path": DASHBOARDS_DIR}}],
    }, sort_keys=False))
    dashboard = out / "grafana" / "dashboards" / f"{slug}.json"
    dashboard.parent.mkdir(parents=True, exist_ok=True)
    if dashboard_path is not None:
        shutil.copyfile(dashboard_path, dashboard)
    else:
        dashboard.write_text(dashboard_json(str(model_name)), encoding="utf-8")

    _write(out / "docker-compose.yml", yaml.safe_dump(_compose(
        slug, bento_tag, monitoring_port, inference_port, prometheus_port, grafana_port), sort_keys=False))
    _write(out / "README.md", README.format(model=model_name, tag=bento_tag, inference=inference_port,
                                            monitoring=monitoring_port, prometheus=prometheus_port,
                                            grafana=grafana_port))
    return out


def _read_config(evidently_config) -> dict:
    import yaml

    if isinstance(evidently_config, dict):
        return {key: (dict(value) if isinstance(value, dict) else value) for key, value in evidently_config.items()}
    path = Path(evidently_config)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KttError(f"cannot read the monitoring config {path}: {error.strerror or error}") from None
    if not isinstance(config, dict):
        raise KttError(f"{path} must be a mapping with a 'service' section")
    return config


def _compose(slug: str, bento_tag: str, monitoring_port: int, inference_port: int, prometheus_port: int,
             grafana_port: int) -> dict:
    return {
        "name": f"ktt-{slug}",
        "services": {
            "inference": {
                "image": bento_tag,  # built by: bentoml containerize <bento_tag>
                "ports": [f"{inference_port}:3000"],
                "environment": {"EVIDENTLY_HOST": "monitoring", "EVIDENTLY_PORT": "5001"},
                "depends_on": ["monitoring"],
                "restart": "unless-stopped",
            },
            "monitoring": {
                "build": {"context": "./monitoring"},
                "image": f"ktt-monitoring-{slug}:latest",
                "command": ["python", "-m", "ktt.monitoring", "--config", f"{MONITORING_DIR}/evidently.yaml",
                            "--reference", f"{MONITORING_DIR}/reference_set.parquet", "--host", "0.0.0.0",
                            "--port", "5001"],
                "volumes": ["./monitoring/evidently.yaml:/monitoring/evidently.yaml:ro",
                            "./monitoring/reference_set.parquet:/monitoring/reference_set.parquet:ro"],
                "ports": [f"{monitoring_port}:5001"],
                "healthcheck": {"test": ["CMD", "python", "-c",
                                         "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5001/healthz')"],
                                "interval": "10s", "timeout": "5s", "retries": 3, "start_period": "60s"},
                "restart": "unless-stopped",
            },
            "prometheus": {
                "image": PROMETHEUS_IMAGE,
                "command": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
                "volumes": ["./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro", "prometheus-data:/prometheus"],
                "ports": [f"{prometheus_port}:9090"],
                "depends_on": ["inference", "monitoring"],
                "restart": "unless-stopped",
            },
            "grafana": {
                "image": GRAFANA_IMAGE,
                "volumes": ["./grafana/provisioning:/etc/grafana/provisioning:ro",
                            f"./grafana/dashboards:{DASHBOARDS_DIR}:ro", "grafana-data:/var/lib/grafana"],
                "ports": [f"{grafana_port}:3000"],
                "depends_on": ["prometheus"],
                "restart": "unless-stopped",
            },
        },
        "volumes": {"prometheus-data": {}, "grafana-data": {}},
    }


def _write_monitoring_image(folder: Path) -> None:
    """The monitoring image's Dockerfile, pinned requirements and code."""
    import ktt

    pins = []
    for name in MONITORING_REQUIREMENTS:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            raise KttError(f"{name} is not installed; cannot pin the monitoring image's requirements") from None
    _write(folder / "requirements.txt", "\n".join(pins) + "\n")
    _write(folder / "Dockerfile", DOCKERFILE.format(image=PYTHON_IMAGE))
    source = Path(ktt.__file__).resolve().parent
    code = folder / "app" / "ktt"
    if code.exists():
        shutil.rmtree(code)
    code.mkdir(parents=True)
    for name in KTT_MODULES:
        shutil.copy2(source / name, code / name)
    shutil.copytree(source / "monitoring", code / "monitoring",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.json"))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


DOCKERFILE = """\
# The drift monitoring service of a ktt model (python -m ktt.monitoring).
FROM {image}
WORKDIR /app
COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r /app/requirements.txt
COPY app/ /app/
ENV PYTHONPATH=/app PYTHONUNBUFFERED=1
EXPOSE 5001
CMD ["python", "-m", "ktt.monitoring", "--config", "/monitoring/evidently.yaml", "--host", "0.0.0.0", "--port", "5001"]
"""

README = """\
# Monitoring stack of {model}

Inference ({tag}), drift monitoring, Prometheus and Grafana, as docker compose services.

```bash
bentoml containerize {tag}      # builds the inference image, tagged {tag}
docker compose up -d --build    # builds the monitoring image, starts all four
```

| service    | on the host                  | what                                                      |
|------------|------------------------------|-----------------------------------------------------------|
| inference  | http://localhost:{inference}     | POST /predict {{"text": "..."}}; /metrics (BentoML)         |
| monitoring | http://localhost:{monitoring}     | POST /iterate (from inference), /metrics, /drift, /healthz |
| prometheus | http://localhost:{prometheus}     | scrapes both /metrics                                     |
| grafana    | http://localhost:{grafana}     | dashboard "ktt {model}: drift and requests" (folder ktt)  |

The monitoring options (window, period, monitors, reference) are in
`monitoring/evidently.yaml`; the reference set is `monitoring/reference_set.parquet`.
Grafana's first login is admin/admin (it asks for a new password).
"""
