"""Drift of a current window against a reference, computed with Evidently (0.7 API).

Two monitors, as in the original KTT's ``evidently.yaml``:

``data_drift``
    Each pooled tf-idf feature is tested for drift (``DataDriftPreset``, i.e. one
    ``ValueDrift`` per feature plus ``DriftedColumnsCount``). Evidently picks the
    test per column unless ``drift.stattest`` names one: for a reference of up to
    1,000 rows, Kolmogorov-Smirnov (score = p-value, drift below 0.05; chi-square or
    Z-test for columns with at most 5 distinct values); above 1,000 rows, the
    normed Wasserstein distance (score = distance, drift at or above 0.1). The
    dataset drifts when the share of drifted features reaches ``drift.drift_share``
    (Evidently's rule, default 0.5).
``cat_target_drift``
    The predicted class (argmax of the scores) of the window against that of the
    reference. Serving rows carry no target, so predictions are compared with
    predictions. The default test is Evidently's ``TVD`` (total variation
    distance with a permutation p-value, seeded; drift below 0.1): Evidently's own
    choice for a categorical column, chi-square (up to 1,000 reference rows) or
    Jensen-Shannon (above), flags held-out data of the very same distribution
    when there are hundreds of classes and a window of a few hundred rows
    (classes the window predicts but the reference never did make chi-square's
    expected count zero; Jensen-Shannon's distance is inflated by sampling noise).

Evidently is imported by :meth:`DriftEngine.load` (about 10 s), once, in the
calculating thread; nothing else here needs it.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from ktt.errors import KttError
from ktt.monitoring.reference import Batch

log = logging.getLogger(__name__)

#: Name of the predicted-class column in the frames handed to Evidently.
PREDICTION_COLUMN = "predicted_class"


@dataclass
class ColumnDrift:
    """Drift of one column: Evidently's score, the test and threshold it used, and its verdict."""

    score: float
    stattest: str
    threshold: float | None
    drifted: bool


@dataclass
class DataDrift:
    """The ``data_drift`` monitor's result.

    Attributes
    ----------
    share : float
        Share of drifted features.
    drifted_features : int
    dataset_drift : bool
        ``share >= drift_share``.
    drift_share : float
    features : dict of str to ColumnDrift
    """

    share: float
    drifted_features: int
    dataset_drift: bool
    drift_share: float
    features: dict[str, ColumnDrift] = field(default_factory=dict)


@dataclass
class DriftResult:
    """One calculation.

    Attributes
    ----------
    calculated_at : float
        Unix time at which the calculation finished.
    duration_s : float
    reference_rows, current_rows : int
    rows_received : int
        Rows the service had accepted when the window was taken.
    data_drift : DataDrift or None
        None unless the ``data_drift`` monitor is on.
    prediction_drift : ColumnDrift or None
        None unless the ``cat_target_drift`` monitor is on.
    """

    calculated_at: float
    duration_s: float
    reference_rows: int
    current_rows: int
    rows_received: int
    data_drift: DataDrift | None = None
    prediction_drift: ColumnDrift | None = None

    def to_dict(self) -> dict:
        """As plain JSON values (a NaN or infinite score becomes None)."""
        return _finite(asdict(self))


