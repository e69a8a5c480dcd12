"""Errors a user can cause, and the one line ktt shows for each.

:class:`KttError` is ktt's own exception for a problem with the user's input,
config or files. Other libraries raise their own types for the same kind of
problem (a path that cannot be written, an MLflow store that does not exist, a
setting left out, data that sklearn cannot fit); :data:`RULES` maps those types
to one line too. It is the one table: the CLIs (``python -m ktt``,
``python -m ktt.export``), the ``ktt.error`` tag of a FAILED run and a sweep's
failed jobs all go through :func:`user_message`.

An exception that no rule claims is a bug in ktt (or a library), not a user
error: it keeps its traceback.

Nothing here imports a heavy library: rules are looked up by the qualified
names of the exception's classes, so a library that is not imported cannot be
the cause.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any, Callable


class KttError(Exception):
    """A problem with the user's input, config or files.

    The message is one line that names what is wrong and what would be right.
    The CLI prints it as ``ktt: error: <message>`` and exits with status 2;
    it never prints a traceback for it.
    """


# ------------------------------------------------------------------ context
#: What the running command knows that helps to name the setting behind an error:
#: ``config`` (the composed config) and ``paths`` (extra path -> setting hints).
_context: dict[str, Any] = {}


def set_context(config: Any = None, paths: dict[str, str] | None = None) -> None:
    """Remember the running job's config (and extra ``{path: setting}`` hints) for the messages.

    Parameters
    ----------
    config : DictConfig or dict, optional
        The composed config; its path-like settings are matched against the
        file named by an ``OSError``, its missing values (``???``) name the
        setting left out.
    paths : dict, optional
        More ``path -> setting`` pairs (e.g. Hydra's output folder -> ``hydra.run.dir``).
    """
    _context.clear()
    if config is not None:
        _context["config"] = config
    if paths:
        _context["paths"] = dict(paths)


# -------------------------------------------------------------------- API
def user_message(error: BaseException) -> str | None:
    """The one line (cause and fix) for an error the user caused, or None for a bug.

    The first class in ``type(error).__mro__`` with a rule in :data:`RULES`
    decides; a rule may also answer None (e.g. a ``ValueError`` that sklearn did
    not raise while fitting), and then the next class of the MRO is tried.
    """
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    for cls in type(error).__mro__:
        rule = RULES.get(f"{cls.__module__}.{cls.__qualname__}")
        if rule is None:
            continue
        try:
            message = rule(error)
        except Exception:  # noqa: BLE001 - a rule must never hide the error it describes
            message = None
        if message:
            return _one_line(message)
    return None


def error_line(error: BaseException) -> str:
    """:func:`user_message`, or for a bug ``<Type>: <first line>``; masked, for tags and logs."""
    message = user_message(error)
    if message is None:
        message = f"{type(error).__name__}: {_first_line(error)}" if _first_line(error) else type(error).__name__
    return _one_line(message)


def is_user_error(error: BaseException) -> bool:
    """True if :func:`user_message` has a line for ``error``."""
    return user_message(error) is not None


# ------------------------------------------------------------------ helpers
def _one_line(text: str) -> str:
    from ktt.secrets import mask_text

    text = re.sub(r"\s+", " ", str(text)).strip()
    return mask_text(text.removeprefix("ktt: error: "))


def _first_line(error: BaseException | str) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _config_values() -> dict[str, Any]:
    """The context config as flat ``a.b.c -> value`` (interpolations resolved where they can be)."""
    config = _context.get("config")
    if config is None:
        return {}
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(config):
            try:
                config = OmegaConf.to_container(config, resolve=True, throw_on_missing=False)
            except Exception:  # noqa: BLE001 - an interpolation that fails: take the raw values
                config = OmegaConf.to_container(config, resolve=False)
    except ImportError:
        pass
    flat: dict[str, Any] = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(config if isinstance(config, dict) else {}, "")
    flat.pop("hydra", None)
    return {key: value for key, value in flat.items() if not key.startswith("hydra.")}


def missing_settings(config: Any = None) -> list[str]:
    """The keys of ``config`` (default: the context's) still set to ``???``, without resolving anything."""
    config = _context.get("config") if config is None else config
    if config is None:
        return []
    try:
        from omegaconf import OmegaConf

        raw = OmegaConf.to_container(config, resolve=False) if OmegaConf.is_config(config) else config
    except Exception:  # noqa: BLE001
        return []
    found = []

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{prefix}{i}.")
        elif node == "???":
            found.append(prefix[:-1])

    walk(raw, "")
    return [key for key in found if key != "hydra" and not key.startswith("hydra.")]


def _path_settings() -> list[tuple[Path, str]]:
    """Settings of the context that name a file or folder, as (absolute path, ``key=value``)."""
    pairs: list[tuple[Path, str]] = []
    for key, value in _config_values().items():
        if not isinstance(value, str) or not value or "\n" in value:
            continue
        path = value
        if key == "tracking.uri" or value.startswith("sqlite:"):
            if not value.startswith("sqlite:///"):
                continue
            path = value[len("sqlite:///"):]
        elif "://" in value or not any(sep in value for sep in ("/", ".")):
            continue
        pairs.append((Path(os.path.abspath(os.path.expanduser(path))), f"{key}={value}"))
    config_values = _config_values()
    if config_values and config_values.get("tracking.uri") in (None, ""):  # MLflow's default store, in the cwd
        for name in ("mlflow.db", "mlartifacts"):
            pairs.append((Path(os.path.abspath(name)), "tracking.uri=null (./mlflow.db)"))
    for path, setting in (_context.get("paths") or {}).items():
        pairs.append((Path(os.path.abspath(path)), setting))
    return pairs


def _setting_for(filename: str) -> str | None:
    """The setting (``key=value``) whose path holds ``filename``, the most specific one."""
    target = Path(os.path.abspath(filename))
    best, depth = None, -1
    for path, setting in _path_settings():
        if target == path or path in target.parents or target in path.parents:
            if len(path.parts) > depth:
                best, depth = setting, len(path.parts)
    return best


# -------------------------------------------------------------------- rules
def _ktt(error: KttError) -> str:
    return str(error)


def _missing_value(error) -> str:
    missing = missing_settings()
    if not missing:
        match = re.search(r"Missing mandatory value: ?([\w.\[\]]+)", str(error))
        missing = [match.group(1)] if match else []
    if not missing:
        return f"a required setting is missing: {_first_line(error)}"
    return missing_message(missing)


def missing_message(keys: list[str]) -> str:
    """``missing required setting dataset.path: give it on the command line (dataset.path=...)``."""
    plural = "s" if len(keys) > 1 else ""
    return (f"missing required setting{plural} {', '.join(keys)}: give {'them' if plural else 'it'} on the "
            f"command line ({' '.join(f'{key}=...' for key in keys)})")


def _omegaconf(error) -> str:
    key = getattr(error, "full_key", None)
    text = _first_line(error)
    if key:
        return f"invalid setting {key}: {text}"
    return f"invalid config: {text}"


def _instantiation(error) -> str | None:
    cause = error.__cause__ or error.__context__
    if cause is not None:
        message = user_message(cause)
        if message:
            return message
    text = str(error)
    key = re.search(r"full_key: (\S+)", text)
    key = key.group(1) if key else None
    located = re.search(r"Error locating target '([^']+)'", text)
    if located:
        where = f"{key}._target_" if key else "_target_"
        return f"cannot find {located.group(1)!r} (set by {where}); check the class path"
    if isinstance(cause, TypeError):
        target = re.search(r"target '([^']+)'", text)
        what = key or (target.group(1) if target else "an object")
        return f"invalid settings for {what}: {_first_line(cause)}"
    return None


def _hydra(error) -> str | None:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("See https://hydra.cc")]
    return "; ".join(lines) if lines else None


_WRITE = ("set {setting} to a place you can write, or fix its permissions",
          "fix its permissions, or run ktt from a folder you can write (outputs/, mlflow.db and .ktt/ go there)")
_SPACE = ("free some space, or set {setting} to another disk", "free some space, or use another disk")
_PATH = ("check {setting}", "check the path")
_NET = ("check that the server is up and its address ({setting})", "check that the server is up and its address")
#: errno -> (what happened, fix when a setting names the path, fix otherwise)
_ERRNOS = {
    errno.EACCES: ("permission denied", *_WRITE),
    errno.EPERM: ("operation not permitted", *_WRITE),
    errno.EROFS: ("read-only file system", *_WRITE),
    errno.ENOSPC: ("no space left on device", *_SPACE),
    errno.EDQUOT: ("disk quota exceeded", *_SPACE),
    errno.ENOENT: ("no such file or directory", *_PATH),
    errno.ENOTDIR: ("a part of the path is not a directory", *_PATH),
    errno.EISDIR: ("is a directory, not a file", *_PATH),
    errno.EEXIST: ("already exists", "remove it or change {setting}", "remove it"),
    errno.ENAMETOOLONG: ("file name too long", "shorten {setting}", "use a shorter path"),
    errno.ELOOP: ("too many levels of symbolic links", *_PATH),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n)", "raise the limit (ulimit -n)"),
    errno.ECONNREFUSED: ("connection refused", *_NET),
    errno.EHOSTUNREACH: ("host unreachable", *_NET),
    errno.ENETUNREACH: ("network unreachable", *_NET),
    errno.ETIMEDOUT: ("connection timed out", *_NET),
}
#: Without a path, these say nothing the user can act on: left to the traceback.
_NEEDS_PATH = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP}


