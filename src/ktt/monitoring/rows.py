"""Parsing the rows the inference service POSTs to ``/iterate``.

The body is ``{"data": rows}``; each row is ``[target placeholder, pooled
features..., scores...]`` (see :func:`ktt.serving.monitoring.monitoring_rows`).
A request is taken or refused as a whole: one bad row refuses the batch.
"""

from __future__ import annotations

import json

import numpy as np

from ktt.monitoring.reference import Batch, predicted_classes

#: Values of the ``reason`` label of refused requests and rows.
REJECT_REASONS = ("json", "format", "width", "value", "size")


class RowError(ValueError):
    """A refused request: ``reason`` (one of :data:`REJECT_REASONS`), a one-line message, the rows it held."""

    def __init__(self, reason: str, message: str, n_rows: int = 0):
        super().__init__(message)
        self.reason = reason
        self.n_rows = n_rows


def parse_rows(body: bytes, n_features: int, classes: list[str]) -> Batch:
    """Validate a request body and turn its rows into pooled features and predicted classes.

    Parameters
    ----------
    body : bytes
        The request body, ``{"data": [[...], ...]}``.
    n_features : int
        Pooled features per row.
    classes : list of str
        The leaf classes, in score-column order.

    Returns
    -------
    Batch

    Raises
    ------
    RowError
        If the body is not JSON, has no ``data`` list of rows, a row has the wrong
        number of values, or a value is not a finite number.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RowError("json", "the body is not valid JSON; send {\"data\": [[...], ...]}") from None
    if not isinstance(payload, dict) or "data" not in payload:
        raise RowError("format", 'missing "data": send {"data": [[target, features..., scores...], ...]}')
    rows = payload["data"]
    if not isinstance(rows, list) or not rows:
        raise RowError("format", '"data" must be a non-empty array of rows')
    width = 1 + n_features + len(classes)
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise RowError("format", f'"data"[{i}] is not an array of numbers', len(rows))
        if len(row) != width:
            raise RowError("width", f'"data"[{i}] has {len(row)} values, expected {width} (1 target placeholder + '
                                    f"{n_features} pooled features + {len(classes)} scores)", len(rows))
    kinds = {type(value) for row in rows for value in row}
    if not kinds <= {int, float}:
        i, j, value = next((i, j, v) for i, row in enumerate(rows) for j, v in enumerate(row)
                           if type(v) not in (int, float))
        kind = {bool: "a boolean", str: "a string", type(None): "null", list: "an array", dict: "an object"}.get(
            type(value), type(value).__name__)
        raise RowError("value", f'"data"[{i}][{j}] is {kind}, not a number', len(rows))
    try:
        values = np.asarray(rows, dtype=np.float64)
    except OverflowError:
        raise RowError("value", '"data" holds an integer too large for a float', len(rows)) from None
    finite = np.isfinite(values)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        raise RowError("value", f'"data"[{i}][{j}] is not a finite number (NaN or infinity)', len(rows))
    return Batch(values[:, 1:1 + n_features], predicted_classes(values[:, 1 + n_features:], classes))
