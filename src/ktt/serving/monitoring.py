"""The monitoring hook: ship each batch's pooled features and scores to the monitoring service.

Rows follow the original KTT format, ``[target placeholder, pooled features...,
scores...]``, POSTed as ``{"data": rows}`` to ``http://EVIDENTLY_HOST:EVIDENTLY_PORT/iterate``.
Sending never blocks or fails a prediction: :meth:`MonitoringClient.submit` puts
the batch on a bounded queue and returns; one background thread posts it with
timeouts. A full queue drops the batch, a refused, slow or failing monitor is a
failure; both are counted in Prometheus metrics that the service's ``/metrics``
exposes.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)

#: Values of the ``reason`` label of failed rows.
FAILURE_REASONS = ("timeout", "connection", "status", "error")
#: Value of the first column of every monitoring row (the target is unknown when serving).
TARGET_PLACEHOLDER = 0.0


@lru_cache(maxsize=1)
def metrics():
    """The hook's Prometheus counters, created once per process (on first use, so that
    BentoML's multiprocess collection is set up by then).

    Returns
    -------
    dict
        ``sent`` (rows delivered), ``failed`` (rows whose POST failed, label ``reason``:
        ``timeout``, ``connection``, ``status``, ``error``) and ``dropped`` (rows dropped
        because the queue was full or the service was stopping).
    """
    from prometheus_client import Counter

    counters = {
        "sent": Counter("ktt_monitoring_rows_sent", "Rows delivered to the monitoring service"),
        "failed": Counter("ktt_monitoring_rows_failed", "Rows whose POST to the monitoring service failed",
                          ["reason"]),
        "dropped": Counter("ktt_monitoring_rows_dropped", "Rows dropped before sending (queue full)"),
    }
    for reason in FAILURE_REASONS:  # every series exists from the start, at 0
        counters["failed"].labels(reason=reason)
    return counters


def monitoring_rows(pooled_features: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Rows ``[target placeholder, pooled features..., scores...]`` of one batch.

    Parameters
    ----------
    pooled_features : ndarray of shape (n, k)
        :func:`ktt.pooling.pool_features` of the batch's tf-idf features.
    scores : ndarray of shape (n, n_classes)
        The model's per-leaf scores.

    Returns
    -------
    ndarray of shape (n, 1 + k + n_classes)
    """
    n, k = pooled_features.shape
    rows = np.empty((n, 1 + k + scores.shape[1]), dtype=np.float64)
    rows[:, 0] = TARGET_PLACEHOLDER
    rows[:, 1 : 1 + k] = pooled_features
    rows[:, 1 + k :] = scores
    return rows


class MonitoringClient:
    """Posts batches of rows to ``url`` from a background thread.

    Parameters
    ----------
    url : str
        The monitoring endpoint, e.g. ``http://localhost:5001/iterate``.
    queue_size : int
        Batches that may wait; a batch submitted to a full queue is dropped.
    timeout_s : float
        Connect and read timeout of each POST.

    Examples
    --------
    >>> client = MonitoringClient("http://127.0.0.1:5001/iterate")  # doctest: +SKIP
    >>> client.submit([[0.0, 0.1, 0.9]])  # queued; returns at once  # doctest: +SKIP
    True
    """

    def __init__(self, url: str, queue_size: int = 64, timeout_s: float = 2.0):
        self.url = url
        self.timeout_s = timeout_s
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._session = None
        self.metrics = metrics()

    def submit(self, rows) -> bool:
        """Queue one batch of rows (an array or a list of lists); never blocks.

        Returns
        -------
        bool
            False if the batch was dropped (queue full).
        """
        if len(rows) == 0:
            return True
        self._ensure_thread()
        try:
            self._queue.put_nowait(rows)
            return True
        except queue.Full:
            self.metrics["dropped"].inc(len(rows))
            return False

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop the thread after the batch in flight; still-queued batches are dropped and counted."""
        thread = self._thread
        if thread is None:
            return
        dropped = 0
        while True:
            try:
                dropped += len(self._queue.get_nowait())
            except queue.Empty:
                break
        if dropped:
            self.metrics["dropped"].inc(dropped)
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            pass
        thread.join(timeout_s)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ktt-monitoring", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        import requests

        self._session = requests.Session()
        while True:
            rows = self._queue.get()
            if rows is None:
                break
            self._post(rows)
        self._session.close()

    def _post(self, rows) -> None:
        import requests

        try:
            body = json.dumps({"data": rows.tolist() if isinstance(rows, np.ndarray) else rows})
            response = self._session.post(
                self.url, data=body, headers={"content-type": "application/json"},
                timeout=(self.timeout_s, self.timeout_s),
            )
            if response.status_code >= 300:
                reason = "status"
            else:
                self.metrics["sent"].inc(len(rows))
                return
        except requests.Timeout:
            reason = "timeout"
        except requests.ConnectionError:
            reason = "connection"
        except Exception:  # never let the thread die
            log.exception("monitoring POST to %s failed", self.url)
            reason = "error"
        self.metrics["failed"].labels(reason=reason).inc(len(rows))
        log.debug("monitoring POST to %s failed (%s); %d rows lost", self.url, reason, len(rows))
