"""Export a run's model and log the result to that run.

Used after training (``python -m ktt export=onnx|bento``) and for a past run
(``python -m ktt.export run_id=<id> export=onnx|bento``). What is logged:

``export=onnx``
    artifacts ``export/onnx/{model.onnx, hierarchy.json, export.json}``, metrics
    ``onnx_label_agreement`` and ``onnx_max_score_diff`` (the parity check), tag
    ``ktt.export.onnx`` (the graph's URI);
``export=bento``
    tag ``ktt.bento_tag`` (``name:version`` in the BentoML store, ``ktt.bento_home``
    names the store) and artifacts ``export/bento/`` (the bento's settings,
    bentofile, pinned requirements, monitoring files and, with ``archive=true``,
    the ``.bento`` archive).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ktt.errors import KttError
from ktt.params import Interval, Options, validate_params
from ktt.serving.settings import OPTIONS

log = logging.getLogger(__name__)

FORMATS = ("none", "onnx", "bento")
ONNX_TAG = "ktt.export.onnx"
BENTO_TAG = "ktt.bento_tag"
BENTO_HOME_TAG = "ktt.bento_home"

#: What the keys of the ``export`` config may hold (see ``conf/export/*.yaml``): the export's
#: own keys, then the bento's service settings (:data:`ktt.serving.settings.OPTIONS`).
EXPORT_CONSTRAINTS = {
    "format": [Options(FORMATS)],
    "target_opset": [None, Interval(int, 9, None)],
    "tolerance": [Interval(float, 0, None, closed="neither")],
    "bentoml_home": [None, str],
    "archive": [bool],
    **{key: option.allowed for key, option in OPTIONS.items()},
}


@dataclass
class ExportResult:
    """What an export produced.

    Attributes
    ----------
    format : str
        ``onnx`` or ``bento``.
    run_id : str
    summary : str
        One line for the user.
    details : dict
        ``parity`` for ONNX; ``tag`` and ``bentoml_home`` for bentos.
    """

    format: str
    run_id: str
    summary: str
    details: dict = field(default_factory=dict)


def export_settings(config) -> dict:
    """The ``export`` config as a plain dict, validated.

    Raises
    ------
    KttError
        Naming the first invalid key (``invalid export.max_batch_size=1 (allowed: ...)``).
    """
    from omegaconf import DictConfig, OmegaConf

    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    settings = dict(config or {})
    unknown = sorted(set(settings) - set(EXPORT_CONSTRAINTS))
    if unknown:
        raise KttError(f"unknown export key(s) {', '.join(unknown)} (known: {', '.join(EXPORT_CONSTRAINTS)})")
    validate_params({f"export.{key}": value for key, value in settings.items()},
                    {f"export.{key}": allowed for key, allowed in EXPORT_CONSTRAINTS.items()})
    settings.setdefault("format", "none")
    return settings


def export_run(model, config, run_id: str, texts: Sequence[str] | None = None,
               tracking_uri: str | None = None) -> ExportResult | None:
    """Export ``model`` (the model of run ``run_id``) as configured, and log the result to the run.

    Parameters
    ----------
    model : ktt.model.Model
        The run's fitted model.
    config : mapping or DictConfig
        The ``export`` config (``format`` and its options).
    run_id : str
        The MLflow run that holds the model's checkpoint.
    texts : sequence of str, optional
        Preprocessed texts for the ONNX parity check (the training run passes its
        test split); default: the run's cached test split if it is still on disk,
        else texts made of vocabulary terms.
    tracking_uri : str, optional
        Default: the current tracking store (:func:`ktt.tracking.configure`).

    Returns
    -------
    ExportResult or None
        None for ``format: none``.

    Raises
    ------
    KttError
        If the model cannot be exported in that format, or the export fails its checks.
    """
    from ktt.tracking.runs import client

    settings = export_settings(config)
    tracking_uri = client(tracking_uri).tracking_uri  # the store of this moment, for every step of the export
    if settings["format"] == "onnx":
        return _export_onnx(model, settings, run_id, tracking_uri, texts)
    if settings["format"] == "bento":
        return _export_bento(model, settings, run_id, tracking_uri)
    return None


def _export_onnx(model, settings: dict, run_id: str, tracking_uri: str, texts) -> ExportResult:
    from ktt.export.onnx import check_parity, export_model, write_description
    from ktt.tracking.runs import get_run, log_export

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "onnx"
        export_model(model, folder / "model.onnx", target_opset=settings.get("target_opset"))
        model.hierarchy.to_json(folder / "hierarchy.json")
        source = "test split"
        if texts is None:
            texts, source = _check_texts(model, get_run(run_id, tracking_uri))
        parity = check_parity(folder / "model.onnx", model, texts, tolerance=settings.get("tolerance", 1e-5))
        parity["texts"] = source
        write_description(folder, model, parity)
        uri = f"runs:/{run_id}/export/onnx/model.onnx"
        log_export(run_id, folder, "export/onnx", tags={ONNX_TAG: uri}, tracking_uri=tracking_uri,
                   metrics={"onnx_label_agreement": parity["label_agreement"],
                            "onnx_max_score_diff": parity["max_score_diff"]})
    summary = (f"ONNX graph logged to {uri}: labels equal on {parity['label_agreement']:.1%} of "
               f"{parity['n_texts']} texts ({source}), max score difference {parity['max_score_diff']:.1e}")
    return ExportResult("onnx", run_id, summary, {"parity": parity, "uri": uri})


def _check_texts(model, run) -> tuple[list[str], str]:
    """The run's preprocessed test split if its dataset cache still exists, else vocabulary probes."""
    from ktt.export.onnx import probe_texts

    cache = run.data.params.get("data.cache_dir")
    if cache and (Path(cache) / "meta.json").is_file():
        from ktt.data.intermediate import IntermediateDataset

        try:
            texts = IntermediateDataset(cache).preprocessed_texts("test")
            if texts:
                return texts, "test split"
        except (KttError, OSError, ValueError):
            pass
    return probe_texts(model.onnx_pipeline().steps[0][1]), "vocabulary probes"


