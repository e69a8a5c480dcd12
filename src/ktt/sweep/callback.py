"""The Hydra callback that turns a multirun into one tracked sweep.

Registered in ``conf/config.yaml`` under ``hydra.callbacks``. In a multirun
(``python -m ktt -m ...``), in the process that starts it:

- ``on_multirun_start``: create the MLflow experiment and the sweep's parent run
  (:mod:`ktt.sweep.parent`), then warm the data cache (:mod:`ktt.sweep.cache`);
- ``on_job_start`` (in whichever process runs the job): nest the job's run
  under the parent (:mod:`ktt.sweep.job`); ``on_job_end``: give a job that failed
  before opening its run a FAILED one;
- ``on_multirun_end``: print the summary, tag the best job, end the parent run
  (:mod:`ktt.sweep.summary`) and exit with status 1 if the sweep failed.

If the sweep never reaches ``on_multirun_end`` (Ctrl-C, an error outside the
jobs), the same summary runs at exit and the parent ends KILLED or FAILED.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys

from hydra.experimental.callback import Callback
from hydra.types import RunMode

from ktt.sweep import job

log = logging.getLogger(__name__)


class SweepCallback(Callback):
    """One MLflow parent run per sweep, the data cache warmed once, a summary at the end.

    Parameters
    ----------
    warm_cache : bool
        Adapt and preprocess the sweep's data before the jobs start (see :func:`ktt.sweep.cache.warm_cache`).

    Notes
    -----
    Hydra pickles callbacks to joblib and submitit workers with the jobs, so the
    state kept here is plain data (:class:`~ktt.sweep.job.SweepParent`).
    """

    def __init__(self, warm_cache: bool = True) -> None:
        self.warm_cache = warm_cache
        self.parent: job.SweepParent | None = None
        self.interrupted = False

    def on_multirun_start(self, config, **kwargs) -> None:
        from ktt.secrets import install_log_masking
        from ktt.sweep import cache
        from ktt.sweep.parent import start_parent

        install_log_masking()  # before the data is read: a database URL's password stays out of the log
        # the parent first: a tracking store that is down or refuses stops the sweep before anything is written
        # (with its one line and status 2 here: Hydra turns a callback's exception into a warning)
        try:
            self.parent = start_parent(config)
        except Exception as error:
            from ktt.console import report

            report(error)  # exits, unless it is a bug
            raise
        self._watch_interrupts()
        atexit.register(self._end_abnormally)
        if self.warm_cache:
            cache.warm_cache(config)

    def on_job_start(self, config, **kwargs) -> None:
        job.enter(self.parent if config.hydra.mode == RunMode.MULTIRUN else None)

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from hydra.core.utils import JobStatus

        try:
            if job.current() is not None and job_return.status == JobStatus.FAILED:
                job.record_failure(config, job_return._return_value)
        finally:
            job.enter(None)

    def on_multirun_end(self, config, **kwargs) -> None:
        from ktt.cli import fail
        from ktt.sweep.summary import finish

        if self.parent is None:
            return
        atexit.unregister(self._end_abnormally)
        message = finish(self.parent)
        self.parent = None
        if message:
            fail(message, status=1)

    # ---------------------------------------------------------------- abnormal end
    def _watch_interrupts(self) -> None:
        """Remember a Ctrl-C (the parent then ends KILLED) and replace its traceback with one line."""
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return  # someone else handles Ctrl-C

        def on_sigint(signum, frame):
            self.interrupted = True
            raise KeyboardInterrupt

        try:
            signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not the main thread
            return
        previous_hook = sys.excepthook

        def excepthook(kind, value, traceback):
            if issubclass(kind, KeyboardInterrupt):
                print("ktt: interrupted; the sweep's finished runs are kept", file=sys.stderr, flush=True)
                return
            previous_hook(kind, value, traceback)

        sys.excepthook = excepthook

    def _end_abnormally(self) -> None:
        """At exit, if ``on_multirun_end`` never ran: summarise and end the parent KILLED or FAILED."""
        from ktt.sweep.summary import finish

        parent, self.parent = self.parent, None
        if parent is None:
            return
        try:
            finish(parent, interrupted=self.interrupted, crashed=not self.interrupted)
        except Exception as error:  # noqa: BLE001 - exiting anyway; say what was left open
            print(f"ktt: error: could not close the sweep's parent run {parent.run_id}: {error}", file=sys.stderr)
        if self.interrupted:
            # Python exits by SIGINT (status 130) after an uncaught Ctrl-C, unless code that
            # runs at exit (the imports above) resets its flag: do what it would have done.
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
