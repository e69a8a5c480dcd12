"""``python -m ktt.predict run_id=<id>|latest|models:/<name>@<alias> input=<file> output=<file> [options]``: score a file.

The model is a run's (``run_id=<id>``; ``run_id=latest``: the newest FINISHED run
of ``model`` in the dataset's experiment) or a registered model version's
(``run_id=models:/<name>/<version>`` or ``run_id=models:/<name>@<alias>``: the run
that logged it), as for ``python -m ktt.export``; its checkpoint is checked against
the run's recorded sha256 (and the version's) before it is loaded. Options:

    input=<file>        CSV, TSV, JSON lines, JSON, Parquet or Feather (by its suffix, or format=)
    output=<file>       .parquet, .csv or .tsv; written whole or not at all
    text_col=text       the column holding the raw text; the other columns are copied
    chunk_size=10000    rows read, classified and written at a time

Other overrides compose the config as for training (``tracking.uri=``,
``dataset=``/``model=`` to pick ``run_id=latest``, ``progress=false``)::

    python -m ktt.predict run_id=3f2a... input=new.csv output=scored.parquet
    python -m ktt.predict run_id=latest dataset=file dataset.path=train.csv input=new.jsonl output=scored.csv
    python -m ktt.predict run_id=models:/icd@champion input=new.parquet output=scored.parquet text_col=title
"""

from __future__ import annotations

import os
import signal
import sys

USAGE = __doc__.split("\n\n", 1)[1]
#: The keys this command reads itself; everything else is a config override.
KEYS = ("run_id", "input", "output", "text_col", "chunk_size", "format")
REGISTRY_PREFIX = "models:/"


def main(argv: list[str] | None = None) -> None:
    """Parse the options, check the input, load the model, score, print one line."""
    from ktt.cli import command_argv, fail, precheck, register_resolvers, run_command

    argv = command_argv(argv, "usage: python -m ktt.predict run_id=<id>|latest|models:/<name>@<alias> input=<file> "
                        "output=<file> [options] [--verbose] [overrides]\n\n" + USAGE)
    if argv is None:
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar: the scoring's
    signal.signal(signal.SIGTERM, _terminate)  # like Ctrl-C: the temporary output is removed

    def command():
        options, overrides = parse_args(argv)
        register_resolvers()
        precheck(overrides)
        print(predict(options, overrides))

    try:
        run_command(command)  # every user error is one line and status 2, as in ktt.export
    except KeyboardInterrupt:
        fail("interrupted", status=130)


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    """Split ``argv`` into this command's options (checked) and config overrides.

    Raises
    ------
    KttError
        A missing, repeated or invalid option.
    """
    from ktt.errors import KttError
    from ktt.predict import DEFAULT_CHUNK_SIZE

    options: dict[str, str] = {}
    overrides = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            overrides.append(arg)
            continue
        if key in options:
            raise KttError(f"give {key}= once")
        options[key] = value
    if "run_id" not in options:
        raise KttError("give one run_id=<MLflow run id> (or run_id=latest: the newest FINISHED run of the model "
                       "and dataset, or run_id=models:/<name>/<version> or models:/<name>@<alias>: a registered version)")
    for key in ("input", "output"):
        if not options.get(key):
            raise KttError(f"give {key}=<file>")
    for key in ("run_id", "text_col", "format"):
        if key in options and not options[key]:
            raise KttError(f"invalid {key}='' (allowed: a non-empty value)")
    from ktt.data.flat_file import FORMATS

    if "format" in options and options["format"] not in FORMATS:
        raise KttError(f"invalid format={options['format']!r} (allowed: {', '.join(FORMATS)})")
    size = options.get("chunk_size", str(DEFAULT_CHUNK_SIZE))
    if not size.isdigit() or int(size) < 1:
        raise KttError(f"invalid chunk_size={size!r} (allowed: an integer >= 1)")
    options["chunk_size"] = int(size)
    options.setdefault("text_col", "text")
    return options, overrides


def predict(options: dict, overrides: list[str]) -> str:
    """Compose the config, check the input and output, load the model, score; the summary line."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ktt.cli import CONFIG_MODULE, CONFIG_NAME
    from ktt.errors import KttError
    from ktt.predict import InputFile, output_format, score_file

    GlobalHydra.instance().clear()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=overrides)
    GlobalHydra.instance().clear()

    output_format(options["output"])
    source = InputFile(options["input"], options["text_col"], options["chunk_size"], options.get("format"))
    if source.path.resolve() == _resolve(options["output"]):
        raise KttError(f"output={options['output']} is the input file; give another output")

    from ktt import tracking  # slow to import (MLflow): only once the arguments and the input are known to be good

    tracking.configure(cfg.tracking.uri)
    reference = options["run_id"]
    run_id = tracking.resolve_run(reference, tracking.client(), cfg.tracking.experiment, cfg.model._target_)
    what = f"{reference} (run {run_id})" if reference.startswith(REGISTRY_PREFIX) else f"run {run_id}"
    model = tracking.load_model(reference if reference.startswith("models:/") else run_id)  # a version's sha256 too
    metadata = {"ktt.run_id": run_id, "ktt.checkpoint_sha256": tracking.get_run(run_id).data.tags[tracking.SHA256_TAG]}
    summary = score_file(model, source, options["output"], progress=bool(cfg.get("progress", True)),
                         metadata=metadata)
    return summary.line(what)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _resolve(path: str):
    from pathlib import Path

    return Path(path).resolve()


if __name__ == "__main__":
    main()
