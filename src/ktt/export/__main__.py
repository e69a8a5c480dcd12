"""``python -m ktt.export run_id=<id>|latest|models:/<name>@<alias> export=onnx|bento [overrides]``: export a past run.

The config is composed as for training (same groups and keys), so ``export.*``
options, ``tracking.uri`` and, for ``run_id=latest``, the model and dataset that
pick the run (the newest FINISHED run of ``model`` in the dataset's experiment)
are given the same way. A registered version names its run too
(``run_id=models:/<name>/<version>`` or ``run_id=models:/<name>@<alias>``)::

    python -m ktt.export run_id=3f2a... export=onnx
    python -m ktt.export run_id=models:/tfidf_lsgd-icd10cm@champion export=bento
    python -m ktt.export run_id=latest dataset=file dataset.path=my.csv export=bento export.max_latency_ms=5000

Only a FINISHED run is exported: ``allow_unfinished=true`` exports a FAILED,
KILLED or RUNNING run that has a checkpoint anyway (and tags it
``ktt.export.allow_unfinished``). ``--verbose`` shows every library's logs and
an error's traceback.
"""

from __future__ import annotations

import logging
import sys

USAGE = __doc__.split("\n\n", 1)[1]
#: Tag of a run exported although it was not FINISHED (``allow_unfinished=true``).
ALLOW_UNFINISHED_TAG = "ktt.export.allow_unfinished"
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def main(argv: list[str] | None = None) -> None:
    """Parse ``run_id=`` and ``allow_unfinished=``, compose the config from the other overrides, export, print one line."""
    from ktt import console
    from ktt.cli import command_argv, fail, precheck, register_resolvers, run_command

    argv = command_argv(argv, "usage: python -m ktt.export run_id=<id>|latest|models:/<name>@<alias> "
                        "export=onnx|bento [allow_unfinished=true] [--verbose] [overrides]\n\n" + USAGE)
    if argv is None:
        return
    run_ids = [arg.split("=", 1)[1] for arg in argv if arg.startswith("run_id=")]
    allow = [arg.split("=", 1)[1] for arg in argv if arg.startswith("allow_unfinished=")]
    overrides = [arg for arg in argv if not arg.startswith(("run_id=", "allow_unfinished="))]
    if len(run_ids) != 1 or not run_ids[0].strip():
        fail("give one run_id=<MLflow run id> (or run_id=latest: the newest FINISHED run of the model and dataset, "
             "or run_id=models:/<name>/<version> or models:/<name>@<alias>: a registered version)")
    if len(allow) > 1 or (allow and allow[0].strip().lower() not in _BOOLEANS):
        fail(f"invalid allow_unfinished={allow[-1]!r} (allowed: true, false)")
    allow_unfinished = bool(allow) and _BOOLEANS[allow[0].strip().lower()]
    register_resolvers()

    def command():
        precheck(overrides)
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                            format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        console.quiet_console()
        print(export(run_ids[0].strip(), overrides, allow_unfinished=allow_unfinished).summary)

    run_command(command)


def export(run_id: str, overrides: list[str], allow_unfinished: bool = False):
    """Export run ``run_id`` (or ``latest``) as the composed config's ``export`` says.

    Parameters
    ----------
    run_id : str
        An MLflow run id, ``latest`` or a registered version (``models:/<name>/<version>``,
        ``models:/<name>@<alias>``).
    overrides : list of str
        Config overrides (``export=onnx``, ``tracking.uri=...``, ...).
    allow_unfinished : bool
        Export a run that is not FINISHED (it is then tagged ``ktt.export.allow_unfinished``).

    Returns
    -------
    ktt.export.ExportResult

    Raises
    ------
    KttError
        If there is nothing to export, the run does not exist or is not FINISHED
        (without ``allow_unfinished``), or the export fails.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ktt.cli import CONFIG_MODULE, CONFIG_NAME
    from ktt.errors import KttError, set_context
    from ktt.export.run import export_settings

    GlobalHydra.instance().clear()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=overrides)
    GlobalHydra.instance().clear()
    set_context(cfg)
    settings = export_settings(cfg.export)
    if settings["format"] == "none":
        raise KttError("nothing to export: add export=onnx or export=bento")

    from ktt import tracking  # slow to import (MLflow): only once the config is known to be good
    from ktt.export.run import check_exportable, export_run

    tracking.configure(cfg.tracking.uri)
    reference = run_id
    run_id = tracking.resolve_run(reference, tracking.client(), cfg.tracking.experiment, cfg.model._target_)
    unfinished = check_exportable(tracking.get_run(run_id), allow_unfinished)
    model = tracking.load_model(reference if reference.startswith("models:/") else run_id)  # a version's sha256 too
    result = export_run(model, settings, run_id)
    if unfinished:
        tracking.set_tags(run_id, {ALLOW_UNFINISHED_TAG: "true"})
    return result


if __name__ == "__main__":
    main()
