"""Progress reporting for long steps."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Iterator

log = logging.getLogger("ktt")


@contextlib.contextmanager
def stage(name: str, timings: dict[str, float] | None = None) -> Iterator[None]:
    """Log the start and end of a step with its duration (also stored in ``timings[name]``)."""
    log.info("%s ...", name)
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    if timings is not None:
        timings[name] = elapsed
    log.info("%s done in %.1f s", name, elapsed)
