"""ONNX export: the graph gives the model's labels and scores, through the real CLI."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import mlflow_client, mlflow_runs, run_cli

LOSSES = ("modified_huber", "log_loss", "hinge")
# word 1-2 grams (the default), no character n-grams (skl2onnx has no char_wb), no sublinear tf (it ignores it)
SMALL = ["model=tfidf_lsgd", "dataset=file", "min_df=2", "char_ngrams=null", "sublinear_tf=false", "progress=false", "plots=false"]


@pytest.fixture(scope="module")
def onnx_runs(icd_sample, tmp_path_factory) -> dict[str, Path]:
    """One training run per loss with ``export=onnx``, each in its own folder (run side by side)."""
    folders = {loss: tmp_path_factory.mktemp(f"onnx_{loss}") for loss in LOSSES}

    def train(loss: str) -> None:
        run_cli(f"loss={loss}", *SMALL, f"dataset.path={icd_sample}", "export=onnx", cwd=folders[loss])

    with ThreadPoolExecutor(len(LOSSES)) as pool:
        list(pool.map(train, LOSSES))
    return folders


@pytest.mark.parametrize("loss", LOSSES)
def test_onnx_graph_matches_the_model_on_the_whole_test_split(onnx_runs, loss):
    import mlflow
    import onnx

    from ktt import tracking
    from ktt.data.intermediate import IntermediateDataset
    from ktt.export.onnx import run

    cwd = onnx_runs[loss]
    (logged,) = mlflow_runs(cwd)
    assert logged.info.status == "FINISHED"
    run_id = logged.info.run_id
    uri = f"sqlite:///{cwd / 'mlflow.db'}"
    artifacts = {a.path for a in mlflow_client(cwd).list_artifacts(run_id, "export/onnx")}
    assert artifacts == {"export/onnx/model.onnx", "export/onnx/hierarchy.json", "export/onnx/export.json"}
    assert logged.data.tags["ktt.export.onnx"] == f"runs:/{run_id}/export/onnx/model.onnx"
    assert logged.data.metrics["onnx_label_agreement"] == 1.0
    assert logged.data.metrics["onnx_max_score_diff"] <= 1e-5

    # check it again here, independently of the exporter's own check
    graph = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="export/onnx/model.onnx",
                                                tracking_uri=uri)
    proto = onnx.load(graph)
    assert [i.name for i in proto.graph.input] == ["text"]
    assert [o.name for o in proto.graph.output] == ["label", "scores"]
    model = tracking.load_model(run_id, tracking_uri=uri)
    texts = IntermediateDataset(cwd / logged.data.params["data.cache_dir"]).preprocessed_texts("test")
    assert len(texts) == int(logged.data.params["data.test_size"]) == 300
    labels, scores = run(graph, texts)
    expected = model.predict_scores(texts)
    assert labels.tolist() == model.predict(texts).tolist()  # 100% of rows, ktt's rule: argmax of scores
    assert np.abs(scores - expected).max() <= 1e-5
    assert np.allclose(scores.sum(axis=1), 1, atol=1e-5)  # hinge too: softmaxed inside the graph


def test_tokenizer_parity_on_non_ascii_text():
    """The graph tokenises like sklearn's (?u)\\b\\w\\w+\\b, also for accents, Greek, CJK, digits."""
    from ktt.data.loaders import Loader
    from ktt.export.onnx import check_parity, export_model
    from ktt.hierarchy import Hierarchy
    from ktt.preprocess import preprocess
    from ktt_models.tfidf_lsgd import TfidfLSGD

    raw = ["Ménière's disease, café naïve", "Sjögren syndrome Σίσυφος οδός", "straße œdème x² ½ 東京 病気",
           "Sézary disease, unspecified site", "ÉPILEPSIE Über İstanbul", "plain ascii words here",
           "Cholera due to Vibrio cholerae", "Typhoid fever with heart involvement"]
    paths = [("A", "A1"), ("A", "A2"), ("B", "B1"), ("B", "B2")] * 2
    hierarchy, _ = Hierarchy.from_paths(paths)
    model = TfidfLSGD(loss="modified_huber", min_df=1, n_jobs=1)
    model.fit(Loader(preprocess(raw), np.array([p[-1] for p in paths], dtype=object)), hierarchy=hierarchy)
    vocabulary = model.features_.vectorizers_[0].vocabulary_
    assert {"sézari", "ménièr", "東京", "x²", "οδός"} <= set(vocabulary)  # non-ASCII terms that matter
    probes = preprocess(raw + [t.upper() for t in raw] + ["ΟΔΟΣ ΣΊΣΥΦΟΣ", "İSTANBUL istanbul", "x²y ½½ a_b_c"])
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        graph = export_model(model, Path(tmp) / "model.onnx")
        parity = check_parity(graph, model, probes, tolerance=1e-5)
    assert parity["label_agreement"] == 1.0 and parity["max_score_diff"] <= 1e-5


@pytest.mark.parametrize("model_name, params, message", [
    ("lsgd", {"char_ngrams": [2, 4]}, r"^ONNX export is not supported for TfidfLSGD with char_ngrams \(skl2onnx"),
    ("lsgd", {"sublinear_tf": True}, r"^ONNX export is not supported for TfidfLSGD with sublinear_tf \(skl2onnx"),
    ("lsgd", {"learner": "logreg"}, r"^ONNX export is not supported for TfidfLSGD with learner=logreg"),
    ("hsgd", {}, r"^ONNX export is not supported for TfidfHSGD \(one graph per parent node"),
])
def test_models_that_skl2onnx_cannot_convert_are_refused_in_one_line(tmp_path, model_name, params, message):
    from ktt.data.loaders import Loader
    from ktt.errors import KttError
    from ktt.export.onnx import export_model
    from ktt.hierarchy import Hierarchy
    from ktt_models.tfidf_hsgd import TfidfHSGD
    from ktt_models.tfidf_lsgd import TfidfLSGD

    paths = [("A", "A1"), ("A", "A2"), ("B", "B1")] * 3
    hierarchy, _ = Hierarchy.from_paths(paths)
    model = {"lsgd": TfidfLSGD, "hsgd": TfidfHSGD}[model_name](min_df=1, n_jobs=1, **params)
    model.fit(Loader(["cholera vibrio", "typhoid fever", "plague", "cholera", "fever", "pest", "vibrio", "typhoid", "plague"],
                     np.array(["A1", "A2", "B1"] * 3, dtype=object)), hierarchy=hierarchy)
    with pytest.raises(KttError, match=message):
        export_model(model, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
