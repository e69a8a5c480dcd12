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


class InvalidParameter(KttError):
    """A hyperparameter outside its allowed values: ``invalid <name>=<value> (allowed: <allowed>)``.

    Parameters
    ----------
    name : str
        The parameter (the constructor's name for it).
    value
        The value given.
    allowed : str
        The allowed values, in words.
    """

    def __init__(self, name: str, value: Any, allowed: str):
        super().__init__(f"invalid {name}={value!r} (allowed: {allowed})")
        self.name, self.value, self.allowed = name, value, allowed

    def renamed(self, name: str) -> "InvalidParameter":
        """The same error for the setting ``name`` that gave the parameter its value."""
        return InvalidParameter(name, self.value, self.allowed)


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
    return dict(_leaves(config if isinstance(config, dict) else {}))


def _leaves(node: Any, lists: bool = False, prefix: str = ""):
    """``(dotted key, value)`` of each leaf of a plain config container, Hydra's own ``hydra`` key left out.

    Lists are leaves, or walked into (``lists``: keys ``a.0``, ``a.1``).
    """
    if isinstance(node, dict) or (lists and isinstance(node, list)):
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            if prefix or key != "hydra":
                yield from _leaves(value, lists, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


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
    return [key for key, value in _leaves(raw, lists=True) if isinstance(value, str) and value == "???"]


def _path_settings() -> list[tuple[Path, str]]:
    """Settings of the context that name a file or folder, as (absolute path, ``key=value``)."""
    pairs: list[tuple[Path, str]] = []
    config_values = _config_values()
    for key, value in config_values.items():
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
    if config_values and config_values.get("tracking.uri") in (None, ""):  # MLflow's default store, in the cwd
        for name in ("mlflow.db", "mlruns"):
            pairs.append((Path(os.path.abspath(name)), "tracking.uri=null (./mlflow.db)"))
    for path, setting in (_context.get("paths") or {}).items():
        pairs.append((Path(os.path.abspath(path)), setting))
    return pairs


_FOLDER_KEYS = re.compile(r"(dir|home|root|folder|path|uri)$")


#: Which settings a library's files come from (the library that raised an OSError narrows the candidates).
_AREAS = {"mlflow": ("tracking.",), "alembic": ("tracking.",), "hydra": ("hydra.",), "bentoml": ("export.",),
          "ktt.export": ("export.",), "ktt.data": ("dataset.", "paths."), "ktt.tracking": ("tracking.",)}


def _origin(error: BaseException) -> tuple[str, ...]:
    """Setting prefixes of the library that raised ``error`` (its deepest non-stdlib frame), or ()."""
    tb, modules = error.__traceback__, []
    while tb is not None:
        modules.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    for module in reversed(modules):
        for library, prefixes in _AREAS.items():
            if module == library or module.startswith(library + "."):
                return prefixes
    return ()


def _setting_for(filename: str, origin: tuple[str, ...] = ()) -> str | None:
    """The setting (``key=value``) that names ``filename``, a folder above it or a file below it.

    Settings of the ``origin`` area (e.g. ``tracking.`` when MLflow failed) come
    first; then the most specific one wins; between equally specific ones, a folder
    setting (``*_dir``, ``*home``, ...) for a path below it, the setting itself for the path.
    """
    target = Path(os.path.abspath(filename))
    best, rank = None, None
    for path, setting in _path_settings():
        key = setting.split("=", 1)[0]
        area = 1 if origin and key.startswith(origin) else 0
        if target == path:
            score = (area, len(path.parts), 2)
        elif path in target.parents:
            score = (area, len(path.parts), 1 if _FOLDER_KEYS.search(key) and not key.endswith(".path") else 0)
        elif target in path.parents:
            score = (area, len(target.parts), 0)
        else:
            continue
        if rank is None or score > rank:
            best, rank = setting, score
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
    if not key and "interpolation" in text.lower():
        broken = broken_settings()
        if broken:
            return f"invalid setting {broken[0]}: {text}"
    if key:
        return f"invalid setting {key}: {text}"
    return f"invalid config: {text}"


def broken_settings(config: Any = None) -> list[str]:
    """Settings (``key=raw value``) of the config (default: the context's) whose interpolation cannot be resolved."""
    config = _context.get("config") if config is None else config
    if config is None:
        return []
    try:
        from omegaconf import OmegaConf

        if not OmegaConf.is_config(config):
            return []
        raw = OmegaConf.to_container(config, resolve=False)
    except Exception:  # noqa: BLE001
        return []
    broken = []
    for key, value in _leaves(raw):
        if isinstance(value, str) and "${" in value:
            try:
                OmegaConf.select(config, key, throw_on_resolution_failure=True, throw_on_missing=False)
            except Exception:  # noqa: BLE001 - this one does not resolve
                broken.append(f"{key}={value}")
    return broken


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
    text = str(error)
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if missing and getattr(error, "options", None) is not None:  # MissingConfigException: an unknown group option
        group, option = missing.groups()
        return f"unknown {group} {option!r} (available: {', '.join(error.options) or 'none'})"
    text = text.split("\nConfig search path:", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("See https://hydra.cc", "Error parsing override"))]
    cause = error.__cause__
    if cause is not None and _first_line(cause) and _first_line(cause) not in lines:
        lines.append(_first_line(cause))  # "Error merging override x=abc" needs its why
    override = getattr(error, "override", None)
    if override is not None:  # OverrideParseException
        return (f"cannot parse the override {override!r}: {'; '.join(lines) or 'syntax error'} "
                "(key=value; quote values with special characters, e.g. key='a,b')")
    return "; ".join(lines) if lines else None


