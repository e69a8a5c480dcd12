"""The documentation: the author's guide rebuilt and run end to end, and the Sphinx build.

``docs/adding-a-model.md`` is executable. Each ``{code-block}`` captioned with a
path (``:caption: `models/testmodel/testmodel.py```) is a file of the guide's
model; a caption ending in " (continued)" appends to that file. Blocks with the
class ``ktt-run`` are shell commands, run in order in the project root; blocks
with ``ktt-run-sweep`` run in a second copy, at the same time. The project is a
temporary copy of this checkout (``src/``, ``conf/``, ``models/``, symlinks kept)
with the guide's files added; ``PYTHONPATH=<copy>/src`` makes the copy shadow the
editable install, which is what a model author's checkout amounts to.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, mlflow_client, mlflow_runs

DOCS = ROOT / "docs"
GUIDE = DOCS / "adding-a-model.md"
VENV_BIN = Path(sys.executable).parent
MODEL_TARGET = "ktt_models.testmodel.TestModel"
#: ``{code-block} lang``, its ``:option: value`` lines, an optional blank line, the body, the closing fence.
BLOCK = re.compile(r"^```\{code-block\}[ \t]*(?P<lang>\S*)[ \t]*\n(?P<options>(?::[\w-]+:[^\n]*\n)*)\n?(?P<body>.*?)^```[ \t]*$",
                   re.MULTILINE | re.DOTALL)
CONTINUED = " (continued)"
#: Public modules the API reference must document (packages are walked for their submodules).
API_MODULES = ("ktt.model", "ktt.model_sklearn", "ktt.hierarchy", "ktt.metrics", "ktt.preprocess", "ktt.tracking",
               "ktt.files", "ktt.pooling",
               "ktt.predict", "ktt.features", "ktt.linear", "ktt.tfidf", "ktt.hierarchical",
               "ktt_models.tfidf_lsgd", "ktt_models.tfidf_hsgd")
API_PACKAGES = ("ktt.data", "ktt.export", "ktt.serving", "ktt.monitoring", "ktt.tracking")


# ------------------------------------------------------------------ the guide's blocks
def guide_blocks() -> list[tuple[dict[str, str], str]]:
    """``(options, body)`` of every ``{code-block}`` in the guide, in order."""
    blocks = []
    for match in BLOCK.finditer(GUIDE.read_text(encoding="utf-8")):
        options = dict(re.findall(r"^:([\w-]+):[ \t]*(.*)$", match["options"], re.MULTILINE))
        blocks.append((options, match["body"]))
    return blocks


def guide_files() -> dict[str, str]:
    """Path -> content of the files the guide writes (continued blocks appended, PEP 8 spacing)."""
    files: dict[str, str] = {}
    for options, body in guide_blocks():
        caption = options.get("caption")
        if not caption:
            continue
        path = caption.removesuffix(CONTINUED).strip("`")
        if caption.endswith(CONTINUED):
            assert path in files, f"{caption!r} continues a file that no earlier block starts"
            body = body.lstrip("\n")
            separator = "\n\n" if body[:1].isspace() else "\n\n\n"  # a method, or top-level code
            files[path] = files[path].rstrip("\n") + separator + body
        else:
            assert path not in files, f"{path} is started twice; caption the later block '`{path}`{CONTINUED}'"
            files[path] = body
    return files


def guide_scripts(kind: str) -> list[str]:
    """The bodies of the guide's blocks with the class ``kind``."""
    return [body for options, body in guide_blocks() if kind in options.get("class", "").split()]


