"""BentoML export: a self-contained bento built from a run's checkpoint.

:func:`write_build_context` writes a folder that holds everything the service
needs, :func:`build` turns it into a bento with ``bentoml build`` (in a
subprocess, with ``BENTOML_HOME`` set as configured). The bento's files::

    service.py           models/<name>/bentoml/service.py, the model's thin service file
    ktt_service.json     ServiceSettings: checkpoint + sha256, batching, limits, monitoring
    model/               model.joblib (the run's checkpoint), its .sha256, hierarchy.json
    ktt/, models/        the project's code, as exported (so the service imports ktt's own
                         preprocessing and model classes, not copies)
    requirements.txt     models/<name>/bentoml/requirements.txt pinned to the installed versions
    monitoring/          dashboard.json and, with a reference set, evidently.yaml and
                         reference_set.parquet

Serve it with ``bentoml serve <tag>`` (same ``BENTOML_HOME``); the HTTP contract is
described in :mod:`ktt.serving.runtime`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ktt.errors import KttError
from ktt.serving.settings import ServiceSettings

SERVICE_FILE = "service.py"
TEMPLATE_DIR = "bentoml"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".tmp-*")
#: Export config keys copied into the service settings.
SETTING_KEYS = ("max_batch_size", "max_latency_ms", "max_body_bytes", "timeout_s", "api_workers", "model_workers",
                "evidently_host", "evidently_port", "monitoring_queue_size", "monitoring_timeout_s")


def model_dir(model) -> Path:
    """The model module's folder (``models/<name>/``)."""
    module = sys.modules[type(model).__module__]
    return Path(module.__file__).resolve().parent


def bento_name(model, dataset: str) -> str:
    """A valid BentoML name ``<model module>_<dataset>``, e.g. ``tfidf_lsgd_icd10cm``."""
    name = f"{model_dir(model).name}_{dataset}".lower()
    name = re.sub(r"[^a-z0-9._-]+", "_", name)[:63]
    return name.strip("._-") or "ktt"


def write_build_context(model, folder: str | Path, reference_set_path: str | Path | None = None,
                        checkpoint: str | Path | None = None, checkpoint_sha256: str | None = None,
                        info: dict | None = None) -> Path:
    """Write the bento's files (see the module docstring) into ``folder``.

    Parameters
    ----------
    model : ktt.model_sklearn.SklearnModel
        The fitted model; its module needs a ``bentoml/service.py``.
    folder : path-like
        The build context to create.
    reference_set_path : path-like, optional
        The run's reference set; with it, monitoring is packed and enabled.
    checkpoint : path-like, optional
        The run's checkpoint file, packed as is; default: the model is saved anew.
    checkpoint_sha256 : str, optional
        The checkpoint's recorded digest, checked before packing.
    info : dict, optional
        Provenance (run id, dataset...) stored in the settings.

    Returns
    -------
    Path
        ``folder``.

    Raises
    ------
    KttError
        If the model has no service, or the checkpoint does not match its digest.
    """
    from ktt.model import file_sha256

    folder = Path(folder)
    template = model_dir(model) / TEMPLATE_DIR
    service = template / SERVICE_FILE
    if not service.is_file():
        raise KttError(f"BentoML export is not supported for {type(model).__name__} "
                       f"(no {model_dir(model).name}/{TEMPLATE_DIR}/{SERVICE_FILE})")
    class_name = type(model).__name__
    if not re.search(rf"^class {re.escape(class_name)}\b", service.read_text(encoding="utf-8"), re.MULTILINE):
        raise KttError(f"{service} defines no service class {class_name} (the exporter builds service:{class_name})")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(service, folder / SERVICE_FILE)

    weights = folder / "model"
    weights.mkdir(exist_ok=True)
    target = weights / "model.joblib"
    if checkpoint is None:
        digest = model.save(target)
    else:
        shutil.copyfile(checkpoint, target)
        digest = file_sha256(target)
        if checkpoint_sha256 is not None and digest != checkpoint_sha256:
            raise KttError(f"checkpoint {checkpoint} does not match its recorded sha256; refusing to pack it")
        target.with_name(target.name + ".sha256").write_text(f"{digest}  {target.name}\n")
    model.hierarchy.to_json(weights / "hierarchy.json")

    copy_code(folder)
    (folder / "requirements.txt").write_text("\n".join(pinned_requirements(template / "requirements.txt")) + "\n")

    monitoring = folder / "monitoring"
    monitoring.mkdir(exist_ok=True)
    if (template / "dashboard.json").is_file():
        shutil.copy2(template / "dashboard.json", monitoring / "dashboard.json")
    if reference_set_path is not None:
        shutil.copyfile(reference_set_path, monitoring / "reference_set.parquet")
        write_evidently_config(template / "evidently.yaml", monitoring / "reference_set.parquet",
                               monitoring / "evidently.yaml")

    ServiceSettings(
        name=class_name, checkpoint="model/model.joblib", checkpoint_sha256=digest,
        monitoring=reference_set_path is not None,
        info={"model": f"{type(model).__module__}.{class_name}", **(info or {})},
    ).save(folder)
    return folder


