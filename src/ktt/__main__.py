"""``python -m ktt``: the Hydra entry point."""

from __future__ import annotations

import gc
import sys

import hydra
from omegaconf import DictConfig

from ktt import console
from ktt.cli import catch_user_errors, precheck, register_resolvers, run_command


@hydra.main(version_base="1.3", config_path="pkg://ktt.conf", config_name="config")
@catch_user_errors
def _run(cfg: DictConfig) -> float:
    from ktt.train import train

    return train(cfg)


def main() -> None:
    """Check the command line (one-line errors for unknown keys), then hand over to Hydra.

    ``--verbose`` (or ``-v``) is ktt's own flag: see :mod:`ktt.console`.
    """
    sys.argv[1:] = console.pop_verbose(sys.argv[1:])
    console.setup()
    register_resolvers()
    try:
        run_command(lambda: (precheck(sys.argv[1:]), _run()))
    finally:
        # Python's last garbage collection at exit walks every object of mlflow,
        # sqlalchemy, sklearn...: ~1 s for nothing. Frozen objects are skipped; the
        # process's memory goes back to the OS anyway, and atexit handlers still run.
        gc.freeze()


if __name__ == "__main__":
    main()