def _os_error(error: OSError) -> str | None:
    known = _ERRNOS.get(error.errno)
    if known is None:
        return None
    what, with_setting, without = known
    filename = error.filename
    if filename is None or not isinstance(filename, (str, bytes, os.PathLike)):
        if error.errno in _NEEDS_PATH:
            return None
        return f"{what}; {without}"
    name = os.fsdecode(filename)
    setting = _setting_for(name)
    if error.filename2 is not None:
        name = f"{name} -> {os.fsdecode(error.filename2)}"
    if setting:
        return f"{what}: {name} (from {setting}); {with_setting.format(setting=setting.split('=', 1)[0])}"
    return f"{what}: {name}; {without}"


def _tracking_uri() -> str | None:
    import sys

    mlflow = sys.modules.get("mlflow")
    try:
        return mlflow.get_tracking_uri() if mlflow is not None else None
    except Exception:  # noqa: BLE001
        return None


def _mlflow(error) -> str:
    text = str(getattr(error, "message", None) or error)
    uri = _tracking_uri()
    where = f"tracking.uri={uri!r}" if uri else "tracking.uri"
    if type(error).__name__ == "UnsupportedModelRegistryStoreURIException" or "unsupported URI" in text:
        schemes = re.search(r"Supported URI schemes are: \[([^\]]*)\]", text)
        listed = ", ".join(s.strip(" '") for s in schemes.group(1).split(",") if s.strip(" '")) if schemes else ""
        return (f"MLflow does not support {where}" + (f" (schemes: {listed})" if listed else "")
                + "; use e.g. tracking.uri=sqlite:///mlflow.db or tracking.uri=http://host:5000")
    if "MLFLOW_ALLOW_FILE_STORE" in text:
        return (f"{where} is a folder (MLflow's file store, refused by MLflow 3 unless MLFLOW_ALLOW_FILE_STORE=true); "
                "use a database or a server, e.g. tracking.uri=sqlite:///mlflow.db")
    first = _first_line(text)
    if re.search(r"\b(API request to|Max retries exceeded|Connection refused|NewConnectionError)", text):
        return f"cannot reach the MLflow tracking server {where}: {first[:300]}; check that it runs"
    return f"MLflow ({where}): {first[:500]}"