def _export_bento(model, settings: dict, run_id: str, tracking_uri: str) -> ExportResult:
    from ktt.export.bento import bento_name, build, export_archive, resolve_bentoml_home, write_build_context
    from ktt.monitoring.bundle import write_bundle
    from ktt.tracking.runs import (SHA256_TAG, download_checkpoint, download_reference_set, experiment_name, get_run,
                                   log_export)

    run = get_run(run_id, tracking_uri)
    sha256 = run.data.tags.get(SHA256_TAG)
    if sha256 is None:
        raise KttError(f"run {run_id} has no recorded checkpoint; nothing to export")
    dataset = run.data.params.get("dataset.name") or experiment_name(run, tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = download_checkpoint(run_id, tmp / "download", tracking_uri)
        reference = None
        if settings.get("monitoring", True):
            reference = download_reference_set(run_id, tmp / "download", tracking_uri)
        context = write_build_context(model, tmp / "bento", reference, checkpoint=checkpoint,
                                      checkpoint_sha256=sha256, info={"run_id": run_id, "dataset": dataset})
        home = resolve_bentoml_home(settings.get("bentoml_home"))
        name = bento_name(model, dataset)
        tag = build(context, name, settings, bentoml_home=home,
                    labels={"ktt.run_id": run_id, "ktt.dataset": dataset, "ktt.model": type(model).__name__})
        logged = tmp / "logged"
        logged.mkdir()
        for relative in ("ktt_service.json", "bentofile.yaml", "requirements.txt", "monitoring/evidently.yaml",
                         "monitoring/dashboard.json"):
            if (context / relative).is_file():
                shutil.copy2(context / relative, logged / Path(relative).name)
        if settings.get("archive"):
            export_archive(tag, logged / f"{name}.bento", bentoml_home=home)
        if reference:
            write_bundle(logged / "stack", bento_tag=tag, model_name=name,
                         evidently_config=context / "monitoring/evidently.yaml",
                         reference_set_path=context / "monitoring/reference_set.parquet",
                         dashboard_path=context / "monitoring/dashboard.json")
        log_export(run_id, logged, "export/bento", tags={BENTO_TAG: tag, BENTO_HOME_TAG: home or "default"},
                   tracking_uri=tracking_uri)
    where = f"BENTOML_HOME={home} " if home else ""
    stack = "; deployment stack (docker compose) in the run's export/bento/stack" if reference else ""
    summary = (f"bento {tag} built with {'monitoring' if reference else 'no monitoring'}{stack}; serve it with "
               f"`{where}bentoml serve {tag}` and POST /predict {{\"text\": \"...\"}}")
    return ExportResult("bento", run_id, summary, {"tag": tag, "bentoml_home": home, "monitoring": bool(reference)})


def check_exportable(run, allow_unfinished: bool = False) -> bool:
    """Refuse to export a run that did not finish, unless ``allow_unfinished``.

    A FAILED, KILLED or still RUNNING run may hold a checkpoint, but not one that
    its own run vouches for; a deleted run is never exported.

    Returns
    -------
    bool
        True if the run is not FINISHED (and ``allow_unfinished`` let it through).

    Raises
    ------
    KttError
        Naming the run's status (and its ``ktt.error``) and the override that exports it anyway.
    """
    from ktt.tracking import ERROR_TAG

    run_id, status = run.info.run_id, run.info.status
    if run.info.lifecycle_stage == "deleted":
        raise KttError(f"run {run_id} is deleted; restore it (mlflow runs restore --run-id {run_id}) to export it")
    if status == "FINISHED":
        return False
    if allow_unfinished:
        log.warning("exporting run %s although it is %s (allow_unfinished=true)", run_id, status)
        return True
    error = run.data.tags.get(ERROR_TAG)
    because = f" ({error[:200]})" if error else ""
    raise KttError(f"run {run_id} is {status}{because}, not FINISHED; export a finished run, "
                   "or add allow_unfinished=true to export it anyway")
