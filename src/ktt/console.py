"""What a ktt command shows: its own progress and results, and an error as one line.

By default (quiet) the console gets ktt's (and Hydra's) log lines and the result
table; other libraries' log records below ERROR (MLflow's ``INFO Creating a new
experiment``, alembic's migrations, ...) and Python warnings (MLflow's pyfunc
and cloudpickle notes, SQLAlchemy deprecations, ...) go to the job's log file
only, MLflow's artifact download bars are off, and so are progress bars when
stderr is not a terminal. A user error is one line on
stderr, ``ktt: error: <cause>; <fix>``, with no traceback.

``--verbose`` (``-v``), ``KTT_VERBOSE=1`` or ``HYDRA_FULL_ERROR=1`` shows all of
it: every library's log lines and warnings, and the traceback of a user error
(before its one line).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import NoReturn

from hydra.experimental.callback import Callback

VERBOSE_ENV = "KTT_VERBOSE"
VERBOSE_FLAGS = ("--verbose", "-v")
#: Loggers whose records below ERROR reach the console in quiet mode (with their children).
CONSOLE_LOGGERS = ("ktt", "ktt_models", "hydra", "hydra_plugins", "__main__")
#: Environment of a quiet process (and its children): MLflow logs through the root logger, without bars.
QUIET_ENV = {"MLFLOW_CONFIGURE_LOGGING": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
_TRUE = ("1", "true", "yes", "on")


def verbose() -> bool:
    """True with ``--verbose`` (see :func:`pop_verbose`), ``KTT_VERBOSE=1`` or, if ``KTT_VERBOSE`` is unset,
    ``HYDRA_FULL_ERROR=1``."""
    name = VERBOSE_ENV if VERBOSE_ENV in os.environ else "HYDRA_FULL_ERROR"
    return os.environ.get(name, "").strip().lower() in _TRUE


def pop_verbose(argv: list[str]) -> list[str]:
    """``argv`` without ``--verbose``/``-v``; either one sets ``KTT_VERBOSE=1`` (for this process and its children)."""
    rest = [arg for arg in argv if arg not in VERBOSE_FLAGS]
    if len(rest) != len(argv):
        os.environ[VERBOSE_ENV] = "1"
    return rest


def setup() -> None:
    """Make this process's console quiet unless verbose (call once, first thing in a command)."""
    if verbose():
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    if not _is_terminal(sys.stderr):  # progress bars in a log or a pipe are noise around the error line
        os.environ.setdefault("TQDM_DISABLE", "1")
    logging.captureWarnings(True)  # warnings become log records of "py.warnings": the log file, not the console
    for name in ("alembic", "sqlalchemy.engine"):  # as MLflow sets them when it configures its own logging
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    if not root.handlers:  # until the command configures logging, nothing falls back to stderr
        root.addHandler(logging.NullHandler())
    quiet_console()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ConsoleFilter(logging.Filter):
    """Let through records of :data:`CONSOLE_LOGGERS`, and any record at ERROR or above."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        name = record.name
        return any(name == prefix or name.startswith(prefix + ".") for prefix in CONSOLE_LOGGERS)


def quiet_console() -> None:
    """Put a :class:`ConsoleFilter` on the root logger's console handlers (not its files); idempotent."""
    if verbose():
        return
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) \
                and getattr(handler, "stream", None) in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) \
                and not any(isinstance(f, ConsoleFilter) for f in handler.filters):
            handler.addFilter(ConsoleFilter())


class QuietConsole(Callback):
    """Hydra callback: filter the console again each time Hydra (re)configures logging."""

    def on_run_start(self, config, **kwargs) -> None:
        setup()

    def on_multirun_start(self, config, **kwargs) -> None:
        setup()

    def on_job_start(self, config, **kwargs) -> None:
        setup()  # a job's logging config replaced the handlers (and joblib workers start fresh)


def fail(message: str, status: int = 2) -> NoReturn:
    """Print ``ktt: error: <message>`` on stderr and exit with ``status``."""
    sys.stdout.flush()
    print(f"ktt: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def report(error: BaseException) -> None:
    """End the command for ``error``: one line and status 2 for a user error, 130 for Ctrl-C.

    With verbose, the traceback comes first. Returns (without printing) if
    ``error`` is not a user error (a bug): the caller re-raises it, traceback and all.
    """
    from ktt.errors import user_message

    message = user_message(error)
    if message is None:
        return
    if verbose() and not isinstance(error, KeyboardInterrupt):
        traceback.print_exception(error, file=sys.stderr)
    fail(message, status=130 if isinstance(error, KeyboardInterrupt) else 2)