def test_the_guide_writes_the_model_the_files_it_lists():
    files = guide_files()
    # adding a model is two files (its class, its config), plus an optional search space
    assert set(files) == {"models/testmodel/__init__.py", "conf/model/testmodel.yaml",
                          "conf/hparams_search/testmodel.yaml"}
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")
        elif path.endswith(".yaml"):
            yaml.safe_load(text)
    # Hydra reads `# @package` only in the leading comment lines
    assert files["conf/model/testmodel.yaml"].startswith("# @package _global_\n")
    assert files["conf/hparams_search/testmodel.yaml"].startswith("# @package _global_\n")
    assert f"_target_: {MODEL_TARGET}" in files["conf/model/testmodel.yaml"]
    assert re.search(r"^class TestModel\b", files["models/testmodel/__init__.py"], re.MULTILINE)
    assert guide_scripts("ktt-run") and guide_scripts("ktt-run-sweep")


def test_the_api_reference_has_a_page_per_public_module():
    import pkgutil

    modules = set(API_MODULES)
    for package in API_PACKAGES:
        path = importlib.util.find_spec(package).submodule_search_locations
        modules.update(f"{package}.{info.name}" for info in pkgutil.iter_modules(path)
                       if not info.name.startswith("_"))
    index = (DOCS / "api" / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   ([\w.]+)$", index, re.MULTILINE))
    missing = sorted(m for m in modules if not (DOCS / "api" / f"{m}.rst").is_file() or m not in listed)
    assert not missing, f"add docs/api/<module>.rst and list it in docs/api/index.rst for: {', '.join(missing)}"


# ------------------------------------------------------------------ the guide, end to end
def copy_checkout(destination: Path) -> Path:
    """``src/``, ``conf/`` and ``models/`` of this checkout, symlinks (src/ktt/conf, src/ktt_models) kept."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")
    for name in ("src", "conf", "models"):
        shutil.copytree(ROOT / name, destination / name, symlinks=True, ignore=ignore)
    shutil.rmtree(destination / "models" / "testmodel", ignore_errors=True)
    for stale in ("conf/model/testmodel.yaml", "conf/hparams_search/testmodel.yaml"):
        (destination / stale).unlink(missing_ok=True)
    return destination


def project_env(project: Path) -> dict[str, str]:
    """The environment a model author's shell has: the venv's python first, the project's code on the path."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MLFLOW_", "BENTOML_", "PYTHON", "KTT_OPTUNA", "EVIDENTLY_"))}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(project / "src"),
        "BENTOML_HOME": str(project / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
    })
    return env


def start_script(scripts: list[str], project: Path, log: Path) -> subprocess.Popen:
    """Run the scripts one after the other with bash (stop at the first failure), output to ``log``."""
    script = "set -euo pipefail\n" + "\n".join(scripts)
    with open(log, "w") as out:
        return subprocess.Popen(["bash", "-c", script], cwd=project, env=project_env(project), stdout=out,
                                stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def guide_project(tmp_path_factory, icd_sample):
    """The guide's model added to a copy of the checkout, its ``ktt-run`` and ``ktt-run-sweep`` blocks run."""
    project = copy_checkout(tmp_path_factory.mktemp("guide_project"))
    for path, text in guide_files().items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text, encoding="utf-8")
    shutil.copyfile(icd_sample, project / "sample.csv")
    sweeps = tmp_path_factory.mktemp("guide_sweeps")
    shutil.rmtree(sweeps)
    shutil.copytree(project, sweeps, symlinks=True)

    logs = tmp_path_factory.mktemp("guide_logs")
    jobs = {"ktt-run": start_script(guide_scripts("ktt-run"), project, logs / "run.log"),
            "ktt-run-sweep": start_script(guide_scripts("ktt-run-sweep"), sweeps, logs / "sweep.log")}
    try:
        codes = {kind: job.wait(timeout=600) for kind, job in jobs.items()}
    finally:
        for job in jobs.values():
            if job.poll() is None:
                job.kill()
                job.wait()
    for kind, code in codes.items():
        log = (logs / ("run.log" if kind == "ktt-run" else "sweep.log")).read_text(errors="replace")
        assert code == 0, f"the guide's {kind} blocks failed ({code}):\n{log[-6000:]}"
    return {"project": project, "sweeps": sweeps}


