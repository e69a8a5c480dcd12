"""Command-line plumbing: one-line errors for bad overrides and for user errors in a job."""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf


CONFIG_MODULE = "ktt.conf"
CONFIG_NAME = "config"


def register_resolvers() -> None:
    """Resolvers the configs use.

    ``${stem:path}`` is a file's name without its suffix; ``${project_dir:}`` the
    folder of the ktt checkout (where ``src/`` is, for an editable install).
    """
    if not OmegaConf.has_resolver("stem"):
        OmegaConf.register_new_resolver("stem", lambda path: Path(str(path)).stem)
    if not OmegaConf.has_resolver("project_dir"):
        OmegaConf.register_new_resolver("project_dir", lambda: str(Path(__file__).resolve().parents[2]))


def fail(message: str, status: int = 2) -> None:
    """Print ``ktt: error: <message>`` on stderr and exit."""
    from ktt.console import fail as console_fail

    console_fail(message, status)


def catch_user_errors(task):
    """Turn an error the user caused (see :mod:`ktt.errors`) into one line on stderr and exit status 2.

    Ctrl-C is one line too (``ktt: error: interrupted``, status 130, as shells
    report an interrupted command). A bug keeps its traceback. In a multirun
    errors are re-raised instead, so the launcher records the failed job and goes
    on with the others, and the sweep handles the interruption.
    """

    @functools.wraps(task)
    def wrapper(cfg):
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from ktt.console import report
        from ktt.errors import set_context

        hydra_cfg = HydraConfig.get()
        set_context(cfg, paths={hydra_cfg.runtime.output_dir: f"hydra.run.dir={hydra_cfg.runtime.output_dir}"})
        try:
            return task(cfg)
        except (Exception, KeyboardInterrupt) as error:
            if hydra_cfg.mode == RunMode.MULTIRUN:
                raise
            report(error)  # exits, unless it is a bug
            raise

    return wrapper


def command_argv(argv: list[str] | None, usage: str) -> list[str] | None:
    """A ``python -m ktt.<command>``'s arguments without ``--verbose``, its console set up; None after ``--help``."""
    from ktt import console

    argv = console.pop_verbose(sys.argv[1:] if argv is None else list(argv))
    console.setup()
    if any(arg in ("-h", "--help") for arg in argv):
        print(usage)
        return None
    return argv


def run_command(command) -> None:
    """Run a command's body: a user error that escapes it is one line and status 2 (a bug keeps its traceback).

    Hydra prints errors raised outside the task (its output folder, callbacks,
    config composition) itself, with a traceback, unless ``HYDRA_FULL_ERROR`` is
    set: it is set here so that they reach :func:`ktt.console.report`.
    """
    from ktt.console import VERBOSE_ENV, report, verbose

    os.environ[VERBOSE_ENV] = "1" if verbose() else "0"  # decided before HYDRA_FULL_ERROR is set below
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        return command()
    except Exception as error:
        report(error)
        raise


def precheck(argv: list[str]) -> None:
    """Compose the config once, as Hydra will, and report a bad override in one line.

    Unknown keys (``los=hinge``), unknown group options (``model=foo``), unknown
    flags and required settings left out (``dataset=file`` without ``dataset.path``)
    exit with status 2 and a line naming the key and what is allowed. Sweeps are
    checked with their first value. Anything this check cannot judge is left to Hydra.
    """
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.error = lambda message: fail(f"{message} (see --help)")  # argparse's usage + error, in one line
    args = parser.parse_args(argv)
    if args.help or args.hydra_help or args.info or args.shell_completion or args.config_dir \
            or args.config_path or args.config_name or args.experimental_rerun:
        return
    overrides = _first_values(args.overrides)
    if overrides is None:
        return
    message = _composition_error(overrides, _hydra_paths(args.overrides), values=not args.cfg)
    if message:
        fail(message)


