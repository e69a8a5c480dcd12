"""Exports of a trained model: an ONNX graph or a BentoML service, logged to its MLflow run.

After training: ``python -m ktt export=onnx`` or ``python -m ktt export=bento``.
For a past run, without retraining: ``python -m ktt.export run_id=<id> export=bento``
(``run_id=latest``: the newest FINISHED run of the configured model and dataset).

* :mod:`ktt.export.onnx`: the tf-idf + classifier graph, checked against the model;
* :mod:`ktt.export.bento`: a self-contained bento served by :mod:`ktt.serving`;
* :mod:`ktt.export.run`: both, logged to the run.
"""

from ktt.export.run import FORMATS, ExportResult, check_exportable, export_run, export_settings

__all__ = ["FORMATS", "ExportResult", "check_exportable", "export_run", "export_settings"]