def _database(error) -> str:
    from ktt.secrets import mask_error

    uri = _tracking_uri()
    hint = f"; check the database URL (tracking.uri={uri!r} or the dataset's) and that its server is up" if uri \
        else "; check the database URL and that its server is up"
    return f"database error: {mask_error(error)}{hint}"


#: sklearn messages raised while fitting -> ktt's line (cause and fix).
FIT_MESSAGES = (
    ("empty vocabulary", "the training texts have no terms (empty vocabulary): after preprocessing they hold only "
                         "punctuation, stop words or one-letter words; check the data and dataset.text_col"),
    ("no terms remain", "min_df leaves no terms in the vocabulary of the training texts; lower min_df"),
    ("max_df corresponds to < documents than min_df", "min_df leaves no terms in the vocabulary; lower min_df"),
    ("has to be greater than one", "the training split has a single class; the data needs at least two"),
    ("at least 2 classes", "the training split has a single class; the data needs at least two"),
)
_FIT_FUNCTIONS = {"fit", "fit_transform", "_fit", "partial_fit", "_fit_binary", "_partial_fit"}


def _fit_error(error: ValueError) -> str | None:
    """A ValueError that sklearn raised inside a ``fit``: the data cannot be fitted."""
    tb = error.__traceback__
    raised_in, functions = "", set()
    while tb is not None:
        functions.add(tb.tb_frame.f_code.co_name)
        raised_in = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    if not raised_in.startswith("sklearn.") or not functions & _FIT_FUNCTIONS:
        return None
    text = _first_line(error)
    for needle, message in FIT_MESSAGES:
        if needle in text:
            return message
    return f"the model cannot be fitted on this data: {text}"


#: Qualified exception class name -> rule (error -> one line, or None: not a user error).
RULES: dict[str, Callable[[BaseException], str | None]] = {
    f"{KttError.__module__}.KttError": _ktt,
    # config: a setting left out (dataset.path: ???), a bad value or interpolation, a bad _target_
    "omegaconf.errors.MissingMandatoryValue": _missing_value,
    "omegaconf.errors.InterpolationToMissingValueError": _missing_value,
    "omegaconf.errors.OmegaConfBaseException": _omegaconf,
    "hydra.errors.InstantiationException": _instantiation,
    "hydra.errors.HydraException": _hydra,
    # files and permissions (cache, outputs, data, exports), network
    "builtins.OSError": _os_error,
    # the tracking store
    "mlflow.exceptions.MlflowException": _mlflow,
    "sqlalchemy.exc.SQLAlchemyError": _database,
    # data that the model cannot fit
    "builtins.ValueError": _fit_error,
}