def _hydra_paths(overrides: list[str]) -> dict[str, str]:
    """``{folder: "hydra.run.dir=<folder>"}`` for the ``hydra.run.dir``/``hydra.sweep.dir`` overrides (to name
    the setting behind an error in the folder; Hydra creates it before the job's config exists)."""
    found = (re.match(r"^hydra\.(?:run|sweep)\.dir=(.+)$", o) for o in overrides)
    return {match.group(1): match.group(0) for match in found if match}


def _first_values(overrides: list[str]) -> list[str] | None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None  # a syntax error: Hydra explains those itself
    first = []
    for override in parsed:
        if override.key_or_group.startswith("hydra"):
            continue
        if not override.is_sweep_override():
            first.append(override.input_line)
            continue
        try:
            value = next(iter(override.sweep_string_iterator()))
        except Exception:
            continue  # e.g. interval(...) for a sweeper: nothing to check here
        prefix = {OverrideType.ADD: "+", OverrideType.FORCE_ADD: "++"}.get(override.type, "")
        first.append(f"{prefix}{override.key_or_group}={value}")
    return first


def _composition_error(overrides: list[str], hydra_paths: dict[str, str] | None = None,
                       values: bool = True) -> str | None:
    """The first problem of the composed config: a bad override, then (with ``values``) a missing or bad value."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException

    from ktt.errors import missing_message, missing_settings, set_context

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
            try:
                cfg = compose(CONFIG_NAME, overrides=overrides)
            except MissingConfigException as error:
                return _missing_option_message(error)
            except HydraException as error:
                return _override_message(str(error), overrides)
            set_context(cfg, paths=hydra_paths)  # names the setting behind a later error
            if not values:  # --cfg job: show the config as it is
                return None
            missing = missing_settings(cfg)
            return missing_message(missing) if missing else _settings_error(cfg)
    finally:
        GlobalHydra.instance().clear()


def setting_constraints() -> dict[str, list]:
    """The top-level settings of ``conf/config.yaml`` that no component validates, checked before Hydra starts."""
    from ktt.params import Options

    return {
        "reference": [bool],
        "reference_split": [Options(("train", "val", "test"))],
        "plots": [bool],
        "progress": [bool],
        "evaluate_test": [bool],
        "register": [bool],
        "objective": [str],
        "paths.cache_dir": [str],
    }


def _settings_error(cfg) -> str | None:
    """``invalid reference_split='nope' (allowed: train, val, test)`` for a bad top-level setting, else None."""
    from ktt.errors import KttError
    from ktt.params import validate_params

    values, constraints = {}, {}
    for key, allowed in setting_constraints().items():
        try:
            values[key] = OmegaConf.select(cfg, key, throw_on_resolution_failure=True, throw_on_missing=True)
        except Exception:  # noqa: BLE001 - an interpolation: judged when the job resolves it
            continue
        constraints[key] = allowed
    try:
        validate_params(values, constraints)
    except KttError as error:
        return str(error)
    return None


def _missing_option_message(error) -> str:
    match = re.search(r"Could not find '([^']+)/([^'/]+)'", str(error))
    options = ", ".join(error.options or []) if getattr(error, "options", None) else ""
    if match:
        group, option = match.groups()
        return f"unknown {group} {option!r} (available: {options or 'none'})"
    return str(error).strip().splitlines()[0]


def _override_message(text: str, overrides: list[str]) -> str:
    from hydra import compose

    match = re.search(r"Could not (?:override|append to config|delete from config)\.? '?([^'.\s]+(?:\.[^'.\s]+)*)'?", text)
    if not match:
        match = re.search(r"Key '([^']+)' is not in struct", text)
    if not match:
        return text.strip().splitlines()[0]
    key = match.group(1)
    parent, _, leaf = key.rpartition(".")
    rest = [o for o in overrides if not o.lstrip("+~").startswith(key)]
    try:
        node = compose(CONFIG_NAME, overrides=rest)
        node = OmegaConf.select(node, parent) if parent else node
        known = sorted(str(k) for k in node.keys()) if node is not None and hasattr(node, "keys") else []
    except Exception:
        known = []
    where = f"under '{parent}'" if parent else "at the top level"
    return f"unknown key '{key}' (keys {where}: {', '.join(known)})"
