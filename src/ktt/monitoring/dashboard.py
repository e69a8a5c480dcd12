"""The Grafana dashboard of a ktt model's stack: drift (monitoring service) and requests (BentoML).

Metric names are those the services export: the monitoring service's
(:mod:`ktt.monitoring.metrics`), BentoML 1.4's (``bentoml_service_request_total``,
``bentoml_service_request_duration_seconds``, ``bentoml_service_request_in_progress``
and ``bentoml_service_adaptive_batch_size``, labelled ``service_name`` = the bento's
name and ``endpoint``) and the serving runtime's (``ktt_monitoring_rows_*_total``,
``ktt_classify_retries_total``).
``python -m ktt.monitoring.dashboard [model_name]`` prints it as JSON.
"""

from __future__ import annotations

import json
import sys

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DRIFT = '{job=~"$monitoring_job"}'
PREDICT = 'service_name=~"$service", endpoint="/predict"'

#: (title, panel type, unit, [(PromQL, legend)], description); None starts a new row.
PANELS = [
    ("Drift (monitoring service)", "row", None, [], ""),
    ("Dataset drift", "stat", "none", [(f"max(ktt_drift_dataset_drift{DRIFT})", "dataset drift")],
     "1 when the share of drifted pooled features reaches drift_share (data_drift monitor)."),
    ("Prediction drift", "stat", "none", [(f"max(ktt_drift_prediction_drifted{DRIFT})", "prediction drift")],
     "1 when the predicted classes of the window drifted from the reference's (cat_target_drift monitor)."),
    ("Share of drifted features", "timeseries", "percentunit",
     [(f"ktt_drift_share{DRIFT}", "share"), (f"ktt_drift_drifted_features{DRIFT}", "drifted features")],
     "Share of pooled tf-idf features whose distribution drifted, at each calculation."),
    ("Drift score per pooled feature", "timeseries", "none",
     [(f"ktt_drift_feature_score{DRIFT}", "{{feature}} ({{stattest}})")],
     "Evidently's score per feature: a p-value (drift below the threshold) or a distance (drift above it); "
     "the stattest label says which."),
    ("Drifted features", "state-timeline", "none", [(f"ktt_drift_feature_drifted{DRIFT}", "{{feature}}")],
     "1: the feature drifted at that calculation."),
    ("Prediction drift score", "timeseries", "none",
     [(f"ktt_drift_prediction_score{DRIFT}", "{{stattest}}")],
     "Drift score of the predicted class (argmax of the scores) against the reference's predictions."),
    ("Rows received and rejected by the monitor", "timeseries", "rowsps",
     [(f"sum(rate(ktt_drift_rows_received_total{DRIFT}[1m]))", "received"),
      (f"sum by (reason) (rate(ktt_drift_rows_rejected_total{DRIFT}[1m]))", "rejected ({{reason}})")],
     "Rows POSTed to /iterate; rejected rows came in requests refused with 400 or 413."),
    ("Window and reference", "timeseries", "short",
     [(f"ktt_drift_window_rows{DRIFT}", "window rows"), (f"ktt_drift_window_size{DRIFT}", "window size"),
      (f"ktt_drift_reference_rows{DRIFT}", "reference rows")],
     "No calculation until the window is full and the reference has min_reference_size rows."),
    ("Calculations", "timeseries", "s",
     [(f"time() - ktt_drift_last_calculation_timestamp_seconds{DRIFT}", "seconds since the last calculation"),
      (f"ktt_drift_calculation_duration_seconds{DRIFT}", "duration of the last calculation"),
      (f"increase(ktt_drift_calculation_errors_total{DRIFT}[5m])", "errors (5 min)")],
     "Drift is computed every calculation_period_sec when new rows arrived."),
    ("Inference (BentoML)", "row", None, [], ""),
    ("Requests per second (/predict, by status)", "timeseries", "reqps",
     [(f"sum by (http_response_code) (rate(bentoml_service_request_total{{{PREDICT}}}[1m]))",
       "{{http_response_code}}")],
     "400: bad input, 413: body too large, 503: load shed by adaptive batching."),
    ("Latency of /predict", "timeseries", "s",
     [(f"histogram_quantile({q}, sum by (le) (rate(bentoml_service_request_duration_seconds_bucket"
       f"{{{PREDICT}}}[1m])))", f"p{round(q * 100)}") for q in (0.5, 0.9, 0.99)], ""),
    ("Requests in progress", "timeseries", "short",
     [(f"sum(bentoml_service_request_in_progress{{{PREDICT}}})", "in progress")], ""),
    ("Batch size (mean)", "timeseries", "short",
     [('sum(rate(ktt_batch_size_sum[1m])) / clamp_min(sum(rate(ktt_batch_size_count[1m])), 1e-9)',
       "texts per call (model in the HTTP service)"),
      ('sum(rate(bentoml_service_adaptive_batch_size_sum{service_name=~"$service"}[1m])) / '
       'clamp_min(sum(rate(bentoml_service_adaptive_batch_size_count{service_name=~"$service"}[1m])), 1e-9)',
       "texts per adaptive batch (model service)")],
     "Texts scored per call: the requests that waited together (adaptive_batching=false, the default), "
     "or BentoML's adaptive batches of a model service (adaptive_batching=true)."),
    ("Monitoring hook of the inference service", "timeseries", "rowsps",
     [("sum(rate(ktt_monitoring_rows_sent_total[1m]))", "sent"),
      ("sum by (reason) (rate(ktt_monitoring_rows_failed_total[1m]))", "failed ({{reason}})"),
      ("sum(rate(ktt_monitoring_rows_dropped_total[1m]))", "dropped (queue full)"),
      ("sum(rate(ktt_classify_retries_total[1m]))", "model-service retries")],
     "Rows the inference service posted to the monitor (failures and drops never fail predictions), "
     "and calls to its model service sent again after a broken connection."),
]

