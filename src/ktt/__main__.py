"""``python -m ktt``: the Hydra entry point."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ktt.cli import catch_user_errors, precheck, register_resolvers


@hydra.main(version_base="1.3", config_path="pkg://ktt.conf", config_name="config")
@catch_user_errors
def _run(cfg: DictConfig) -> float:
    from ktt.train import train

    return train(cfg)


def main() -> None:
    """Check the command line (one-line errors for unknown keys), then hand over to Hydra."""
    register_resolvers()
    precheck(sys.argv[1:])
    _run()


if __name__ == "__main__":
    main()
