"""The reference set, read as the monitoring service compares against it.

A reference set is what :meth:`ktt.model_sklearn.SklearnModel.gen_reference_set`
writes: ``targets`` (leaf names), ``F0..F<k>`` (pooled tf-idf features) and one
``C<class>`` score column per leaf class. The service keeps the pooled features
and the *predicted* class of each row (the argmax of its scores), never the
targets: serving rows carry no target, so predictions are compared with
predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ktt.errors import KttError


@dataclass
class Batch:
    """Rows as the monitor keeps them.

    Attributes
    ----------
    features : ndarray of shape (n, n_features)
        Pooled features.
    predictions : ndarray of shape (n,)
        Predicted leaf class names (str).
    """

    features: np.ndarray
    predictions: np.ndarray

    def __len__(self) -> int:
        return len(self.predictions)

    @classmethod
    def empty(cls, n_features: int) -> "Batch":
        return cls(np.empty((0, n_features)), np.empty(0, dtype=object))

    @classmethod
    def concat(cls, batches: list["Batch"], n_features: int) -> "Batch":
        if not batches:
            return cls.empty(n_features)
        return cls(np.concatenate([b.features for b in batches]), np.concatenate([b.predictions for b in batches]))

    def tail(self, n: int) -> "Batch":
        """The last ``n`` rows."""
        return Batch(self.features[-n:], self.predictions[-n:]) if len(self) > n else self


def predicted_classes(scores: np.ndarray, classes: list[str]) -> np.ndarray:
    """The class of each row's highest score (ktt's one prediction rule: argmax; first on ties)."""
    names = np.asarray(classes, dtype=object)
    return names[np.argmax(scores, axis=1)] if len(scores) else np.empty(0, dtype=object)


def read_reference_columns(path: Path) -> list[str]:
    """Column names of a reference set, without reading its data.

    Raises
    ------
    KttError
        If the file is missing or is not Parquet.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise KttError(f"reference set {path} does not exist")
    try:
        return list(pq.read_schema(path).names)
    except Exception:  # pyarrow raises ArrowInvalid, OSError... for non-Parquet files
        raise KttError(f"reference set {path} is not a Parquet file") from None


def load_reference(config) -> Batch:
    """The reference set's pooled features and predicted classes.

    Parameters
    ----------
    config : ktt.monitoring.config.MonitorConfig

    Returns
    -------
    Batch

    Raises
    ------
    KttError
        If a feature or score column is not numeric or holds NaN/infinity, or (when
        it is the reference, ``use_reference: true``) the set has fewer than
        ``min_reference_size`` rows.
    """
    import pandas as pd

    path = config.reference_path
    frame = pd.read_parquet(path, columns=[*config.features, *config.score_columns])
    values = {}
    for name, columns in (("feature", config.features), ("score", config.score_columns)):
        try:
            block = frame[columns].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            bad = next(c for c in columns if not pd.api.types.is_numeric_dtype(frame[c]))
            raise KttError(f"reference set {path}: {name} column {bad} is not numeric") from None
        finite = np.isfinite(block)
        if not finite.all():
            bad = columns[int(np.argwhere(~finite)[0][1])]
            raise KttError(f"reference set {path}: {name} column {bad} holds NaN or infinity")
        values[name] = block
    if config.use_reference and len(frame) < config.min_reference_size:
        raise KttError(f"reference set {path} has {len(frame)} rows, fewer than min_reference_size="
                       f"{config.min_reference_size}")
    return Batch(values["feature"], predicted_classes(values["score"], config.classes))
