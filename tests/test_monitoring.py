"""The drift monitoring service: its config, each evidently.yaml option, and the real service under
good, bad and drifted input.

The HTTP tests run ``python -m ktt.monitoring`` under uvicorn on 127.0.0.1, fed with rows
built exactly as the inference service builds them (:func:`ktt.serving.monitoring.monitoring_rows`
of a tfidf_lsgd model fitted on real ICD-10-CM rows). Drift is proven on 20newsgroups posts
pushed through the same model; held-out ICD rows must not drift.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from ktt.testing import stop_process, wait_for
from conftest import free_port, shared_data

from ktt.errors import KttError
from ktt.monitoring.config import config_from_dict, load_config
from ktt.monitoring.reference import load_reference

#: Rows the drift tests compare per window; the reference has REFERENCE_ROWS.
WINDOW = 150
REFERENCE_ROWS = 600


# ------------------------------------------------------------------ helpers


def metric(text: str, name: str, **labels) -> float | None:
    """Sum of a metric's samples (matching ``labels``) in a Prometheus text page; None if absent."""
    total, found = 0.0, False
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
            found = True
    return total if found else None


def write_config(folder: Path, service: dict, **extra) -> Path:
    """An evidently.yaml in ``folder`` (service options over the guide's defaults)."""
    path = folder / "evidently.yaml"
    path.write_text(yaml.safe_dump({"service": service, **extra}, sort_keys=False))
    return path