def _finite(value):
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class DriftEngine:
    """Runs Evidently reports for the configured monitors.

    Parameters
    ----------
    config : ktt.monitoring.config.MonitorConfig
    """

    def __init__(self, config):
        self.config = config
        self._evidently = None

    @property
    def ready(self) -> bool:
        return self._evidently is not None

    def load(self) -> None:
        """Import Evidently and check the configured tests on a tiny synthetic report.

        Raises
        ------
        KttError
            If Evidently cannot be imported or a configured test does not exist.
        """
        if self._evidently is not None:
            return
        started = time.monotonic()
        try:
            from evidently import DataDefinition, Dataset, Report
            from evidently.metrics import ValueDrift
            from evidently.presets import DataDriftPreset
        except ImportError as error:
            raise KttError(f"cannot import Evidently ({error}); the monitoring service needs evidently==0.7.*") from None
        self._evidently = {"DataDefinition": DataDefinition, "Dataset": Dataset, "Report": Report,
                           "ValueDrift": ValueDrift, "DataDriftPreset": DataDriftPreset}
        rng = np.random.default_rng(0)
        n_features = len(self.config.features)
        classes = np.asarray(self.config.classes[:3] or ["a"], dtype=object)
        probe = Batch(rng.random((40, n_features)), classes[rng.integers(0, len(classes), 40)])
        try:
            self._run(probe, probe)
        except Exception as error:  # an unknown test name, a threshold Evidently refuses...
            self._evidently = None
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise KttError(f"the drift tests of the monitoring config are invalid: {message}") from None
        log.info("Evidently loaded in %.1f s", time.monotonic() - started)

    def compute(self, reference: Batch, current: Batch, rows_received: int = 0) -> DriftResult:
        """Drift of ``current`` against ``reference`` for the configured monitors.

        Parameters
        ----------
        reference, current : Batch
        rows_received : int
            Recorded in the result.

        Returns
        -------
        DriftResult
        """
        self.load()
        started = time.monotonic()
        data_drift, prediction_drift = self._run(reference, current)
        return DriftResult(calculated_at=time.time(), duration_s=time.monotonic() - started,
                           reference_rows=len(reference), current_rows=len(current), rows_received=rows_received,
                           data_drift=data_drift, prediction_drift=prediction_drift)

    def _run(self, reference: Batch, current: Batch) -> tuple[DataDrift | None, ColumnDrift | None]:
        ev = self._evidently
        config, options = self.config, self.config.drift
        metrics = []
        if "data_drift" in config.monitors:
            metrics.append(ev["DataDriftPreset"](columns=list(config.features), drift_share=options["drift_share"],
                                                 method=options["stattest"], threshold=options["stattest_threshold"]))
        if "cat_target_drift" in config.monitors:
            metrics.append(ev["ValueDrift"](column=PREDICTION_COLUMN, method=options["prediction_stattest"],
                                            threshold=options["prediction_stattest_threshold"]))
        definition = ev["DataDefinition"](numerical_columns=list(config.features),
                                          categorical_columns=[PREDICTION_COLUMN])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's divide-by-zero warnings on empty categories
            snapshot = ev["Report"](metrics, include_tests=True).run(
                ev["Dataset"].from_pandas(self._frame(current), data_definition=definition),
                ev["Dataset"].from_pandas(self._frame(reference), data_definition=definition),
            )
        return parse_snapshot(snapshot.dict(), config)

    def _frame(self, batch: Batch):
        import pandas as pd

        frame = pd.DataFrame(batch.features, columns=list(self.config.features))
        frame[PREDICTION_COLUMN] = batch.predictions.astype(str)
        return frame


def parse_snapshot(snapshot: dict, config) -> tuple[DataDrift | None, ColumnDrift | None]:
    """The monitors' results from an Evidently snapshot's ``dict()``.

    Scores come from the ``ValueDrift`` metrics (their config names the test and
    threshold Evidently used), verdicts from their tests (``FAIL`` = drift), the
    share of drifted features from ``DriftedColumnsCount``.
    """
    scores, share, count = {}, None, None
    for metric in snapshot.get("metrics", []):
        kind = str(metric["config"].get("type", ""))
        if kind.endswith(":DriftedColumnsCount"):
            share, count = float(metric["value"]["share"]), int(metric["value"]["count"])
        elif kind.endswith(":ValueDrift"):
            threshold = metric["config"].get("threshold")
            scores[metric["config"]["column"]] = (float(metric["value"]), str(metric["config"].get("method")),
                                                  None if threshold is None else float(threshold))
    verdicts = {}
    for test in snapshot.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if str(params.get("type", "")).endswith(":ValueDrift"):
            status = getattr(test.get("status"), "value", test.get("status"))
            verdicts[params["column"]] = str(status).upper() == "FAIL"

    def column(name: str) -> ColumnDrift:
        if name not in scores:
            raise KttError(f"Evidently's report has no drift score for column {name}")
        score, stattest, threshold = scores[name]
        return ColumnDrift(score=score, stattest=stattest, threshold=threshold, drifted=verdicts.get(name, False))

    data_drift = prediction_drift = None
    if "data_drift" in config.monitors:
        features = {name: column(name) for name in config.features}
        if share is None:
            count = sum(f.drifted for f in features.values())
            share = count / len(features)
        drift_share = float(config.drift["drift_share"])
        data_drift = DataDrift(share=share, drifted_features=count, dataset_drift=share >= drift_share,
                               drift_share=drift_share, features=features)
    if "cat_target_drift" in config.monitors:
        prediction_drift = column(PREDICTION_COLUMN)
    return data_drift, prediction_drift
