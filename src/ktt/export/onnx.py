"""ONNX export of a tf-idf + linear classifier pipeline, checked against the model.

The graph takes **preprocessed** text (the output of :func:`ktt.preprocess.preprocess`,
a string tensor of shape ``[N, 1]``, input ``text``): tokenising and stemming stay in
Python, tf-idf and the classifier are in the graph. It has two outputs:

``scores``
    float ``[N, n_classes]``, the model's per-leaf scores in ``classes_`` order:
    probabilities for probabilistic classifiers, the softmax of the decision
    function otherwise (ktt's normalisation, added to the graph);
``label``
    string ``[N]``, the class of the highest score (ktt's prediction rule; the first
    on ties, as ``numpy.argmax``).

Two details make the graph agree with scikit-learn (both measured with skl2onnx 1.20 and
onnxruntime 1.32):

* the vectoriser's tokenizer gets ``[\\p{L}\\p{N}_]{2,}`` (RE2, Unicode-aware) instead of
  skl2onnx's ASCII default ``[a-zA-Z0-9_]+`` for sklearn's ``(?u)\\b\\w\\w+\\b``: ICD texts
  such as "Sézary disease" otherwise lose their non-ASCII tokens, and one-character
  tokens, which sklearn drops, would break word bigrams ("cd x ef" has the bigram
  "cd ef" for sklearn);
* ``StringNormalizer`` gets the ``C.UTF-8`` locale, without which onnxruntime fails
  on machines lacking ``en_US.UTF-8``.

Preprocessed text is already lower case (the Snowball stemmer lowercases every
token), which the graph's own lowercasing leaves alone. Raw text is not the
graph's input: onnxruntime lowercases character by character, so an upper-case
final sigma or a dotted capital I would not match Python's ``str.lower``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ktt.errors import KttError

INPUT_NAME = "text"
SKLEARN_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
#: RE2 pattern matching the same tokens as sklearn's default under findall (see module docstring).
ONNX_TOKEN_PATTERN = r"[\p{L}\p{N}_]{2,}"
LOCALE = "C.UTF-8"


def pipeline_to_onnx(pipeline, classes: Sequence[str], path: str | Path, softmax: bool,
                     target_opset: int | None = None, metadata: dict | None = None) -> Path:
    """Convert a fitted ``Pipeline([("tfidf", TfidfVectorizer), ("clf", linear classifier)])``.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        The fitted pipeline; its first step a ``TfidfVectorizer``.
    classes : sequence of str
        Class names in score-column order (``pipeline.classes_``).
    path : path-like
        The ``.onnx`` file to write.
    softmax : bool
        Apply a softmax to the classifier's second output (its decision function,
        for classifiers without ``predict_proba``).
    target_opset : int, optional
        ONNX opset; default: skl2onnx's choice.
    metadata : dict, optional
        Written to the model's ``metadata_props``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    KttError
        If skl2onnx cannot convert the pipeline.
    """
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer, classifier = pipeline.steps[0][1], pipeline.steps[-1][1]
    if not isinstance(vectorizer, TfidfVectorizer):
        raise KttError(f"ONNX export expects a TfidfVectorizer first, found {type(vectorizer).__name__}")
    vectorizer_options = {"locale": LOCALE}
    if vectorizer.token_pattern == SKLEARN_TOKEN_PATTERN and vectorizer.analyzer == "word":
        vectorizer_options["tokenexp"] = ONNX_TOKEN_PATTERN
    options = {id(vectorizer): vectorizer_options, id(classifier): {"zipmap": False}}
    try:
        model = convert_sklearn(pipeline, initial_types=[(INPUT_NAME, StringTensorType([None, 1]))],
                                options=options, target_opset=target_opset)
    except Exception as error:  # skl2onnx raises many kinds; the user needs one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise KttError(f"skl2onnx cannot convert this pipeline: {type(error).__name__}: {first}") from None

    graph = model.graph
    for output in list(graph.output):  # free the names "label" and "scores" for ktt's outputs
        if output.name in ("label", "scores"):
            _rename(graph, output.name, f"skl2onnx_{output.name}")
    raw_scores = graph.output[1].name
    n_classes = len(classes)
    nodes = [
        helper.make_node("Softmax" if softmax else "Identity", [raw_scores], ["scores"],
                         name="ktt_scores", **({"axis": 1} if softmax else {})),
        helper.make_node("ArgMax", ["scores"], ["ktt_argmax"], name="ktt_argmax", axis=1, keepdims=0),
        helper.make_node("Gather", ["ktt_classes", "ktt_argmax"], ["label"], name="ktt_label", axis=0),
    ]
    graph.node.extend(nodes)
    graph.initializer.append(helper.make_tensor("ktt_classes", TensorProto.STRING, [n_classes],
                                                [str(c).encode("utf-8") for c in classes]))
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, n_classes]),
    ])
    _prune(graph)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def _rename(graph, old: str, new: str) -> None:
    """Rename a value everywhere in a graph."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for output in graph.output:
        if output.name == old:
            output.name = new


