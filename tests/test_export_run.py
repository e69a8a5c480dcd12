"""Exporting a past run without retraining: ``python -m ktt.export run_id=... export=...``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import mlflow_client, mlflow_runs, run_cli
from ktt_models.tfidf_lsgd import TfidfLSGD


def run_export(*args: str, cwd: Path, check: bool = True):
    """Run ``python -m ktt.export`` in ``cwd`` (its MLflow store), as ``run_cli`` runs ``python -m ktt``."""
    return run_cli(*args, cwd=cwd, check=check, timeout=300, module="ktt.export")


@pytest.fixture(scope="module")
def past_run(icd_sample, tmp_path_factory):
    """A finished training run with a reference set and no export."""
    cwd = tmp_path_factory.mktemp("past_run")
    run_cli("model=tfidf_lsgd", "sublinear_tf=false", "reference=true", "dataset=file", f"dataset.path={icd_sample}",
            "min_df=2", "progress=false", "plots=false", cwd=cwd)
    (run,) = mlflow_runs(cwd)
    assert run.info.status == "FINISHED" and "ktt.export.onnx" not in run.data.tags
    return cwd, run


def test_export_a_past_run_to_onnx_by_id(past_run):
    cwd, run = past_run
    result = run_export(f"run_id={run.info.run_id}", "export=onnx", cwd=cwd)
    assert f"runs:/{run.info.run_id}/export/onnx/model.onnx" in result.stdout
    assert "labels equal on 100.0% of 300 texts (test split)" in result.stdout  # the cached split, still on disk
    client = mlflow_client(cwd)
    after = client.get_run(run.info.run_id)
    assert after.info.status == "FINISHED"
    assert after.data.tags["ktt.export.onnx"] == f"runs:/{run.info.run_id}/export/onnx/model.onnx"
    assert after.data.metrics["onnx_label_agreement"] == 1.0
    assert after.data.metrics["onnx_max_score_diff"] <= 1e-5
    assert {a.path for a in client.list_artifacts(run.info.run_id, "export/onnx")} == {
        "export/onnx/model.onnx", "export/onnx/hierarchy.json", "export/onnx/export.json"}


def test_export_the_latest_run_of_a_model_and_dataset_as_a_bento(past_run, icd_sample, tmp_path):
    import mlflow

    cwd, run = past_run
    home = tmp_path / "bentoml"
    result = run_export("run_id=latest", "model=tfidf_lsgd", "dataset=file", f"dataset.path={icd_sample}", "export=bento",
                        f"export.bentoml_home={home}", "export.max_latency_ms=5000", cwd=cwd)
    after = mlflow_client(cwd).get_run(run.info.run_id)
    tag = after.data.tags["ktt.bento_tag"]
    name, version = tag.split(":")
    assert name == "tfidf_lsgd_icd_sample" and tag in result.stdout and "with monitoring" in result.stdout
    assert after.data.tags["ktt.bento_home"] == str(home)
    bento = home / "bentos" / name / version
    assert (bento / "bento.yaml").is_file()
    source = bento / "src"
    for relative in ("service.py", "ktt_service.json", "requirements.txt", "model/model.joblib",
                     "model/model.joblib.sha256", "model/hierarchy.json", "ktt/serving/runtime.py",
                     "ktt/preprocess.py", "ktt_models/tfidf_lsgd/tfidf_lsgd.py", "monitoring/evidently.yaml",
                     "monitoring/dashboard.json", "monitoring/reference_set.parquet"):
        assert (source / relative).is_file(), relative
    settings = json.loads((source / "ktt_service.json").read_text())
    assert settings["checkpoint_sha256"] == after.data.tags["ktt.checkpoint_sha256"]  # the run's own checkpoint
    assert settings["max_latency_ms"] == 5000 and settings["max_batch_size"] == 64 and settings["monitoring"]
    assert settings["info"]["run_id"] == run.info.run_id
    requirements = (source / "requirements.txt").read_text().split()
    assert all("==" in line for line in requirements) and any(r.startswith("scikit-learn==") for r in requirements)
    json.loads((source / "monitoring" / "dashboard.json").read_text())  # valid JSON
    import yaml

    evidently = yaml.safe_load((source / "monitoring" / "evidently.yaml").read_text())
    assert evidently["service"]["reference_path"] == "./reference_set.parquet"
    assert evidently["service"]["monitors"] == ["cat_target_drift", "data_drift"]
    assert evidently["prediction"][0].startswith("C") and evidently["features"][0] == "F0"
    logged = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="export/bento/ktt_service.json",
                                                 tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    assert json.loads(Path(logged).read_text()) == settings
    # the deployment stack (inference, monitoring, Prometheus, Grafana) is logged beside it
    stack = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="export/bento/stack",
                                                     tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}"))
    compose = yaml.safe_load((stack / "docker-compose.yml").read_text())
    assert compose["services"]["inference"]["image"] == tag
    assert {"monitoring", "prometheus", "grafana"} <= set(compose["services"])
    assert "with monitoring; deployment stack" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["export=onnx"], "give one run_id=<MLflow run id>"),
    (["run_id=0123456789abcdef", "export=onnx"], "no MLflow run '0123456789abcdef'"),
    (["run_id=latest", "dataset=file", "dataset.path=nowhere/other.csv", "export=onnx"],
     "no MLflow experiment 'other'"),
    (["run_id=latest", "export=none"], "nothing to export: add export=onnx or export=bento"),
    (["run_id=latest", "export=onnx", "export.tolerance=0"], "invalid export.tolerance=0"),
    (["run_id=latest", "export=zip"], "unknown export 'zip' (available: bento, none, onnx)"),
])
def test_export_errors_are_one_line(past_run, args, message):
    cwd, _ = past_run
    result = run_export(*args, cwd=cwd, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ktt: error: ") and message in lines[0], result.stderr


class Unserved(TfidfLSGD):
    """A model whose module (this file) has no ``bentoml/`` folder beside it."""


def fitted(model_class):
    """``model_class`` fitted on four texts of a two-leaf hierarchy."""
    import numpy as np

    from ktt.data.loaders import Loader
    from ktt.hierarchy import Hierarchy

    hierarchy, _ = Hierarchy.from_paths([("A", "A1"), ("A", "A2")] * 2)
    model = model_class(min_df=1, n_jobs=1)
    return model.fit(Loader(["cholera vibrio", "typhoid fever"] * 2, np.array(["A1", "A2"] * 2, dtype=object)),
                     hierarchy=hierarchy)


def test_a_model_folder_without_bentoml_files_gets_the_shared_service(tmp_path):
    from ktt.export.bento import write_build_context

    context = write_build_context(fitted(Unserved), tmp_path / "bento")
    service = (context / "service.py").read_text()
    compile(service, "service.py", "exec")
    assert re.search(r"^class Unserved:$", service, re.MULTILINE)  # the bentofile's service:Unserved
    assert re.search(r"^class UnservedClassifier:$", service, re.MULTILINE)
    assert '@bentoml.service(name="tests", ' in service  # the model folder's name
    assert json.loads((context / "monitoring" / "dashboard.json").read_text())["title"] == "ktt tests: drift and requests"
    requirements = (context / "requirements.txt").read_text().split()
    assert any(r.startswith("scikit-learn==") for r in requirements)


def test_a_model_folder_overrides_a_shared_service_file(tmp_path, monkeypatch):
    import importlib

    from ktt.export.bento import write_build_context

    package = tmp_path / "code" / "overriding"
    (package / "bentoml").mkdir(parents=True)
    (package / "__init__.py").write_text("from ktt_models.tfidf_lsgd import TfidfLSGD\n\n\n"
                                         "class Overriding(TfidfLSGD):\n    pass\n")
    (package / "bentoml" / "requirements.txt").write_text("numpy>=1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    module = importlib.import_module("overriding")
    context = write_build_context(fitted(module.Overriding), tmp_path / "bento")
    assert (context / "requirements.txt").read_text() == "numpy>=1\n"  # the model's own, kept as written
    assert "class Overriding:" in (context / "service.py").read_text()  # the others still shared
