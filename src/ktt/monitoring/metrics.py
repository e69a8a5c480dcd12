"""The monitoring service's Prometheus metrics (served at ``/metrics``).

Always exported:

================================================  ======================================================
``ktt_drift_rows_received_total``                 rows accepted by ``POST /iterate``
``ktt_drift_rows_rejected_total{reason}``         rows of refused requests (``json``, ``format``,
                                                  ``width``, ``value``, ``size``; 0 rows when uncountable)
``ktt_drift_requests_rejected_total{reason}``     refused requests
``ktt_drift_window_rows``                         rows in the current window
``ktt_drift_window_size``                         the configured window size
``ktt_drift_reference_rows``                      rows in the reference (or gathered so far)
``ktt_drift_engine_ready``                        1 once Evidently is loaded
``ktt_drift_calculations_total``                  drift calculations done
``ktt_drift_calculation_errors_total``            calculations that failed
``ktt_drift_calculation_duration_seconds``        duration of the last calculation
``ktt_drift_last_calculation_timestamp_seconds``  Unix time of the last calculation
================================================  ======================================================

``data_drift`` monitor: ``ktt_drift_share`` (share of drifted features),
``ktt_drift_drifted_features``, ``ktt_drift_dataset_drift`` (0/1),
``ktt_drift_feature_score{feature,stattest}`` (p-value or distance, see the label)
and ``ktt_drift_feature_drifted{feature}`` (0/1).

``cat_target_drift`` monitor: ``ktt_drift_prediction_score{stattest}`` and
``ktt_drift_prediction_drifted`` (0/1).

A monitor that is not configured exports none of its metrics.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from ktt.monitoring.rows import REJECT_REASONS


class DriftMetrics:
    """The metrics of one monitoring service, in their own registry.

    Parameters
    ----------
    monitors : list of str
        The configured monitors; only their drift metrics are created.
    window_size : int
    """

    def __init__(self, monitors, window_size: int):
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        r = self.registry
        self.rows_received = Counter("ktt_drift_rows_received", "Rows accepted by POST /iterate", registry=r)
        self.rows_rejected = Counter("ktt_drift_rows_rejected", "Rows of requests refused by POST /iterate",
                                     ["reason"], registry=r)
        self.requests_rejected = Counter("ktt_drift_requests_rejected", "Requests refused by POST /iterate",
                                         ["reason"], registry=r)
        for reason in REJECT_REASONS:  # every series exists from the start, at 0
            self.rows_rejected.labels(reason=reason)
            self.requests_rejected.labels(reason=reason)
        self.window_rows = Gauge("ktt_drift_window_rows", "Rows in the current window", registry=r)
        self.window_size = Gauge("ktt_drift_window_size", "Configured size of the current window", registry=r)
        self.window_size.set(window_size)
        self.reference_rows = Gauge("ktt_drift_reference_rows", "Rows in the reference (or gathered so far)",
                                    registry=r)
        self.engine_ready = Gauge("ktt_drift_engine_ready", "1 once Evidently is loaded", registry=r)
        self.calculations = Counter("ktt_drift_calculations", "Drift calculations done", registry=r)
        self.calculation_errors = Counter("ktt_drift_calculation_errors", "Drift calculations that failed",
                                          registry=r)
        self.duration = Gauge("ktt_drift_calculation_duration_seconds", "Duration of the last drift calculation",
                              registry=r)
        self.last_calculation = Gauge("ktt_drift_last_calculation_timestamp_seconds",
                                      "Unix time of the last drift calculation", registry=r)
        self.data_drift = "data_drift" in monitors
        self.prediction_drift = "cat_target_drift" in monitors
        if self.data_drift:
            self.share = Gauge("ktt_drift_share", "Share of pooled features that drifted", registry=r)
            self.drifted_features = Gauge("ktt_drift_drifted_features", "Pooled features that drifted", registry=r)
            self.dataset_drift = Gauge("ktt_drift_dataset_drift", "1 if the share of drifted features reaches "
                                       "drift_share", registry=r)
            self.feature_score = Gauge("ktt_drift_feature_score", "Drift score of a pooled feature (p-value or "
                                       "distance, see stattest)", ["feature", "stattest"], registry=r)
            self.feature_drifted = Gauge("ktt_drift_feature_drifted", "1 if a pooled feature drifted", ["feature"],
                                         registry=r)
        if self.prediction_drift:
            self.prediction_score = Gauge("ktt_drift_prediction_score", "Drift score of the predicted class "
                                          "(p-value or distance, see stattest)", ["stattest"], registry=r)
            self.prediction_drifted = Gauge("ktt_drift_prediction_drifted", "1 if the predicted class drifted",
                                            registry=r)

    def rejected(self, reason: str, n_rows: int) -> None:
        """Count a refused request and its rows."""
        self.requests_rejected.labels(reason=reason).inc()
        if n_rows:
            self.rows_rejected.labels(reason=reason).inc(n_rows)

    def set_sizes(self, window_rows: int, reference_rows: int) -> None:
        self.window_rows.set(window_rows)
        self.reference_rows.set(reference_rows)

    def publish(self, result) -> None:
        """Export a :class:`ktt.monitoring.drift.DriftResult` (replacing the previous label sets)."""
        with self._lock:
            self.calculations.inc()
            self.duration.set(result.duration_s)
            self.last_calculation.set(result.calculated_at)
            if self.data_drift and result.data_drift is not None:
                drift = result.data_drift
                self.share.set(drift.share)
                self.drifted_features.set(drift.drifted_features)
                self.dataset_drift.set(int(drift.dataset_drift))
                self.feature_score.clear()
                self.feature_drifted.clear()
                for name, column in drift.features.items():
                    self.feature_score.labels(feature=name, stattest=column.stattest).set(column.score)
                    self.feature_drifted.labels(feature=name).set(int(column.drifted))
            if self.prediction_drift and result.prediction_drift is not None:
                self.prediction_score.clear()
                self.prediction_score.labels(stattest=result.prediction_drift.stattest).set(
                    result.prediction_drift.score)
                self.prediction_drifted.set(int(result.prediction_drift.drifted))

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        with self._lock:
            return generate_latest(self.registry)