@contextlib.contextmanager
def running_service(config: Path, log: Path, *args: str, pythonpath: str | None = None, timeout_s: float = 60):
    """``python -m ktt.monitoring`` on a free port of 127.0.0.1; yields its base URL, stops it after."""
    port = free_port()
    env = {**os.environ}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "ktt.monitoring", "--config", str(config),
                                    "--host", "127.0.0.1", "--port", str(port), *args],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, cwd=config.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        def up():
            if process.poll() is not None:
                raise AssertionError(f"the monitoring service exited ({process.returncode}):\n{log.read_text()}")
            try:
                return requests.get(f"{url}/healthz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, timeout_s, what="the monitoring service listening")
        yield SimpleNamespace(url=url, process=process, log=log)
    finally:
        stop_process(process)


def post_rows(url: str, rows, batch: int = 50) -> None:
    """POST rows to /iterate in batches, as the inference service does."""
    rows = np.asarray(rows).tolist()
    for start in range(0, len(rows), batch):
        response = requests.post(f"{url}/iterate", json={"data": rows[start:start + batch]}, timeout=10)
        assert response.status_code == 200, response.text


def drift_after(url: str, rows_received: int, timeout_s: float = 120) -> dict:
    """The first calculation whose window was taken after ``rows_received`` rows had arrived."""
    def ready():
        result = requests.get(f"{url}/drift", timeout=5).json()
        return result if result and result["rows_received"] >= rows_received else None

    return wait_for(ready, timeout_s, what=f"a drift calculation covering {rows_received} rows")


# ------------------------------------------------------------ real model rows
@functools.lru_cache(maxsize=2)
def icd_monitoring_data(icd_sample: Path) -> SimpleNamespace:
    """A tfidf_lsgd model fitted on ICD rows, its reference set, and monitoring rows of unseen texts.

    The ICD sample is split once, seeded: 1,500 rows to fit, :data:`REFERENCE_ROWS` for the
    reference set (as ``gen_reference_set`` writes it), the rest held out. Rows are built as
    the inference service builds them: ``[0] + pooled features + scores``.

    Returns
    -------
    SimpleNamespace
        ``reference`` (DataFrame), ``heldout`` and ``news`` (row arrays; news: 20newsgroups
        test posts through the same model), ``n_features``, ``classes``.
    """
    from ktt.data.loaders import Loader
    from ktt.pooling import pool_features
    from ktt.preprocess import preprocess
    from ktt.serving.monitoring import monitoring_rows
    from ktt_models.tfidf_lsgd import TfidfLSGD

    frame = pd.read_csv(icd_sample)
    texts = preprocess(frame["text"].tolist())
    leaves = frame["category"].str.split(" > ").str[-1].to_numpy()
    order = np.random.default_rng(0).permutation(len(texts))
    fit, reference, heldout = order[:1500], order[1500:1500 + REFERENCE_ROWS], order[1500 + REFERENCE_ROWS:]
    model = TfidfLSGD(min_df=2, n_jobs=1, random_state=0).fit(Loader([texts[i] for i in fit], leaves[fit]))

    def rows(batch_texts):
        features = model.encode(batch_texts)
        return monitoring_rows(pool_features(features), model.score_features(features))

    news = pd.read_parquet(shared_data("20newsgroups", "test.parquet"), columns=["text"])
    news = news.sample(n=WINDOW, random_state=0)["text"].tolist()
    return SimpleNamespace(
        reference=model.gen_reference_set(Loader([texts[i] for i in reference], leaves[reference])),
        heldout=rows([texts[i] for i in heldout]),
        news=rows(preprocess(news)),
        n_features=pool_features(model.encode(texts[:1])).shape[1],
        classes=list(model.classes_),
    )


# ---------------------------------------------------------- synthetic rows
CLASSES = ["A00", "B01", "C02"]


def synthetic_rows(n: int, shift: float = 0.0, class_p=(1 / 3, 1 / 3, 1 / 3), seed: int = 0) -> np.ndarray:
    """Monitoring rows with 3 normal features (mean ``shift``) and scores peaking at a class drawn from ``class_p``."""
    rng = np.random.default_rng(seed)
    predicted = rng.choice(len(CLASSES), n, p=class_p)
    scores = np.full((n, len(CLASSES)), 0.1)
    scores[np.arange(n), predicted] = 0.8
    return np.column_stack([np.zeros(n), rng.normal(shift, 1.0, (n, 3)), scores])


def synthetic_reference(path: Path, n: int = 120, seed: int = 1) -> Path:
    """A reference set as gen_reference_set writes it, from :func:`synthetic_rows`."""
    rows = synthetic_rows(n, seed=seed)
    frame = pd.DataFrame({"targets": np.array(CLASSES, dtype=object)[rows[:, 4:].argmax(axis=1)]})
    for i in range(3):
        frame[f"F{i}"] = rows[:, 1 + i]
    for j, name in enumerate(CLASSES):
        frame[f"C{name}"] = rows[:, 4 + j]
    frame.to_parquet(path)
    return path


def synthetic_service(tmp_path: Path, **service):
    """An in-process DriftService over a synthetic reference (``service``: evidently.yaml options)."""
    from ktt.monitoring.service import DriftService

    reference = synthetic_reference(tmp_path / "reference_set.parquet")
    options = {"reference_path": "./reference_set.parquet", "min_reference_size": 30, "use_reference": True,
               "moving_reference": False, "window_size": 20, "calculation_period_sec": 1,
               "monitors": ["cat_target_drift", "data_drift"], **service}
    config = load_config(write_config(tmp_path, options))
    assert config.reference_path == reference
    return DriftService(config, load_reference(config) if config.use_reference else None)


def add(service, rows) -> None:
    from ktt.monitoring.rows import parse_rows

    service.add(parse_rows(json.dumps({"data": np.asarray(rows).tolist()}).encode(), 3, CLASSES))


# ===================================================================== config
def test_config_reads_the_export_format_and_the_guide_format(tmp_path):
    synthetic_reference(tmp_path / "reference_set.parquet")
    exported = {"service": {"reference_path": "./reference_set.parquet"}, "target": "targets",
                "features": ["F0", "F1", "F2"], "prediction": ["CA00", "CB01", "CC02"]}
    guide = {"service": {"reference_path": "./reference_set.parquet"}, "prediction": CLASSES}
    bare = {"service": {"reference_path": "./reference_set.parquet"}}
    for raw in (exported, guide, bare):
        config = config_from_dict(raw, base=tmp_path)
        assert config.features == ["F0", "F1", "F2"]
        assert config.score_columns == ["CA00", "CB01", "CC02"] and config.classes == CLASSES
        assert config.row_width == 1 + 3 + 3
        assert (config.window_size, config.min_reference_size, config.calculation_period_sec) == (30, 30, 60.0)
    # --reference overrides reference_path, which is relative to the config's folder
    other = tmp_path / "elsewhere"
    other.mkdir()
    synthetic_reference(other / "ref.parquet")
    config = load_config(write_config(tmp_path, {"reference_path": "./missing.parquet"}),
                         reference_path=other / "ref.parquet")
    assert config.reference_path == other / "ref.parquet"


@pytest.mark.parametrize("raw, message", [
    ({"service": {"window_size": 1}}, "invalid service.window_size=1"),
    ({"service": {"window_size": "30"}}, "invalid service.window_size='30'"),
    ({"service": {"calculation_period_sec": 0}}, "invalid service.calculation_period_sec=0"),
    ({"service": {"use_reference": "yes"}}, "invalid service.use_reference='yes'"),
    ({"service": {"monitors": ["data_drift", "regression"]}}, "invalid service.monitors="),
    ({"service": {"monitors": []}}, "invalid service.monitors=[]"),
    ({"service": {"windowsize": 30}}, "unknown key(s) service.windowsize"),
    ({"service": {}, "datasets": {}}, "unknown key(s) datasets"),
    ({"service": {}, "drift": {"drift_share": 2}}, "invalid drift.drift_share=2.0"),
    ({"service": {}, "prediction": ["A00", "Z99"]}, "prediction 'Z99' is neither a score column"),
    ({"service": {}, "features": ["F0", "F7"]}, "no feature column(s) F7"),
    ({"service": {"moving_reference": True, "window_size": 10, "min_reference_size": 30}},
     "moving_reference needs window_size >= min_reference_size"),
    ({"service": {"use_reference": True, "reference_path": None}}, "no reference set is given"),
    ({"service": {"use_reference": False, "reference_path": None}}, "list the pooled feature columns"),
    ("service", "must be a mapping"),
])
def test_bad_configs_stop_with_one_line(tmp_path, raw, message):
    synthetic_reference(tmp_path / "reference_set.parquet")
    if isinstance(raw, dict):
        raw["service"].setdefault("reference_path", "./reference_set.parquet")
    with pytest.raises(KttError) as error:
        config_from_dict(raw, base=tmp_path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_reference_sets_are_checked(tmp_path):
    reference = synthetic_reference(tmp_path / "reference_set.parquet", n=20)
    config = load_config(write_config(tmp_path, {"reference_path": "./reference_set.parquet",
                                                 "min_reference_size": 30}))
    with pytest.raises(KttError, match="has 20 rows, fewer than min_reference_size=30"):
        load_reference(config)
    frame = pd.read_parquet(reference)
    frame.loc[3, "F1"] = np.nan
    frame.to_parquet(reference)
    config.min_reference_size = 10
    with pytest.raises(KttError, match="feature column F1 holds NaN"):
        load_reference(config)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(KttError, match="is not a Parquet file"):
        load_config(tmp_path / "evidently.yaml", reference_path=tmp_path / "bad.parquet")


def test_the_cli_stops_with_one_line_on_a_bad_config(tmp_path):
    config = write_config(tmp_path, {"reference_path": "./nowhere.parquet"})
    result = subprocess.run([sys.executable, "-m", "ktt.monitoring", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ktt.monitoring: error: reference set {tmp_path / 'nowhere.parquet'} does not exist"]


# ================================================= evidently.yaml options
def test_window_size_no_calculation_until_the_window_is_full_then_the_last_rows(tmp_path):
    service = synthetic_service(tmp_path, window_size=20)
    add(service, synthetic_rows(19, seed=2))
    assert service.calculate() is None
    assert service.monitor.status == "waiting for a full window (19 of 20 rows)"
    add(service, synthetic_rows(1, seed=3))
    result = service.calculate()
    assert result.current_rows == 20 and result.reference_rows == 120
    assert not result.data_drift.dataset_drift
    assert service.calculate() is None and service.monitor.status == "no new rows since the last calculation"
    # 40 more rows: the window keeps the last 20, all shifted
    add(service, synthetic_rows(20, seed=4))
    add(service, synthetic_rows(20, shift=3.0, class_p=(0, 0, 1), seed=5))
    result = service.calculate()
    assert result.current_rows == 20 and result.rows_received == 60
    assert result.data_drift.share == 1.0 and result.data_drift.dataset_drift
    assert result.prediction_drift.drifted


def test_use_reference_false_gathers_the_reference_from_the_first_rows(tmp_path):
    # the file only names the columns; the first max(window_size, min_reference_size) = 40 rows are the reference
    service = synthetic_service(tmp_path, use_reference=False, window_size=20, min_reference_size=40)
    assert service.monitor.reference_rows == 0 and service.monitor.reference_source == "received rows"
    add(service, synthetic_rows(45, shift=3.0, seed=6))
    assert (service.monitor.reference_rows, service.monitor.window_rows) == (40, 5)
    assert service.calculate() is None
    add(service, synthetic_rows(15, shift=3.0, seed=7))
    result = service.calculate()
    assert (result.reference_rows, result.current_rows) == (40, 20)
    assert not result.data_drift.dataset_drift  # shifted like the reference it gathered
    add(service, synthetic_rows(20, shift=0.0, seed=8))  # what the file holds: drifts from the gathered reference
    assert service.calculate().data_drift.dataset_drift


def test_min_reference_size_holds_back_a_gathered_reference(tmp_path):
    service = synthetic_service(tmp_path, use_reference=False, window_size=20, min_reference_size=30)
    add(service, synthetic_rows(29, seed=9))
    assert service.monitor.status == "waiting for the reference (29 of 30 rows)"
    add(service, synthetic_rows(1, seed=10))
    assert service.monitor.reference_rows == 30 and service.calculate() is None
    add(service, synthetic_rows(20, seed=11))
    assert service.calculate().reference_rows == 30


@pytest.mark.parametrize("moving", [True, False])
def test_moving_reference_compares_each_window_with_the_one_before(tmp_path, moving):
    service = synthetic_service(tmp_path, moving_reference=moving, window_size=20, min_reference_size=20)
    add(service, synthetic_rows(20, shift=3.0, seed=12))
    assert service.calculate().data_drift.dataset_drift  # against the file
    if moving:
        assert service.monitor.window_rows == 0 and service.monitor.reference_source == "moving window"
    add(service, synthetic_rows(20, shift=3.0, seed=13))
    second = service.calculate()
    assert second.reference_rows == (20 if moving else 120)
    assert second.data_drift.dataset_drift is (not moving)


@pytest.mark.parametrize("monitors", [["data_drift"], ["cat_target_drift"]])
def test_only_the_listed_monitors_are_computed_and_exported(tmp_path, monitors):
    service = synthetic_service(tmp_path, monitors=monitors, window_size=20)
    add(service, synthetic_rows(20, shift=3.0, class_p=(0, 0, 1), seed=14))
    result = service.calculate()
    page = service.metrics.render().decode()
    data_names = ("ktt_drift_share", "ktt_drift_dataset_drift", "ktt_drift_feature_score", "ktt_drift_feature_drifted")
    prediction_names = ("ktt_drift_prediction_score", "ktt_drift_prediction_drifted")
    if monitors == ["data_drift"]:
        assert result.prediction_drift is None and result.data_drift.dataset_drift
        assert all(metric(page, name) is not None for name in data_names)
        assert not any(name in page for name in prediction_names)
        assert metric(page, "ktt_drift_feature_drifted", feature="F2") == 1
    else:
        assert result.data_drift is None and result.prediction_drift.drifted
        assert result.prediction_drift.stattest == "TVD"
        assert metric(page, "ktt_drift_prediction_drifted") == 1
        assert not any(name in page for name in data_names + ("ktt_drift_drifted_features",))


def test_calculation_period_paces_the_calculating_thread(tmp_path):
    service = synthetic_service(tmp_path, window_size=20, calculation_period_sec=1.5)
    add(service, synthetic_rows(20, seed=15))
    service.start()
    try:
        first = wait_for(lambda: service.last_result, 60, what="a first calculation")
        add(service, synthetic_rows(5, seed=16))
        second = wait_for(lambda: service.last_result if service.last_result is not first else None, 30,
                          what="a second calculation")
        assert second.calculated_at - first.calculated_at >= 1.5 - first.duration_s - 0.05
        time.sleep(2)  # nothing new arrived: no third calculation
        assert service.last_result is second
        assert metric(service.metrics.render().decode(), "ktt_drift_calculations_total") == 2
    finally:
        service.stop()


def test_drift_tests_are_configurable_and_checked(tmp_path):
    from ktt.monitoring.drift import DriftEngine

    service = synthetic_service(tmp_path, window_size=20)
    service.config.drift.update(stattest="psi", prediction_stattest="jensenshannon")
    add(service, synthetic_rows(20, seed=17))
    result = service.calculate()
    assert {f.stattest for f in result.data_drift.features.values()} == {"psi"}  # as named in the config
    assert result.prediction_drift.stattest == "jensenshannon"
    service.config.drift.update(stattest="no_such_test")
    with pytest.raises(KttError, match="the drift tests of the monitoring config are invalid: .*no_such_test"):
        DriftEngine(service.config).load()


# ============================================== the service over HTTP
@pytest.fixture(scope="module")
def icd_data(icd_sample):
    return icd_monitoring_data(icd_sample)


@pytest.fixture(scope="module")
def service(icd_data, tmp_path_factory):
    """The monitoring service over the real model's reference set: window 150, a calculation per second."""
    folder = tmp_path_factory.mktemp("monitoring")
    icd_data.reference.to_parquet(folder / "reference_set.parquet")
    config = write_config(folder, {"reference_path": "./reference_set.parquet", "min_reference_size": 30,
                                   "use_reference": True, "moving_reference": False, "window_size": WINDOW,
                                   "calculation_period_sec": 1, "monitors": ["cat_target_drift", "data_drift"]})
    with running_service(config, folder / "service.log", "--max-body-bytes", "1000000") as running:
        yield running


def test_good_rows_are_accepted_and_counted(service, icd_data):
    before = metric(requests.get(f"{service.url}/metrics").text, "ktt_drift_rows_received_total")
    response = requests.post(f"{service.url}/iterate", json={"data": icd_data.heldout[:7].tolist()})
    assert response.status_code == 200 and response.json() == {"accepted": 7}
    page = requests.get(f"{service.url}/metrics").text
    assert metric(page, "ktt_drift_rows_received_total") == before + 7
    assert metric(page, "ktt_drift_window_size") == WINDOW
    assert metric(page, "ktt_drift_reference_rows") == REFERENCE_ROWS
    state = requests.get(f"{service.url}/healthz").json()
    assert state["reference_source"] == "file" and state["window_rows"] >= 7


def _row(icd_data, **change) -> list:
    row = icd_data.heldout[0].tolist()
    for index, value in change.items():
        row[int(index[1:])] = value
    return row


@pytest.mark.parametrize("body, reason, message", [
    (b"{not json", "json", "the body is not valid JSON"),
    (b'[[0, 1, 2]]', "format", 'missing "data"'),
    (b'{"rows": [[0, 1]]}', "format", 'missing "data"'),
    (b'{"data": []}', "format", '"data" must be a non-empty array'),
    (b'{"data": {"a": 1}}', "format", '"data" must be a non-empty array'),
    ("ROW_NOT_LIST", "format", '"data"[1] is not an array of numbers'),
    ("SHORT_ROW", "width", '"data"[1] has 5 values, expected'),
    ("STRING", "value", '"data"[1][3] is a string, not a number'),
    ("BOOLEAN", "value", '"data"[1][2] is a boolean, not a number'),
    ("NULL", "value", '"data"[1][4] is null, not a number'),
    ("NAN", "value", '"data"[1][1] is not a finite number (NaN or infinity)'),
    ("INFINITY", "value", '"data"[1][1] is not a finite number'),
])
def test_bad_requests_get_400_with_a_message_and_are_counted(service, icd_data, body, reason, message):
    good = _row(icd_data)
    bodies = {
        "ROW_NOT_LIST": {"data": [good, 3.0]},
        "SHORT_ROW": {"data": [good, good[:5]]},
        "STRING": {"data": [good, _row(icd_data, c3="0.5")]},
        "BOOLEAN": {"data": [good, _row(icd_data, c2=True)]},
        "NULL": {"data": [good, _row(icd_data, c4=None)]},
    }
    if body in bodies:
        body = json.dumps(bodies[body]).encode()
    elif body in ("NAN", "INFINITY"):
        body = json.dumps({"data": [good, _row(icd_data, c1=float("nan" if body == "NAN" else "inf"))]}).encode()
    before = requests.get(f"{service.url}/metrics").text
    response = requests.post(f"{service.url}/iterate", data=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error and "\n" not in error
    after = requests.get(f"{service.url}/metrics").text
    assert metric(after, "ktt_drift_requests_rejected_total", reason=reason) == \
        metric(before, "ktt_drift_requests_rejected_total", reason=reason) + 1
    rows = 2 if reason in ("width", "value") or body.startswith(b'{"data": [[') else 0
    assert metric(after, "ktt_drift_rows_rejected_total", reason=reason) == \
        metric(before, "ktt_drift_rows_rejected_total", reason=reason) + rows
    assert metric(after, "ktt_drift_rows_received_total") == metric(before, "ktt_drift_rows_received_total")


def test_oversized_bodies_get_413_and_the_service_keeps_running(service, icd_data):
    big = json.dumps({"data": np.tile(icd_data.heldout[:1], (1200, 1)).tolist()}).encode()
    assert len(big) > 1_000_000
    response = requests.post(f"{service.url}/iterate", data=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the limit of 1000000 bytes" in response.json()["error"]

    def chunked():  # no Content-Length: judged while reading
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    response = requests.post(f"{service.url}/iterate", data=chunked(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    page = requests.get(f"{service.url}/metrics").text
    assert metric(page, "ktt_drift_requests_rejected_total", reason="size") >= 2
    assert requests.post(f"{service.url}/iterate", json={"data": icd_data.heldout[:2].tolist()}).status_code == 200
    assert requests.get(f"{service.url}/iterate").status_code == 405


def test_drift_is_detected_on_another_distribution_and_not_on_held_out_rows(service, icd_data):
    """Held-out ICD rows (same distribution as the reference) do not drift; 20newsgroups posts do."""
    received = metric(requests.get(f"{service.url}/metrics").text, "ktt_drift_rows_received_total")
    post_rows(service.url, icd_data.heldout[:WINDOW])
    same = drift_after(service.url, received + WINDOW)
    post_rows(service.url, icd_data.news)
    other = drift_after(service.url, received + 2 * WINDOW)
    print(f"\nheld-out ICD rows: share {same['data_drift']['share']:.2f}, prediction "
          f"{same['prediction_drift']['stattest']} {same['prediction_drift']['score']:.3f}; "
          f"20newsgroups: share {other['data_drift']['share']:.2f}, prediction {other['prediction_drift']['score']:.3f}")

    assert same["current_rows"] == WINDOW and same["reference_rows"] == REFERENCE_ROWS
    assert same["data_drift"]["share"] <= 0.2 and not same["data_drift"]["dataset_drift"]
    assert not same["prediction_drift"]["drifted"]
    assert other["data_drift"]["share"] >= 0.8 and other["data_drift"]["dataset_drift"]
    assert other["prediction_drift"]["drifted"]
    assert {f["stattest"] for f in other["data_drift"]["features"].values()} <= {
        "K-S p_value", "chi-square p_value", "Z-test p_value"}  # Evidently's choice for <= 1,000 reference rows

    page = requests.get(f"{service.url}/metrics").text
    assert metric(page, "ktt_drift_dataset_drift") == 1 and metric(page, "ktt_drift_prediction_drifted") == 1
    assert metric(page, "ktt_drift_share") == other["data_drift"]["share"]
    assert metric(page, "ktt_drift_feature_drifted") == other["data_drift"]["drifted_features"]
    assert metric(page, "ktt_drift_last_calculation_timestamp_seconds") == other["calculated_at"]
