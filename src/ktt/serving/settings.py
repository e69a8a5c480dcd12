"""The settings of a built service: ``ktt_service.json`` beside its service file.

The exporter (:mod:`ktt.export.bento`) writes the file from the ``export`` config;
a few values can be changed when the service starts, through environment
variables (see :data:`ENV_OVERRIDES`), without rebuilding the bento.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ktt.errors import KttError

SETTINGS_FILE = "ktt_service.json"

#: Environment variable -> setting it overrides when the service starts.
ENV_OVERRIDES = {
    "KTT_MAX_BATCH_SIZE": "max_batch_size",
    "KTT_MAX_LATENCY_MS": "max_latency_ms",
    "KTT_MAX_BODY_BYTES": "max_body_bytes",
    "KTT_MONITORING": "monitoring",
    "EVIDENTLY_HOST": "evidently_host",
    "EVIDENTLY_PORT": "evidently_port",
}


@dataclass
class ServiceSettings:
    """What a ktt service needs to know about its model and its limits.

    Parameters
    ----------
    name : str
        The bento's name (``<model>_<dataset>``).
    checkpoint : str
        The joblib checkpoint, relative to the settings file's folder.
    checkpoint_sha256 : str
        Its expected sha256; the service refuses to load anything else.
    max_batch_size : int
        Largest adaptive batch of the model service.
    max_latency_ms : int
        BentoML's latency budget of a batched call; requests that cannot be served
        within it are refused with 503, so keep it well above normal latencies.
    max_body_bytes : int
        Largest request body; larger ones get 413.
    timeout_s : float
        BentoML's request timeout.
    api_workers, model_workers : int
        Processes of the HTTP (preprocessing) service and of the model service.
    monitoring : bool
        Send pooled features and scores to the monitoring service (needs a reference set).
    evidently_host, evidently_port : str, int
        Where the monitoring service listens (``POST /iterate``).
    monitoring_queue_size : int
        Batches waiting to be sent; when full, new batches are dropped (and counted).
    monitoring_timeout_s : float
        Connect and read timeout of one monitoring request.
    info : dict
        Provenance: run id, model class, dataset, ktt version.
    folder : Path
        Where the settings file is (not saved).
    """

    name: str
    checkpoint: str
    checkpoint_sha256: str
    max_batch_size: int = 64
    max_latency_ms: int = 10_000
    max_body_bytes: int = 1_048_576
    timeout_s: float = 60.0
    api_workers: int = 1
    model_workers: int = 1
    monitoring: bool = False
    evidently_host: str = "localhost"
    evidently_port: int = 5001
    monitoring_queue_size: int = 64
    monitoring_timeout_s: float = 2.0
    info: dict = field(default_factory=dict)
    folder: Path = field(default=Path("."), repr=False)

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_latency_ms", "max_body_bytes", "api_workers", "model_workers",
                     "evidently_port", "monitoring_queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KttError(f"service setting {name}={value!r} must be a positive integer")
        if self.max_batch_size < 2:
            raise KttError(f"service setting max_batch_size={self.max_batch_size} must be at least 2 "
                           "(BentoML's minimum)")
        for name in ("timeout_s", "monitoring_timeout_s"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) <= 0:
                raise KttError(f"service setting {name}={getattr(self, name)!r} must be a positive number")

    # ------------------------------------------------------------------ file
    @classmethod
    def load(cls, where: str | Path, environ: dict | None = None, code: bool = True) -> "ServiceSettings":
        """Read the settings beside ``where`` (a service file or its folder), then apply env overrides.

        With ``code`` (the default), when the folder carries the project's code (a
        bento's ``ktt/`` and ``models/``), the model's module is imported from there
        now: BentoML puts the bento's folder on ``sys.path`` only while it imports the
        service, and the code that unpickling the checkpoint needs later must be the
        bento's own, not whatever else is installed.

        Parameters
        ----------
        where : path-like
            The service file (``__file__``) or the folder holding ``ktt_service.json``.
        environ : mapping, optional
            Defaults to ``os.environ``.
        code : bool
            Import the model's code from the folder (see above).

        Raises
        ------
        KttError
            If the file is missing or a value is invalid.
        """
        folder = Path(where)
        folder = folder if folder.is_dir() else folder.parent
        path = folder / SETTINGS_FILE
        if not path.is_file():
            raise KttError(f"no {SETTINGS_FILE} beside {folder}; build the service with `python -m ktt.export`")
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)} - {"folder"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise KttError(f"{path} has unknown settings {', '.join(unknown)}")
        data.update(env_overrides(environ if environ is not None else os.environ))
        settings = cls(**data, folder=folder)
        if code and (folder / "models").is_dir() and settings.info.get("model"):
            import_model_code(folder, settings.info["model"])
        return settings

    def save(self, folder: str | Path) -> Path:
        """Write ``ktt_service.json`` into ``folder``."""
        data = asdict(self)
        data.pop("folder")
        path = Path(folder) / SETTINGS_FILE
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    # --------------------------------------------------------------- derived
    @property
    def checkpoint_path(self) -> Path:
        return self.folder / self.checkpoint

    @property
    def monitoring_url(self) -> str:
        """``http://<host>:<port>/iterate``."""
        return f"http://{self.evidently_host}:{self.evidently_port}/iterate"

    def batching(self) -> dict:
        """Keyword arguments of the batched ``@bentoml.api``."""
        return {"batchable": True, "max_batch_size": self.max_batch_size, "max_latency_ms": self.max_latency_ms}

    def service_config(self, role: str) -> dict:
        """Keyword arguments of ``@bentoml.service`` for the ``"api"`` or the ``"model"`` service.

        The model service is internal: it writes no access log (the HTTP service
        does), and its callers keep their connections to it for up to a million
        requests or an hour, instead of BentoML's 100 requests or 5 minutes, whose
        session renewal breaks calls in flight (bentoml/BentoML#5540).
        """
        if role == "api":
            return {"workers": self.api_workers, "traffic": {"timeout": self.timeout_s}}
        return {"workers": self.model_workers, "traffic": {"timeout": self.timeout_s},
                "runner_connection": {"max_requests": 1_000_000, "max_age": 3600.0},
                "logging": {"access": {"enabled": False}}}


def import_model_code(folder: Path, model: str) -> None:
    """Import the module of ``model`` (``package.module.Class``) with ``folder`` first on ``sys.path``.

    Once imported, the module (and its top-level package, e.g. ``models``) stays
    the one every later import and unpickling gets.
    """
    import importlib

    module = model.rsplit(".", 1)[0]
    path = str(Path(folder).resolve())
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise KttError(f"cannot import the model code {module} from {folder}: {error}") from None
    finally:
        if added:
            sys.path.remove(path)


def env_overrides(environ) -> dict:
    """Settings given by environment variables (see :data:`ENV_OVERRIDES`), converted to their types."""
    types = {f.name: f.type for f in fields(ServiceSettings)}
    values = {}
    for variable, name in ENV_OVERRIDES.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        kind = types[name]
        try:
            if kind == "bool":
                if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(raw)
                values[name] = raw.strip().lower() in ("1", "true", "yes")
            elif kind == "int":
                values[name] = int(raw)
            else:
                values[name] = raw
        except ValueError:
            raise KttError(f"environment variable {variable}={raw!r} is not a valid {kind}") from None
    return values
