"""The monitoring service's config: a model's ``evidently.yaml``, checked once.

The file is the original KTT's, with optional additions::

    service:
      reference_path: ./reference_set.parquet   # relative to this file
      min_reference_size: 30
      use_reference: true
      moving_reference: false
      window_size: 30
      calculation_period_sec: 60
      monitors: [cat_target_drift, data_drift]
    target: targets          # optional; the rows' first column is a placeholder, never used
    features: [F0, F1, ...]  # optional; default: the reference's F<i> columns
    prediction: [...]        # the leaf classes, as score columns (C<class>) or class names
    drift:                   # optional (ktt): statistical tests, see DRIFT_DEFAULTS
      drift_share: 0.5
      stattest: null
      stattest_threshold: null
      prediction_stattest: TVD
      prediction_stattest_threshold: null

What each option does is described on :class:`MonitorConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktt.errors import KttError
from ktt.params import Interval, validate_params

MONITORS = ("cat_target_drift", "data_drift")
#: The guide's defaults, used for keys the file leaves out.
SERVICE_DEFAULTS = {
    "reference_path": None,
    "min_reference_size": 30,
    "use_reference": True,
    "moving_reference": False,
    "window_size": 30,
    "calculation_period_sec": 60,
    "monitors": list(MONITORS),
}
#: Statistical tests; ``None`` lets Evidently choose by column type and reference size.
DRIFT_DEFAULTS = {
    "drift_share": 0.5,
    "stattest": None,
    "stattest_threshold": None,
    "prediction_stattest": "TVD",
    "prediction_stattest_threshold": None,
}
SERVICE_CONSTRAINTS = {
    "service.reference_path": [None, str],
    "service.min_reference_size": [Interval(int, 1, None)],
    "service.use_reference": [bool],
    "service.moving_reference": [bool],
    "service.window_size": [Interval(int, 2, None)],
    "service.calculation_period_sec": [Interval(float, 0, None, closed="neither")],
}
DRIFT_CONSTRAINTS = {
    "drift.drift_share": [Interval(float, 0, 1, closed="right")],
    "drift.stattest": [None, str],
    "drift.stattest_threshold": [None, Interval(float, 0, None)],
    "drift.prediction_stattest": [None, str],
    "drift.prediction_stattest_threshold": [None, Interval(float, 0, None)],
}
TOP_LEVEL_KEYS = ("service", "target", "features", "prediction", "drift")


@dataclass
class MonitorConfig:
    """What the monitoring service does, from ``evidently.yaml``.

    Attributes
    ----------
    reference_path : Path or None
        The reference set (Parquet, as ``gen_reference_set`` writes it), resolved
        against the config file's folder.
    min_reference_size : int
        The fewest rows a reference may have. A reference file with fewer is refused
        at start; a reference gathered from received rows (``use_reference: false``)
        collects ``max(window_size, min_reference_size)`` rows.
    use_reference : bool
        True: the reference set is the reference. False: the first
        ``max(window_size, min_reference_size)`` rows received become the reference
        (the file, if given, only names the columns).
    moving_reference : bool
        After each calculation the current window becomes the reference and the
        window starts empty, so each window is compared with the one before it.
    window_size : int
        The current window: the last ``window_size`` rows received. No calculation
        until the window is full.
    calculation_period_sec : float
        Drift is computed at most this often, and only when rows arrived since the
        last calculation.
    monitors : list of str
        ``data_drift`` (each pooled feature) and/or ``cat_target_drift`` (the
        predicted class); only those listed are computed and exported.
    features : list of str
        Names of the pooled-feature columns, in row order.
    score_columns : list of str
        Names of the score columns of the reference, in row order (``C<class>``).
    classes : list of str
        The leaf class of each score column.
    drift : dict
        Statistical tests (see :data:`DRIFT_DEFAULTS`).
    source : Path or None
        The config file.
    """

    reference_path: Path | None = None
    min_reference_size: int = 30
    use_reference: bool = True
    moving_reference: bool = False
    window_size: int = 30
    calculation_period_sec: float = 60.0
    monitors: list[str] = field(default_factory=lambda: list(MONITORS))
    features: list[str] = field(default_factory=list)
    score_columns: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    drift: dict = field(default_factory=lambda: dict(DRIFT_DEFAULTS))
    source: Path | None = None

    @property
    def row_width(self) -> int:
        """Values in a row: the target placeholder, the pooled features, the scores."""
        return 1 + len(self.features) + len(self.classes)

    @property
    def reference_target(self) -> int:
        """Rows a reference gathered from received rows collects (``use_reference: false``)."""
        return max(self.window_size, self.min_reference_size)


def load_config(path: str | Path, reference_path: str | Path | None = None) -> MonitorConfig:
    """Read and check ``evidently.yaml``; the column names come from the reference set.

    Parameters
    ----------
    path : path-like
        The config file.
    reference_path : path-like, optional
        Overrides ``service.reference_path``.

    Returns
    -------
    MonitorConfig

    Raises
    ------
    KttError
        Naming the first bad key, a missing or malformed reference set, or columns
        that the reference set does not have.
    """
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KttError(f"cannot read the monitoring config {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KttError(f"{path} is not valid YAML{where}") from None
    config = config_from_dict(raw if raw is not None else {}, base=path.parent, reference_path=reference_path,
                              name=str(path))
    config.source = path
    return config


def config_from_dict(raw: Any, base: Path | None = None, reference_path: str | Path | None = None,
                     name: str = "evidently.yaml") -> MonitorConfig:
    """:func:`load_config` for an already parsed config (``base``: folder for relative paths)."""
    from ktt.monitoring.drift import PREDICTION_COLUMN
    from ktt.monitoring.reference import read_reference_columns

    if not isinstance(raw, dict):
        raise KttError(f"{name} must be a mapping with a 'service' section, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise KttError(f"{name}: unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(TOP_LEVEL_KEYS)})")
    service = _section(raw, "service", SERVICE_DEFAULTS, name)
    drift = _section(raw, "drift", DRIFT_DEFAULTS, name)
    for section, key in (service, "calculation_period_sec"), (drift, "drift_share"), (drift, "stattest_threshold"), \
            (drift, "prediction_stattest_threshold"):
        if isinstance(section[key], int) and not isinstance(section[key], bool):  # YAML's 60 means 60.0
            section[key] = float(section[key])
    try:
        validate_params({f"service.{k}": v for k, v in service.items()}, SERVICE_CONSTRAINTS)
        validate_params({f"drift.{k}": v for k, v in drift.items()}, DRIFT_CONSTRAINTS)
    except KttError as error:
        raise KttError(f"{name}: {error}") from None
    monitors = service["monitors"]
    if (not isinstance(monitors, list) or not monitors or any(m not in MONITORS for m in monitors)
            or len(set(monitors)) != len(monitors)):
        raise KttError(f"{name}: invalid service.monitors={monitors!r} (allowed: a list of distinct "
                       f"{', '.join(MONITORS)})")

    if reference_path is not None:
        reference = Path(reference_path)
    elif service["reference_path"] is not None:
        reference = Path(service["reference_path"])
        if base is not None and not reference.is_absolute():
            reference = base / reference
    else:
        reference = None
    if reference is None and service["use_reference"]:
        raise KttError(f"{name}: use_reference is true but no reference set is given "
                       "(set service.reference_path or pass --reference)")

    config = MonitorConfig(
        reference_path=reference, min_reference_size=service["min_reference_size"],
        use_reference=service["use_reference"], moving_reference=service["moving_reference"],
        window_size=service["window_size"], calculation_period_sec=service["calculation_period_sec"],
        monitors=list(monitors), drift=drift,
    )
    if config.moving_reference and config.window_size < config.min_reference_size:
        raise KttError(f"{name}: moving_reference needs window_size >= min_reference_size "
                       f"(got {config.window_size} < {config.min_reference_size}): a window becomes the reference")

    columns = read_reference_columns(reference) if reference is not None else None
    config.features = _features(raw.get("features"), columns, name)
    if PREDICTION_COLUMN in config.features:
        raise KttError(f"{name}: a feature may not be named {PREDICTION_COLUMN} (the monitor's prediction column)")
    config.score_columns, config.classes = _predictions(raw.get("prediction"), columns, name)
    return config


def _section(raw: dict, key: str, defaults: dict, name: str) -> dict:
    section = raw.get(key)
    if section is None:
        return dict(defaults)
    if not isinstance(section, dict):
        raise KttError(f"{name}: '{key}' must be a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(defaults))
    if unknown:
        raise KttError(f"{name}: unknown key(s) {', '.join(f'{key}.{u}' for u in map(str, unknown))} "
                       f"(known: {', '.join(defaults)})")
    return {**defaults, **section}


def _string_list(value: Any, key: str, name: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, (str, int, float)) for v in value):
        raise KttError(f"{name}: '{key}' must be a non-empty list of names")
    return [str(v) for v in value]


def _features(value: Any, columns: list[str] | None, name: str) -> list[str]:
    if value is None:
        if columns is None:
            raise KttError(f"{name}: without a reference set, list the pooled feature columns under 'features'")
        features = [c for c in columns if c[:1] == "F" and c[1:].isdigit()]
        if not features:
            raise KttError("the reference set has no pooled feature columns (F0, F1, ...)")
        return features
    features = _string_list(value, "features", name)
    if columns is not None:
        missing = [f for f in features if f not in columns]
        if missing:
            raise KttError(f"{name}: the reference set has no feature column(s) {', '.join(missing[:5])}")
    return features


def _predictions(value: Any, columns: list[str] | None, name: str) -> tuple[list[str], list[str]]:
    """Score columns and class names: an entry names a reference column, or is a class whose column is C<entry>."""
    if value is None:
        if columns is None:
            raise KttError(f"{name}: without a reference set, list the leaf classes under 'prediction'")
        scores = [c for c in columns if c[:1] == "C"]
        if not scores:
            raise KttError("the reference set has no score columns (C<class>)")
        return scores, [c[1:] for c in scores]
    entries = _string_list(value, "prediction", name)
    if columns is None:
        return [f"C{e}" for e in entries], entries
    scores, classes = [], []
    for entry in entries:
        if entry in columns and entry[:1] == "C":
            scores.append(entry)
            classes.append(entry[1:])
        elif f"C{entry}" in columns:
            scores.append(f"C{entry}")
            classes.append(entry)
        else:
            raise KttError(f"{name}: prediction {entry!r} is neither a score column of the reference set "
                           f"nor a class with a column C{entry}")
    if len(set(scores)) != len(scores):
        raise KttError(f"{name}: 'prediction' lists a class twice")
    return scores, classes
