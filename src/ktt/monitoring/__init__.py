"""Production monitoring of ktt models: drift service, Prometheus metrics, deployable stack.

* ``python -m ktt.monitoring --config evidently.yaml`` runs the drift service
  (:mod:`ktt.monitoring.service`): the inference service POSTs its rows to
  ``/iterate``, drift of the pooled features and of the predicted class is
  computed with Evidently in a background thread (:mod:`ktt.monitoring.drift`)
  and exported at ``/metrics`` (:mod:`ktt.monitoring.metrics`).
* :func:`ktt.monitoring.bundle.write_bundle` writes a docker-compose stack
  (inference, monitoring, Prometheus, Grafana) around a bento;
  :func:`ktt.monitoring.dashboard.build_dashboard` its Grafana dashboard.

This package needs only ``ktt.errors`` and ``ktt.params`` from the rest of ktt, so
that the monitoring image carries just those files and its own.
"""

from ktt.monitoring.config import MonitorConfig, load_config

__all__ = ["MonitorConfig", "load_config"]