FLAG_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "no drift", "color": "green", "index": 0},
    "1": {"text": "DRIFT", "color": "red", "index": 1},
}}]


def build_dashboard(model_name: str = "ktt model") -> dict:
    """The dashboard as Grafana's JSON model.

    Parameters
    ----------
    model_name : str
        Shown in the title and used for the uid.

    Returns
    -------
    dict
        Variables: ``datasource`` (a Prometheus data source), ``monitoring_job``
        (jobs that export ``ktt_drift_*``) and ``service`` (bento names).
    """
    uid = "ktt-" + "".join(c if c.isalnum() else "-" for c in model_name.lower())[:36]
    panels, x, y = [], 0, 0
    for number, (title, kind, unit, targets, description) in enumerate(PANELS, start=1):
        if kind == "row":
            y += 0 if x == 0 else 8
            panels.append({"id": number, "type": "row", "title": title, "collapsed": False,
                           "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
            x, y = 0, y + 1
            continue
        width = 6 if kind == "stat" else 12
        if x + width > 24:
            x, y = 0, y + 8
        panel = {
            "id": number, "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": width, "h": 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
            "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                        for i, (expr, legend) in enumerate(targets)],
        }
        if kind in ("stat", "state-timeline"):
            panel["fieldConfig"]["defaults"]["mappings"] = FLAG_MAPPINGS
        if kind == "stat":
            panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                                "colorMode": "background", "graphMode": "none", "textMode": "value"}
        panels.append(panel)
        x += width
    return {
        "title": f"ktt {model_name}: drift and requests",
        "uid": uid,
        "tags": ["ktt", "bentoml", "evidently"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus", "current": {}},
            _query_variable("monitoring_job", "Monitoring job", "label_values(ktt_drift_window_size, job)"),
            _query_variable("service", "Bento", "label_values(bentoml_service_request_total, service_name)"),
        ]},
        "panels": panels,
    }


def _query_variable(name: str, label: str, query: str) -> dict:
    return {"name": name, "type": "query", "label": label, "datasource": DATASOURCE,
            "query": {"query": query, "refId": name}, "definition": query, "includeAll": True, "multi": True,
            "current": {"text": "All", "value": "$__all"}, "refresh": 2}


def dashboard_json(model_name: str = "ktt model") -> str:
    """:func:`build_dashboard` as indented JSON text."""
    return json.dumps(build_dashboard(model_name), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(dashboard_json(sys.argv[1] if len(sys.argv) > 1 else "ktt model"))
