"""Progress reporting for long steps."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger("ktt")


@contextlib.contextmanager
def stage(name: str, timings: dict[str, float] | None = None, progress: bool = False) -> Iterator[None]:
    """Log the start and end of a step with its duration (also stored in ``timings[name]``).

    With ``progress``, a live bar on stderr shows the elapsed time while the step
    runs (for steps such as a single sklearn ``fit`` that report no progress of
    their own).
    """
    log.info("%s ...", name)
    start = time.perf_counter()
    with _elapsed_bar(name, progress):
        yield
    elapsed = time.perf_counter() - start
    if timings is not None:
        timings[name] = elapsed
    log.info("%s done in %.1f s", name, elapsed)


@contextlib.contextmanager
def _elapsed_bar(name: str, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm

    done = threading.Event()
    bar = tqdm(desc=name, bar_format="{desc}: {elapsed} elapsed", leave=False, disable=None)  # None: only on a terminal

    def tick() -> None:
        while not done.wait(0.5):
            bar.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        bar.close()


@contextlib.contextmanager
def counter(name: str, total: int | None = None, unit: str = " rows", enabled: bool = True) -> Iterator["tqdm"]:
    """A tqdm bar on stderr counting work done (``bar.update(n)``), with ``total`` when it is known.

    Like the other bars, it shows only on a terminal (never in logs or captured
    output), and not at all unless ``enabled``.
    """
    from tqdm.auto import tqdm

    bar = tqdm(desc=name, total=total, unit=unit, unit_scale=total is None or total >= 10_000,
               disable=None if enabled else True)
    try:
        yield bar
    finally:
        bar.close()
