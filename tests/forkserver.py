"""Run many ``python -m ktt`` / ``python -m ktt.export`` commands fast: import once, fork per command.

A test starts this file once (``python tests/forkserver.py``); it imports ktt's
heavy dependencies (MLflow, scikit-learn, Hydra, pandas, ...) as a quiet
``python -m ktt`` would have them by then, and then, for each command it is sent,
forks a child that does what ``python -m <module> <args>`` does: its own working
directory and environment, stdin from /dev/null, stdout and stderr to files (at
the file-descriptor level, so everything written is caught), ``main()``, the
``atexit`` handlers, and the exit status Python would give. A command costs its
own work only, not the seconds of imports.

Protocol: one JSON line in on stdin, a batch ``{"parallel": n, "commands": [...]}``
(each ``{"module", "args", "cwd", "stdout", "stderr", "env", "timeout"}``); one
JSON line out, the list of ``{"status", "seconds"}`` in the same order.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import signal
import sys
import time
import traceback

#: Imported before forking (what ``python -m ktt`` and ``python -m ktt.export`` import on their way; a module
#: missing here is imported by each child again, which costs time, not correctness).
PRELOAD = ("hydra", "hydra.core.hydra_config", "hydra._internal.utils", "omegaconf", "hydra_plugins.ktt_optuna_sweeper",
           "ktt.cli", "ktt.console", "ktt.errors", "ktt.secrets", "ktt.tracking", "ktt.train", "ktt.tracking.pyfunc", "ktt.plots",
           "ktt.sweep.callback", "ktt.export.run", "ktt.export.onnx", "ktt.export.bento", "ktt.data.flat_file",
           "ktt.data.sql", "ktt.data.icd10cm", "ktt.preprocess", "ktt.metrics", "ktt.model_sklearn",
           "ktt_models.tfidf_lsgd.tfidf_lsgd", "ktt_models.tfidf_hsgd.tfidf_hsgd",
           "mlflow", "mlflow.pyfunc", "mlflow.artifacts", "mlflow.store.tracking.sqlalchemy_store",
           "mlflow.store.model_registry.sqlalchemy_store", "mlflow.store.artifact.local_artifact_repo",
           "alembic.command", "alembic.migration", "sqlalchemy", "sqlalchemy.orm", "sqlalchemy.dialects.sqlite",
           "git", "nltk", "sklearn", "sklearn.linear_model", "sklearn.multiclass", "sklearn.feature_extraction.text",
           "skl2onnx", "onnxruntime", "scipy.io", "pandas", "pyarrow.parquet", "pyarrow.dataset", "joblib",
           "psycopg", "requests")


def run_child(command: dict) -> None:
    """In the forked child: be ``python -m <module> <args>``; never returns."""
    code = 1
    try:
        os.setsid()
        os.chdir(command["cwd"])
        for name in command.get("unset", []):
            os.environ.pop(name, None)
        os.environ.update(command.get("env") or {})
        devnull = os.open(os.devnull, os.O_RDONLY)
        out = os.open(command["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(command["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.argv = [command["module"], *command["args"]]
        sys.path[0] = os.getcwd()  # as python -m does
        try:
            importlib.import_module(command["module"] + ".__main__").main()
            code = 0
        except SystemExit as exit_:
            if exit_.code is None:
                code = 0
            elif isinstance(exit_.code, int):
                code = exit_.code
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            code = 130
        except BaseException:  # noqa: BLE001 - as the interpreter reports an uncaught exception
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_batch(commands: list[dict], parallel: int) -> list[dict]:
    results: list[dict | None] = [None] * len(commands)
    running: dict[int, tuple[int, float]] = {}
    pending = list(range(len(commands)))
    while pending or running:
        while pending and len(running) < parallel:
            index = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                run_child(commands[index])
            running[pid] = (index, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for child, (index, start) in list(running.items()):
                if now - start > commands[index].get("timeout", 300):
                    try:
                        os.killpg(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.02)
            continue
        if pid not in running:
            continue
        index, start = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        results[index] = {"status": code, "seconds": round(time.monotonic() - start, 2)}
    return results


def main() -> None:
    os.environ.update({"MLFLOW_CONFIGURE_LOGGING": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})
    for name in PRELOAD:
        importlib.import_module(name)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        results = run_batch(request["commands"], int(request.get("parallel", 2)))
        print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