def the_run(project: Path):
    """The guide's training run (the only run of the project's store)."""
    (run,) = mlflow_runs(project)
    return run


def test_the_guide_model_is_registered_by_its_config_alone(guide_project):
    project = guide_project["project"]
    assert sorted(p.name for p in (project / "models" / "testmodel").iterdir() if p.name != "__pycache__") == [
        "__init__.py"]  # no service or monitoring files: the bento below is built from the shared ones
    run = the_run(project)
    assert run.info.status == "FINISHED", run.data.tags.get("ktt.error")
    assert run.data.params["model._target_"] == MODEL_TARGET
    assert run.data.params["loss"] == "modified_huber" and run.data.params["min_df"] == "2"
    assert run.data.metrics["test_leaf_accuracy"] > 0.5
    assert run.data.metrics["test_path_consistency"] == 1.0


def test_the_copy_shadows_the_install_and_the_checkpoint_is_a_testmodel(guide_project):
    project = guide_project["project"]
    run = the_run(project)
    script = f"""
import json, ktt
from ktt.preprocess import preprocess
from ktt.tracking import load_model
model = load_model({run.info.run_id!r}, tracking_uri={f"sqlite:///{project / 'mlflow.db'}"!r})
paths, scores = model.predict_path(preprocess(["Cholera due to Vibrio cholerae"]))
module = __import__(type(model).__module__, fromlist=["_"])
print(json.dumps({{"ktt": ktt.__file__, "class": type(model).__name__, "module": module.__file__,
                  "path": [model.hierarchy.classes[i] for i in paths[0]], "params": model.get_params(deep=False)
                  | {{"hierarchy": None}}}}))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=project, env=project_env(project),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["ktt"].startswith(str(project / "src"))
    assert answer["module"].startswith(str(project)) and answer["class"] == "TestModel"
    assert answer["path"][-1] == "Cholera" and len(answer["path"]) == 3
    assert answer["params"] == {"loss": "modified_huber", "max_iter": 1000, "min_df": 2, "random_state": 42,
                                "hierarchy": None}


def test_the_guide_exports_an_onnx_graph_equal_to_the_model(guide_project):
    project = guide_project["project"]
    run = the_run(project)
    run_id = run.info.run_id
    assert run.data.tags["ktt.export.onnx"] == f"runs:/{run_id}/export/onnx/model.onnx"
    assert run.data.metrics["onnx_label_agreement"] == 1.0
    assert run.data.metrics["onnx_max_score_diff"] <= 1e-5
    artifacts = {a.path for a in mlflow_client(project).list_artifacts(run_id, "export/onnx")}
    assert artifacts == {"export/onnx/model.onnx", "export/onnx/hierarchy.json", "export/onnx/export.json"}


def test_the_guide_bento_answers_in_a_clean_process(guide_project, tmp_path):
    project = guide_project["project"]
    run = the_run(project)
    tag = run.data.tags["ktt.bento_tag"]
    assert tag.startswith("testmodel_sample:")
    script = f"""
import json, bentoml
from starlette.testclient import TestClient
service = bentoml.load({tag!r})
import ktt, ktt_models
with TestClient(service.to_asgi()) as client:
    one = client.post("/predict", json={{"text": "Cholera due to Vibrio cholerae"}})
    many = client.post("/predict", json={{"texts": ["Typhoid fever", "Anemia in pregnancy"]}})
    bad = client.post("/predict", json={{"text": ""}})
print(json.dumps({{"ktt": ktt.__file__, "models": ktt_models.__file__, "one": [one.status_code, one.json()],
                  "many": [many.status_code, many.json()], "bad": bad.status_code}}))
