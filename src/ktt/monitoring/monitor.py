"""The monitor's data: a reference and a window of current rows, and when to compare them.

:class:`DriftMonitor` applies the ``evidently.yaml`` options (see
:class:`ktt.monitoring.config.MonitorConfig`): where the reference comes from
(``use_reference``), how big it must be (``min_reference_size``), how many current
rows are compared (``window_size``) and whether the reference moves
(``moving_reference``). It is thread-safe: the HTTP handlers add rows while the
calculating thread takes snapshots. It computes nothing itself.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from ktt.monitoring.reference import Batch


@dataclass
class Snapshot:
    """What one calculation compares: the reference, the current window, rows accepted so far."""

    reference: Batch
    current: Batch
    rows_received: int


class DriftMonitor:
    """Reference and current window of the monitoring service.

    Parameters
    ----------
    config : ktt.monitoring.config.MonitorConfig
    reference : Batch, optional
        The reference set's rows; required when ``config.use_reference``.

    Examples
    --------
    >>> monitor = DriftMonitor(config, reference)  # doctest: +SKIP
    >>> monitor.add(batch)                          # doctest: +SKIP
    >>> snapshot = monitor.take_snapshot()          # None until there is something to compare
    """

    def __init__(self, config, reference: Batch | None = None):
        if config.use_reference and reference is None:
            raise ValueError("use_reference is true: pass the reference set")
        self.config = config
        self._n_features = len(config.features)
        self._lock = threading.Lock()
        self._reference = reference if config.use_reference else None
        self.reference_source = "file" if config.use_reference else "received rows"
        self._gathered: list[Batch] = []
        self._gathered_rows = 0
        self._window: deque[Batch] = deque()
        self._window_rows = 0
        self._new_rows = 0
        self.rows_received = 0

    # ----------------------------------------------------------------- rows in
    def add(self, batch: Batch) -> None:
        """Take accepted rows: into the reference while it is being gathered, then into the window."""
        with self._lock:
            self.rows_received += len(batch)
            if self._reference is None:
                needed = self.config.reference_target - self._gathered_rows
                head = Batch(batch.features[:needed], batch.predictions[:needed])
                self._gathered.append(head)
                self._gathered_rows += len(head)
                batch = Batch(batch.features[needed:], batch.predictions[needed:])
                if self._gathered_rows >= self.config.reference_target:
                    self._reference = Batch.concat(self._gathered, self._n_features)
                    self._gathered, self._gathered_rows = [], 0
            if len(batch):
                self._window.append(batch)
                self._window_rows += len(batch)
                self._new_rows += len(batch)
                while self._window and self._window_rows - len(self._window[0]) >= self.config.window_size:
                    self._window_rows -= len(self._window.popleft())

    # ------------------------------------------------------------ comparisons
    def take_snapshot(self) -> Snapshot | None:
        """The reference and the window to compare now, or None (see :attr:`status`).

        A snapshot is taken when the reference has at least ``min_reference_size``
        rows, the window holds ``window_size`` rows and rows arrived since the last
        snapshot. With ``moving_reference`` the window then becomes the reference
        and the window starts empty.
        """
        with self._lock:
            if self._waiting() is not None:
                return None
            current = Batch.concat(list(self._window), self._n_features).tail(self.config.window_size)
            snapshot = Snapshot(self._reference, current, self.rows_received)
            self._new_rows = 0
            if self.config.moving_reference:
                self._reference = current
                self.reference_source = "moving window"
                self._window.clear()
                self._window_rows = 0
            return snapshot

    @property
    def status(self) -> str:
        """Why no calculation is due, or ``ready``."""
        with self._lock:
            return self._waiting() or "ready"

    def _waiting(self) -> str | None:
        reference_rows = self._reference_rows()
        if reference_rows < self.config.min_reference_size or self._reference is None:
            target = self.config.reference_target if self._reference is None else self.config.min_reference_size
            return f"waiting for the reference ({reference_rows} of {target} rows)"
        window_rows = min(self._window_rows, self.config.window_size)
        if window_rows < self.config.window_size:
            return f"waiting for a full window ({window_rows} of {self.config.window_size} rows)"
        if self._new_rows == 0:
            return "no new rows since the last calculation"
        return None

    def _reference_rows(self) -> int:
        return len(self._reference) if self._reference is not None else self._gathered_rows

    @property
    def reference_rows(self) -> int:
        """Rows in the reference (or gathered so far)."""
        with self._lock:
            return self._reference_rows()

    @property
    def window_rows(self) -> int:
        """Rows in the current window."""
        with self._lock:
            return min(self._window_rows, self.config.window_size)
