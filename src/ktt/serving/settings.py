"""The settings of a built service: ``ktt_service.json`` beside its service file.

The exporter (:mod:`ktt.export.bento`) writes the file from the ``export`` config;
a few values can be changed when the service starts, through environment
variables (see :data:`ENV_OVERRIDES`), without rebuilding the bento.

:data:`OPTIONS` declares every tunable setting once: its default, its allowed
values and its environment variable. :class:`ServiceSettings`' attributes and
checks, :data:`ENV_OVERRIDES` and the ``export`` config keys that set them
(:data:`ktt.export.run.EXPORT_CONSTRAINTS`) all derive from it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktt.errors import KttError
from ktt.params import Interval, validate_params

SETTINGS_FILE = "ktt_service.json"


@dataclass(frozen=True)
class Option:
    """One tunable setting of a service.

    Parameters
    ----------
    default : bool, int, float or str
        Its value when the export config does not set it; its type is the setting's type.
    allowed : list
        Allowed forms, as in :func:`ktt.params.validate_params`.
    doc : str
        What it does.
    env : str, optional
        The environment variable that overrides it when the service starts.
    """

    default: Any
    allowed: list
    doc: str
    env: str | None = None


#: Every tunable setting of a service (also a key of the ``export`` config, ``conf/export/bento.yaml``).
OPTIONS = {
    "adaptive_batching": Option(False, [bool], "A model service of its own behind BentoML's adaptive batching "
                                               "(true), or the model inside the HTTP service (false: no "
                                               "inter-process call per request; the requests waiting together "
                                               "are scored in one call).", "KTT_ADAPTIVE_BATCHING"),
    "max_batch_size": Option(64, [Interval(int, 2, None)],
                             "Largest batch of texts scored in one call: BentoML's adaptive batch of the model "
                             "service (its minimum is 2), or the HTTP service's own batch without one.",
                             "KTT_MAX_BATCH_SIZE"),
    "max_latency_ms": Option(10_000, [Interval(int, 1, None)],
                             "BentoML's latency budget of a batched call; requests that cannot be served "
                             "within it are refused with 503, so keep it well above normal latencies.",
                             "KTT_MAX_LATENCY_MS"),
    "max_body_bytes": Option(1_048_576, [Interval(int, 1, None)], "Largest request body; larger ones get 413.",
                             "KTT_MAX_BODY_BYTES"),
    "timeout_s": Option(60.0, [Interval(float, 0, None, closed="neither")], "BentoML's request timeout."),
    "api_workers": Option(1, [Interval(int, 1, None)], "Processes of the HTTP (preprocessing) service."),
    "model_workers": Option(1, [Interval(int, 1, None)], "Processes of the model service."),
    "monitoring": Option(False, [bool], "Send pooled features and scores to the monitoring service "
                                        "(needs a reference set).", "KTT_MONITORING"),
    "evidently_host": Option("localhost", [str], "Where the monitoring service listens.", "EVIDENTLY_HOST"),
    "evidently_port": Option(5001, [Interval(int, 1, 65535)], "The monitoring service's port.", "EVIDENTLY_PORT"),
    "monitoring_queue_size": Option(64, [Interval(int, 1, None)], "Batches waiting to be sent; when full, new "
                                                                 "batches are dropped (and counted)."),
    "monitoring_timeout_s": Option(2.0, [Interval(float, 0, None, closed="neither")],
                                   "Connect and read timeout of one monitoring request."),
}

#: Environment variable -> setting it overrides when the service starts.
ENV_OVERRIDES = {option.env: name for name, option in OPTIONS.items() if option.env}

#: The keys of ``ktt_service.json`` besides :data:`OPTIONS`.
IDENTITY = ("name", "checkpoint", "checkpoint_sha256", "info")


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
    info : dict, optional
        Provenance: run id, model class, dataset, ktt version.
    folder : Path
        Where the settings file is (not saved).
    **options
        Any of :data:`OPTIONS` (default: its ``default``); each becomes an attribute.

    Raises
    ------
    KttError
        Naming an unknown option, or the first invalid one and its allowed values.
    """

    def __init__(self, name: str, checkpoint: str, checkpoint_sha256: str, info: dict | None = None,
                 folder: str | Path = ".", **options) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise KttError(f"unknown service setting(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
        values = {key: option.default for key, option in OPTIONS.items()} | options
        validate_params({f"service setting {key}": value for key, value in values.items()},
                        {f"service setting {key}": option.allowed for key, option in OPTIONS.items()})
        self.name, self.checkpoint, self.checkpoint_sha256 = name, checkpoint, checkpoint_sha256
        self.info = dict(info or {})
        self.folder = Path(folder)
        for key, value in values.items():
            setattr(self, key, value)

    def to_dict(self) -> dict:
        """The saved settings: :data:`IDENTITY` and every option."""
        return {key: getattr(self, key) for key in (*IDENTITY, *OPTIONS)}

    # ------------------------------------------------------------------ file
    @classmethod
    def load(cls, where: str | Path, environ: dict | None = None, code: bool = True) -> "ServiceSettings":
        """Read the settings beside ``where`` (a service file or its folder), then apply env overrides.

        With ``code`` (the default), when the folder carries the project's code (a
        bento's ``ktt/`` and ``ktt_models/``), the model's module is imported from there
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
            If the file is missing or a value is invalid, or the environment asks for a model
            service that the service was built without.
        """
        folder = Path(where)
        folder = folder if folder.is_dir() else folder.parent
        path = folder / SETTINGS_FILE
        if not path.is_file():
            raise KttError(f"no {SETTINGS_FILE} beside {folder}; build the service with `python -m ktt.export`")
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = sorted(set(data) - {*IDENTITY, *OPTIONS})
        if unknown:
            raise KttError(f"{path} has unknown settings {', '.join(unknown)}")
        overrides = env_overrides(environ if environ is not None else os.environ)
        if overrides.get("adaptive_batching") and data.get("adaptive_batching") is False:
            raise KttError("KTT_ADAPTIVE_BATCHING=1, but this service was built without a model service "
                           "(adaptive_batching=false); re-export it with export.adaptive_batching=true")
        data.update(overrides)
        settings = cls(**data, folder=folder)
        model = settings.info.get("model")
        if code and model and (folder / model.split(".")[0]).is_dir():  # the bento carries the package (ktt_models/)
            import_model_code(folder, model)
        return settings

    def save(self, folder: str | Path) -> Path:
        """Write ``ktt_service.json`` into ``folder``."""
        path = Path(folder) / SETTINGS_FILE
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
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

    Once imported, the module (and its top-level package, e.g. ``ktt_models``) stays
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
    values = {}
    for variable, name in ENV_OVERRIDES.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        kind = type(OPTIONS[name].default).__name__
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
