"""Keep credentials out of everything a run leaves behind.

A database URL such as ``postgresql+psycopg://ktt:hunter2@db/shop`` can reach ktt
as a command-line override (``dataset.url=...``) or an environment variable
(``KTT_SQL_URL``). Its password must never appear in MLflow params or tags, on
stdout/stderr, in the job log, in the ``.hydra`` files Hydra writes (and that the
run uploads as ``hydra/`` artifacts), in ``multirun.yaml`` or in the cache.

This module is the one place that knows how to hide it:

- :func:`mask_text` rewrites every ``scheme://user:password@`` in a text to
  ``scheme://user:***@`` (and ``password=``/``pwd=`` parameters to ``***``);
  :func:`mask_secrets` applies it to every string of a nested config.
- :class:`MaskSecrets` is a Hydra callback (registered in ``conf/config.yaml``)
  that rewrites the ``.hydra`` files and ``multirun.yaml`` after Hydra writes
  them and before the task runs, masks the overrides Hydra prints when a job
  fails, and masks every log record (see :func:`install_log_masking`).

Passwords are recognised in URL form only: a password that holds ``@`` or
whitespace must be percent-encoded in the URL (SQLAlchemy requires it for ``@``).
The module needs no SQLAlchemy, so importing it is cheap.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable

from hydra.experimental.callback import Callback
from hydra.types import RunMode

MASK = "***"

#: ``scheme://user:password@`` (the user may be empty); the password ends at the first ``@``.
#: A multirun escapes the colons of an override (``postgresql\\://ktt\\:pw@``): they may follow backslashes.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*\\*://[^\s:/?#@\\]*)(?P<colon>\\*:)(?P<password>[^\s@]+)@"
)
#: ``?password=...`` / ``&sslpassword=...`` / ``;pwd=...`` style parameters of a URL or DSN.
_PARAM_SECRET = re.compile(
    r"(?P<head>(?:^|[?&;,\s+~'\"(\[])[\w.\-]*(?:password|passwd|pwd)=)(?P<value>[^&;,\s'\")\]]+)", re.IGNORECASE
)
#: The ``.hydra`` files Hydra writes in a job's output folder.
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


def mask_text(text: str) -> str:
    """Replace the passwords of every URL in ``text`` with ``***``.

    Parameters
    ----------
    text : str
        Any text: a URL, a log line, an error message, a YAML file.

    Returns
    -------
    str
        The text with ``scheme://user:password@`` turned into ``scheme://user:***@``
        and the values of password parameters (``password=``, ``sslpassword=``, ``pwd=``,
        as in ``?password=...`` or a ``key=value`` DSN) turned into ``***``.

    Examples
    --------
    >>> mask_text("postgresql+psycopg://ktt:hunter2@127.0.0.1:5432/shop")
    'postgresql+psycopg://ktt:***@127.0.0.1:5432/shop'
    """
    if "=" not in text and "://" not in text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{m['colon']}{MASK}@", text)
    return _PARAM_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)


def mask_secrets(value: Any) -> Any:
    """:func:`mask_text` applied to every string of a nested dict/list/tuple (other values unchanged)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_secrets(item) for item in value)
    return value


def mask_error(error: BaseException, secrets: Iterable[str] = ()) -> str:
    """The first non-empty line of an error's message, masked.

    Parameters
    ----------
    error : BaseException
        The error; for a SQLAlchemy ``DBAPIError`` the driver's own error (``.orig``) is used.
    secrets : iterable of str
        Literal strings (e.g. a known password) to hide wherever they appear.

    Returns
    -------
    str
        One line, safe to print or log.
    """
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    message = re.sub(r"\s+", " ", lines[0]) if lines else type(original).__name__
    message = mask_text(message)
    for secret in secrets:
        if secret:
            message = message.replace(secret, MASK)
    return message


def mask_file(path: str | Path) -> bool:
    """Rewrite a text file with :func:`mask_text` (atomically); return whether it changed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return False
    masked = mask_text(text)
    if masked == text:
        return False
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(masked)
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return True


# ------------------------------------------------------------------ log records
_installed_factory = None


def install_log_masking() -> None:
    """Mask every log record of this process, whatever logger or handler it goes through.

    A record factory (not a handler filter: Hydra replaces the handlers when it
    configures logging) formats the message, masks it and masks a logged traceback.
    Installing twice is a no-op.
    """
    global _installed_factory
    current = logging.getLogRecordFactory()
    if current is _installed_factory and current is not None:
        return

    def factory(*args, **kwargs):
        record = current(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging to report
            return record
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return record

    _installed_factory = factory
    logging.setLogRecordFactory(factory)


# ------------------------------------------------------------------------ Hydra
def mask_overrides(hydra) -> None:
    """Mask, in place, a Hydra node's ``overrides.task`` and ``job.override_dirname``.

    Parameters
    ----------
    hydra : DictConfig
        The ``hydra`` node of a job's config (read-only nodes are handled).
    """
    from omegaconf import read_write

    with read_write(hydra):
        task = hydra.overrides.task
        masked = [mask_text(str(line)) for line in task]
        if masked != [str(line) for line in task]:
            hydra.overrides.task = masked
        dirname = hydra.job.get("override_dirname")
        if isinstance(dirname, str) and mask_text(dirname) != dirname:
            hydra.job.override_dirname = mask_text(dirname)


class MaskSecrets(Callback):
    """Hydra callback: keep URL passwords out of Hydra's files, logs and messages.

    - ``on_run_start``/``on_multirun_start``/``on_job_start``: mask every log record
      (the launcher logs each job's overrides in a multirun).
    - ``on_job_start``: rewrite the job's ``.hydra/config.yaml``, ``hydra.yaml`` and
      ``overrides.yaml`` (written just before) and, in a multirun, the sweep's
      ``multirun.yaml``; the run later uploads the ``.hydra`` files as artifacts.
      It also masks the job's overrides in its Hydra config (``HydraConfig.get()``
      and the callbacks' ``config``), so that the task, which needs the overrides'
      effect but never their text, cannot record them unmasked (a sweep's job tags).
    - ``on_job_end``: mask the job's overrides, which Hydra prints when a job failed.
    - ``on_multirun_end``: rewrite ``multirun.yaml`` once more.

    The task itself still receives the real config (it needs the password to connect).
    """

    def on_run_start(self, config, **kwargs) -> None:
        install_log_masking()

    def on_multirun_start(self, config, **kwargs) -> None:
        install_log_masking()

    def on_job_start(self, config, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        install_log_masking()
        hydra = config.hydra
        mask_overrides(hydra)
        if HydraConfig.initialized():
            mask_overrides(HydraConfig.instance().cfg.hydra)
        output_dir = Path(hydra.runtime.output_dir)
        if hydra.output_subdir is not None:
            for name in HYDRA_FILES:
                mask_file(output_dir / str(hydra.output_subdir) / name)
        if hydra.mode == RunMode.MULTIRUN:
            for folder in (Path(str(hydra.sweep.dir)), *list(output_dir.parents)[:3]):
                mask_file(folder / "multirun.yaml")

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if job_return.overrides:
            job_return.overrides = [mask_text(str(o)) for o in job_return.overrides]

    def on_multirun_end(self, config, **kwargs) -> None:
        mask_file(Path(str(config.hydra.sweep.dir)) / "multirun.yaml")