_WRITE = ("fix its permissions, or set {setting} to a place this user can read and write",
          "fix its permissions, or run ktt from a folder this user can write (outputs/, mlflow.db, mlruns/ and "
          ".ktt/ go there)")
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
    setting = _setting_for(name, _origin(error))
    if error.filename2 is not None:
        name = f"{name} -> {os.fsdecode(error.filename2)}"
    if setting:
        return f"{what}: {name} (from {setting}); {with_setting.format(setting=setting.split('=', 1)[0])}"
    return f"{what}: {name}; {without}"


def _tracking_uri() -> str | None:
    """The tracking store in use, if ktt's tracking is loaded (an error message never imports MLflow)."""
    import sys

    store = sys.modules.get("ktt.tracking.store")
    try:
        return store.current_uri() if store is not None else None
    except Exception:  # noqa: BLE001
        return None


def _is_a(error: BaseException | None, qualified_name: str) -> bool:
    """``isinstance`` by qualified class name (no import)."""
    return error is not None and any(f"{c.__module__}.{c.__qualname__}" == qualified_name for c in type(error).__mro__)


def _mlflow(error) -> str:
    cause = error.__cause__ or error.__context__
    if _is_a(cause, "sqlalchemy.exc.SQLAlchemyError"):  # the store's database said no
        return _database(cause)
    text = "\n".join(line for line in str(getattr(error, "message", None) or error).splitlines()
                     if not line.strip().startswith("(raised as a result of"))
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
    refused = re.search(r"API request to endpoint (\S+) failed with error code (\d+)", text)
    if refused:  # the server answered, and said no: a proxy, --allowed-hosts, authentication, permissions
        body = re.search(r"Response body: '([^']*)'", text)
        why = f": {body.group(1)[:200]}" if body and body.group(1).strip() else ""
        return (f"the MLflow tracking server {where} refused {refused.group(1)} (HTTP {refused.group(2)}{why}); "
                "check the server's settings (--allowed-hosts, authentication, permissions) and tracking.uri")
    if re.search(r"\b(API request to|Max retries exceeded|Connection refused|NewConnectionError)", text):
        return f"cannot reach the MLflow tracking server {where}: {first[:300]}; check that it runs"
    if "experiment name" in first.lower():
        return f"MLflow: {first[:300]}; set tracking.experiment to a non-empty name"
    return f"MLflow: {first[:500]} ({where})"


def _database(error) -> str:
    from ktt.secrets import mask_error

    uri = _tracking_uri() or ""
    if uri.startswith("sqlite:"):
        hint = (f"; check that {uri.split(':///', 1)[-1]} is an MLflow database this user can write, in a writable "
                "folder (tracking.uri)")
    elif uri:
        hint = f"; check tracking.uri={uri!r} (or the dataset's url) and that the database server is up"
    else:
        hint = "; check the database URL and that its server is up"
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
#: Libraries whose ValueError inside a fit is about the data or the settings it was given.
FIT_LIBRARIES = ("sklearn.", "joblib.", "scipy.")
_FIT_FUNCTIONS = {"fit", "fit_transform", "_fit", "partial_fit", "_fit_binary", "_partial_fit"}


def _fit_error(error: ValueError) -> str | None:
    """A ValueError that sklearn (or joblib, scipy) raised inside a ``fit``: the data or settings cannot be fitted."""
    tb = error.__traceback__
    raised_in, functions = "", set()
    while tb is not None:
        functions.add(tb.tb_frame.f_code.co_name)
        raised_in = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    text = _first_line(error)
    if raised_in.startswith("joblib.") and not functions & _FIT_FUNCTIONS:  # e.g. hydra.launcher.n_jobs=0
        return f"invalid parallel settings: {text}; check n_jobs and hydra.launcher.n_jobs"
    if not raised_in.startswith(FIT_LIBRARIES) or not functions & _FIT_FUNCTIONS:
        return None
    for needle, message in FIT_MESSAGES:
        if needle in text:
            return message
    return f"the model cannot be fitted with these settings and data: {text}; check the model's settings"


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