def _prune(graph) -> None:
    """Drop nodes whose outputs nothing uses (skl2onnx's own label branch)."""
    while True:
        needed = {output.name for output in graph.output}
        for node in graph.node:
            needed.update(node.input)
        dead = [node for node in graph.node if not any(name in needed for name in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for initializer in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(initializer)


def session(path: str | Path):
    """An onnxruntime CPU session of a graph."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(path_or_session, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of preprocessed texts.

    Parameters
    ----------
    path_or_session : path-like or onnxruntime.InferenceSession
    texts : sequence of str
        Output of :func:`ktt.preprocess.preprocess`.

    Returns
    -------
    labels : ndarray of str, shape (n,)
    scores : ndarray of float32, shape (n, n_classes)
    """
    sess = path_or_session if hasattr(path_or_session, "run") else session(path_or_session)
    labels, scores = sess.run(["label", "scores"], {INPUT_NAME: np.asarray(list(texts), dtype=object).reshape(-1, 1)})
    return labels, scores


def export_model(model, path: str | Path, target_opset: int | None = None) -> Path:
    """Write the ONNX graph of a fitted model: its ``onnx_pipeline()``, converted.

    The graph's scores are the classifier's probabilities or, for classifiers
    without ``predict_proba``, the softmax of its decision function (see
    :func:`pipeline_to_onnx`); :func:`check_parity` verifies them against the model.

    Parameters
    ----------
    model : ktt.model_sklearn.SklearnModel
        Fitted; its ``onnx_pipeline()`` is a ``Pipeline(tfidf, classifier)``.
    path : path-like
        The ``.onnx`` file to write.
    target_opset : int, optional
        ONNX opset; default: skl2onnx's choice.

    Raises
    ------
    KttError
        If the model has no such pipeline, its label tree is ragged (the graph's
        labels would be padded leaves), or skl2onnx cannot convert it.
    """
    hierarchy = getattr(model, "hierarchy", None)
    if hierarchy is not None and hierarchy.ragged:
        raise KttError(f"ONNX export is not supported for a ragged label tree (the graph's labels would be "
                       f"padded leaves of {type(model).__name__}); export it with export=bento")
    pipeline = model.onnx_pipeline()
    softmax = not hasattr(pipeline.steps[-1][1], "predict_proba")
    return pipeline_to_onnx(pipeline, model.classes_, path, softmax=softmax, target_opset=target_opset,
                            metadata={"ktt.model": type(model).__name__, "ktt.input": "ktt.preprocess.preprocess"})


def check_parity(path: str | Path, model, texts: Sequence[str], tolerance: float = 1e-5) -> dict:
    """Compare the graph with the model on ``texts``.

    Parameters
    ----------
    path : path-like
        The ``.onnx`` file.
    model : ktt.model_sklearn.SklearnModel
        The model it was exported from.
    texts : sequence of str
        Preprocessed texts (e.g. the test split).
    tolerance : float
        Largest allowed absolute score difference.

    Returns
    -------
    dict
        ``n_texts``, ``label_agreement`` (share of equal labels) and ``max_score_diff``.

    Raises
    ------
    KttError
        If any label differs or a score differs by more than ``tolerance``.
    """
    texts = list(texts)
    if not texts:
        raise KttError("no texts to check the ONNX graph against the model")
    labels, scores = run(path, texts)
    expected_scores = model.predict_scores(texts)
    expected_labels = np.asarray(model.classes_, dtype=object)[np.argmax(expected_scores, axis=1)]
    agree = labels.astype(object) == expected_labels
    diff = float(np.abs(scores.astype(np.float64) - expected_scores).max()) if scores.size else 0.0
    result = {"n_texts": len(texts), "label_agreement": float(agree.mean()), "max_score_diff": diff}
    if not agree.all() or diff > tolerance:
        raise KttError(
            f"the ONNX graph disagrees with {type(model).__name__}: labels equal on {agree.mean():.2%} of "
            f"{len(texts)} texts, max score difference {diff:.3g} (tolerance {tolerance:g})"
        )
    return result


def probe_texts(vectorizer, n: int = 256, seed: int = 0) -> list[str]:
    """Texts made of vocabulary terms, to check a graph when no data split is at hand.

    Parameters
    ----------
    vectorizer : TfidfVectorizer
        Fitted; its terms are drawn at random, 1 to 12 per text.
    n : int
        How many texts.
    seed : int
    """
    terms = vectorizer.get_feature_names_out()
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(terms, size=rng.integers(1, 13))) for _ in range(n)]


def write_description(folder: str | Path, model, parity: dict) -> Path:
    """``export.json`` beside the graph: how to feed it and what it returns."""
    description = {
        "graph": "model.onnx",
        "input": {"name": INPUT_NAME, "type": "string", "shape": ["N", 1],
                  "content": "preprocessed text: ktt.preprocess.preprocess(raw_texts)"},
        "outputs": {
            "label": {"type": "string", "shape": ["N"], "content": "argmax of scores (the predicted leaf class)"},
            "scores": {"type": "float32", "shape": ["N", len(model.classes_)],
                       "content": "per-leaf scores in classes order"},
        },
        "classes": [str(c) for c in model.classes_],
        "hierarchy": "hierarchy.json",
        "model": f"{type(model).__module__}.{type(model).__name__}",
        "parity": parity,
    }
    path = Path(folder) / "export.json"
    path.write_text(json.dumps(description, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