def copy_code(folder: Path) -> None:
    """Copy the ``ktt`` and ``models`` packages (as imported now) into ``folder``."""
    import ktt
    import models

    for package in (ktt, models):
        source = Path(package.__file__).resolve().parent
        destination = folder / source.name
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(source, destination, ignore=IGNORED)


def pinned_requirements(path: Path) -> list[str]:
    """The lines of a requirements file, each bare name pinned to its installed version.

    Lines that already carry a version specifier or a URL are kept as they are.
    ``bentoml`` is left out: the build adds its own pinned requirement.

    Raises
    ------
    KttError
        If a listed package is not installed.
    """
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    pinned = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = re.split(r"[\[<>=!~;@ ]", line, maxsplit=1)[0]
        if name.lower() == "bentoml":
            continue
        if re.sub(r"^\[[^\]]*\]", "", line[len(name):]).strip():  # a specifier, marker or URL
            pinned.append(line)
            continue
        try:
            pinned.append(f"{line}=={version(name)}")
        except PackageNotFoundError:
            raise KttError(f"{path} lists {name}, which is not installed; cannot pin its version") from None
    return pinned


def write_evidently_config(template: Path, reference_set: Path, destination: Path) -> None:
    """The model's ``evidently.yaml`` with the reference set's path and column names filled in.

    ``prediction`` lists the score columns (``C<class>``) and ``features`` the pooled
    feature columns (``F<i>``) of the reference set, in the order of the monitoring
    rows ``[target placeholder, features..., scores...]``.
    """
    import pyarrow.parquet as pq
    import yaml

    config = yaml.safe_load(template.read_text(encoding="utf-8")) if template.is_file() else None
    config = config or {"service": {}}
    columns = pq.read_schema(reference_set).names
    config.setdefault("service", {})["reference_path"] = f"./{reference_set.name}"
    config["target"] = columns[0]
    config["features"] = [c for c in columns if c.startswith("F")]
    config["prediction"] = [c for c in columns if c.startswith("C")]
    destination.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def resolve_bentoml_home(configured: str | None) -> str | None:
    """The BentoML store to use: the configured folder, else ``$BENTOML_HOME``, else None (BentoML's default)."""
    if configured:
        return str(Path(configured).expanduser().resolve())
    return os.environ.get("BENTOML_HOME") or None


def build(folder: str | Path, name: str, settings: dict | None = None, bentoml_home: str | None = None,
          labels: dict | None = None, timeout_s: float = 900) -> str:
    """Build a bento from a build context with ``bentoml build``.

    Parameters
    ----------
    folder : path-like
        A folder written by :func:`write_build_context`.
    name : str
        The bento's name.
    settings : dict, optional
        Export config values merged into ``ktt_service.json`` (see :data:`SETTING_KEYS`;
        ``monitoring: false`` turns the hook off).
    bentoml_home : str, optional
        BentoML's store; default: ``$BENTOML_HOME`` or BentoML's default.
    labels : dict, optional
        Bento labels (e.g. the run id).
    timeout_s : float
        Upper bound on the build.

    Returns
    -------
    str
        The bento tag, ``name:version``.

    Raises
    ------
    KttError
        If a setting is invalid or the build fails.
    """
    import yaml

    folder = Path(folder)
    current = ServiceSettings.load(folder, environ={}, code=False)
    settings = dict(settings or {})
    for key in SETTING_KEYS:
        if settings.get(key) is not None:
            setattr(current, key, settings[key])
    current.monitoring = current.monitoring and bool(settings.get("monitoring", True))
    current.name = name
    ServiceSettings(**{k: v for k, v in vars(current).items() if k != "folder"}).save(folder)  # validates

    class_name = current.info["model"].rsplit(".", 1)[-1]
    bentofile = {
        "service": f"service:{class_name}",
        "name": name,
        "description": f"ktt {class_name} ({current.info.get('dataset', '')}); POST /predict "
                       '{"text": "..."} or {"texts": [...]}',
        "labels": {key: str(value) for key, value in (labels or {}).items()},
        "exclude": ["__pycache__", "*.pyc", "bentofile.yaml"],
        "python": {"requirements_txt": "requirements.txt", "lock_packages": False},
    }
    (folder / "bentofile.yaml").write_text(yaml.safe_dump(bentofile, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True"}
    if bentoml_home:
        env["BENTOML_HOME"] = bentoml_home
    command = [sys.executable, "-m", "bentoml", "build", str(folder), "-f", str(folder / "bentofile.yaml"),
               "--output", "tag"]
    try:
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise KttError(f"bentoml build of {name} took over {timeout_s:.0f} s; stopped") from None
    match = re.search(r"__tag__:(\S+)", result.stdout)
    if result.returncode != 0 or not match:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise KttError(f"bentoml build of {name} failed: {lines[-1].strip() if lines else f'exit {result.returncode}'}")
    return match.group(1)


def export_archive(tag: str, path: str | Path, bentoml_home: str | None = None) -> Path:
    """Write a bento as a ``.bento`` archive (``bentoml export``) for ``bentoml import`` elsewhere."""
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True"}
    if bentoml_home:
        env["BENTOML_HOME"] = bentoml_home
    result = subprocess.run([sys.executable, "-m", "bentoml", "export", tag, str(path)], env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise KttError(f"bentoml export of {tag} failed: {lines[-1].strip() if lines else result.returncode}")
    return Path(path)