"""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BENTOML", "PYTHON", "MLFLOW"))}
    env.update({"BENTOML_HOME": str(project / "bentoml"), "BENTOML_DO_NOT_TRACK": "True", "KTT_MONITORING": "0"})
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    home = str((project / "bentoml").resolve())
    assert answer["ktt"].startswith(home) and answer["models"].startswith(home)  # the bento's own code
    status, body = answer["one"]
    assert status == 200 and body["path"][-1] == "Cholera" and len(body["scores"]) == 3
    status, body = answer["many"]
    assert status == 200 and [len(p["path"]) for p in body["predictions"]] == [3, 3]
    assert answer["bad"] == 400


def test_the_guide_bento_carries_its_monitoring_files(guide_project):
    from ktt.monitoring.config import load_config
    from ktt.monitoring.reference import load_reference

    project = guide_project["project"]
    run = the_run(project)
    name, version = run.data.tags["ktt.bento_tag"].split(":")
    source = project / "bentoml" / "bentos" / name / version / "src"
    settings = json.loads((source / "ktt_service.json").read_text())
    assert settings["monitoring"] and settings["info"]["model"] == MODEL_TARGET
    assert settings["checkpoint_sha256"] == run.data.tags["ktt.checkpoint_sha256"]
    dashboard = json.loads((source / "monitoring" / "dashboard.json").read_text())
    assert "testmodel" in dashboard["title"]
    config = load_config(source / "monitoring" / "evidently.yaml")  # as python -m ktt.monitoring reads it
    reference = load_reference(config)
    assert len(reference) == int(run.data.params["data.test_size"])
    assert config.features and all(column.startswith("F") for column in config.features)
    logged = {a.path for a in mlflow_client(project).list_artifacts(run.info.run_id, "export/bento")}
    assert "export/bento/stack" in logged  # the docker-compose stack around the bento (Step 7)


def test_the_guide_sweeps_a_grid_and_an_optuna_search(guide_project):
    sweeps = guide_project["sweeps"]
    runs = mlflow_runs(sweeps)
    jobs = [r for r in runs if r.data.tags.get("ktt.sweep.role") == "job"]
    parents = [r for r in runs if r.data.tags.get("ktt.sweep.role") == "parent"]
    assert len(parents) == 2 and len(jobs) == 4
    assert all(r.info.status == "FINISHED" for r in runs), [(r.info.status, r.data.tags.get("ktt.error")) for r in runs]
    assert all(r.data.params["model._target_"] == MODEL_TARGET for r in jobs)
    grid, search = sorted(parents, key=lambda r: r.info.start_time)
    grid_jobs = [r for r in jobs if r.data.tags["ktt.sweep"] == grid.info.run_id]
    assert sorted(r.data.params["loss"] for r in grid_jobs) == ["hinge", "modified_huber"]
    trials = [r for r in jobs if r.data.tags["ktt.sweep"] == search.info.run_id]
    assert len(trials) == 2
    assert all(r.data.params["evaluate_test"] == "False" and "test_leaf_accuracy" not in r.data.metrics
               for r in trials)  # tuning never reads the test split
    assert list((sweeps / "multirun").glob("*/*/experiment/best_testmodel-sample.yaml"))


# ------------------------------------------------------------------ the Sphinx build
def test_the_docs_build_offline_without_warnings(tmp_path):
    missing = [name for name in ("sphinx", "numpydoc", "myst_parser") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the docs tools are not installed ({', '.join(missing)}); "
                    "install the dev extra: bash scripts/setup.sh --dev")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-d", str(tmp_path / "doctrees"),
         str(DOCS), str(tmp_path / "html")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "WARNING" not in output and "ERROR" not in output, output[-6000:]
    for page in ("index", "architecture", "adding-a-model", "benchmarks", "api/index", "api/ktt.model_sklearn"):
        assert (tmp_path / "html" / f"{page}.html").is_file(), page
    html = (tmp_path / "html" / "api" / "ktt.model_sklearn.html").read_text(encoding="utf-8")
    assert "score_features" in html and "onnx_pipeline" in html  # autodoc rendered the members
