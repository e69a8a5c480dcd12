"""The serving runtime every ktt model's service shares.

Two halves, one per BentoML service of a bento (see ``ktt/serving/bento/service.py.template``):

* :class:`RequestHandler` (the HTTP service): validates ``{"text": ...}`` /
  ``{"texts": [...]}``, preprocesses with :func:`ktt.preprocess.preprocess` (the
  project's own preprocessing, not a copy) and hands preprocessed texts to the
  model service in chunks of at most ``max_batch_size``;
* :class:`ModelRuntime` (the adaptively batched model service): loads the
  checkpoint verified by its sha256, predicts the label path with a score per
  level and feeds the monitoring hook.

The response of ``POST /predict`` is ``{"path": [top, ..., leaf], "scores": [s1, ..., sd]}``
(in a ragged tree, or with ``predict_threshold``, the path has as many classes as
the prediction reaches, and one score per class)
for ``{"text": "..."}`` and ``{"predictions": [{"path": ..., "scores": ...}, ...]}``
for ``{"texts": [...]}``; a bad request gets 400 ``{"error": "<one line>"}``.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from typing import Any, Awaitable, Callable, Sequence

import numpy as np

from ktt.errors import KttError
from ktt.serving.batching import RequestBatcher
from ktt.serving.settings import ServiceSettings

log = logging.getLogger(__name__)

#: Above this many characters in a request, preprocessing runs in a worker thread instead of the event loop.
INLINE_PREPROCESS_CHARS = 16_384
#: A service without a model service classifies up to this many texts per call in the event loop, more in
#: a worker thread.
INLINE_CLASSIFY_TEXTS = 16
#: Attempts of a call to the model service that fails on its connection (see RequestHandler).
CLASSIFY_ATTEMPTS = 3

_JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", type(None): "null", list: "an array",
               dict: "an object", str: "a string"}


class InputError(ValueError):
    """A request the service refuses (HTTP 400); the message is one line for the client."""


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def parse_texts(text: Any = None, texts: Any = None) -> tuple[list[str], bool]:
    """Validate the fields of a ``/predict`` request.

    Parameters
    ----------
    text : str, optional
        One text (the single form).
    texts : list of str, optional
        Several texts (the batch form).

    Returns
    -------
    texts : list of str
    single : bool
        True for the single form.

    Raises
    ------
    InputError
        If neither or both fields are given, a text is not a string, or is empty.
    """
    if text is None and texts is None:
        raise InputError('missing input: send {"text": "..."} or {"texts": ["...", ...]}')
    if text is not None and texts is not None:
        raise InputError('send either "text" or "texts", not both')
    if text is not None:
        if not isinstance(text, str):
            raise InputError(f'"text" must be a string, got {_json_type(text)}')
        if not text.strip():
            raise InputError('"text" is empty')
        return [text], True
    if not isinstance(texts, list):
        raise InputError(f'"texts" must be an array of strings, got {_json_type(texts)}')
    if not texts:
        raise InputError('"texts" is an empty array')
    for i, item in enumerate(texts):
        if not isinstance(item, str):
            raise InputError(f'"texts"[{i}] must be a string, got {_json_type(item)}')
        if not item.strip():
            raise InputError(f'"texts"[{i}] is empty')
    return list(texts), False


class RequestHandler:
    """The HTTP side of a ktt service: validation, preprocessing, chunking.

    BentoML 1.4.40 renews its client session to a dependency every 100 requests by
    closing the old one, which breaks the calls still in flight on it
    (bentoml/BentoML#5540); such a call is retried (:data:`CLASSIFY_ATTEMPTS` times
    in all) and counted in ``ktt_classify_retries_total``.

    Parameters
    ----------
    settings : ServiceSettings
    """

    def __init__(self, settings: ServiceSettings):
        from ktt.preprocess import preprocess

        self.settings = settings
        preprocess(["Warm up the tokenizer and stemmer."])  # imports NLTK now, not on the first request

    async def predict(self, text: Any, texts: Any,
                      classify: Callable[[list[str]], Awaitable[list[dict]]]):
        """Answer one ``/predict`` request.

        Parameters
        ----------
        text, texts
            The request's fields (see :func:`parse_texts`).
        classify : async callable
            The model service's batched ``classify`` (preprocessed texts to predictions).

        Returns
        -------
        starlette.responses.JSONResponse
            The prediction (single form), ``{"predictions": [...]}`` (batch form), or a
            400 response ``{"error": ...}``.
        """
        from starlette.responses import JSONResponse

        try:
            items, single = parse_texts(text, texts)
        except InputError as error:
            log.warning("400 POST /predict: %s", error)  # one line, as RequestGuard logs its refusals
            return JSONResponse({"error": str(error)}, status_code=400)
        processed = await self.preprocess(items)
        size = self.settings.max_batch_size
        chunks = [processed[i : i + size] for i in range(0, len(processed), size)]
        results = await asyncio.gather(*(self.classify(classify, chunk) for chunk in chunks))
        predictions = [prediction for result in results for prediction in result]
        # A response, not a dict: BentoML then skips its own output validation and serialisation
        # (which rebuilt the output's JSON schema on every request, ~10% of a request's CPU).
        return JSONResponse(predictions[0] if single else {"predictions": predictions})

    @staticmethod
    async def classify(classify: Callable[[list[str]], Awaitable[list[dict]]], chunk: list[str]) -> list[dict]:
        """``await classify(chunk)``, retried when the connection to the model service breaks."""
        for attempt in range(1, CLASSIFY_ATTEMPTS + 1):
            try:
                return await classify(chunk)
            except Exception as error:
                if attempt == CLASSIFY_ATTEMPTS or not _connection_error(error):
                    raise
                _retries().inc()
                log.info("retrying a call to the model service after %s: %s", type(error).__name__, error)
        raise AssertionError("unreachable")

    @staticmethod
    async def preprocess(items: list[str]) -> list[str]:
        """:func:`ktt.preprocess.preprocess`, off the event loop for large requests."""
        from ktt.preprocess import preprocess

        if sum(map(len, items)) <= INLINE_PREPROCESS_CHARS:
            return preprocess(items)
        import anyio

        return await anyio.to_thread.run_sync(preprocess, items)


def _connection_error(error: Exception) -> bool:
    """A broken or closed connection to the model service (the request can be sent again)."""
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - BentoML depends on aiohttp
        return False
    return isinstance(error, aiohttp.ClientConnectionError) or (
        isinstance(error, RuntimeError) and "Session is closed" in str(error))


@lru_cache(maxsize=1)
def _retries():
    """The retry counter, created on first use (after BentoML's metrics setup)."""
    from prometheus_client import Counter

    return Counter("ktt_classify_retries", "Calls to the model service sent again after a broken connection")


class ModelRuntime:
    """The model side of a ktt service: a verified checkpoint, label paths, monitoring.

    Parameters
    ----------
    model : ktt.model_sklearn.SklearnModel
        A fitted model with a hierarchy.
    monitor : MonitoringClient, optional
        Receives each batch's rows when given.
    max_batch_size : int
        Most texts :meth:`classify_async` scores in one call.
    """

    def __init__(self, model, monitor=None, max_batch_size: int = 64):
        for attribute in ("encode", "score_features", "paths_from_scores"):
            if not hasattr(model, attribute):
                raise KttError(f"{type(model).__name__} cannot be served: it has no {attribute}()")
        if getattr(model, "hierarchy", None) is None:
            raise KttError(f"{type(model).__name__} cannot be served: it has no hierarchy")
        self.model = model
        self.monitor = monitor
        self.class_names = np.asarray(model.hierarchy.classes, dtype=object)
        self.batcher = RequestBatcher(self.classify, max_batch_size, INLINE_CLASSIFY_TEXTS)

    @classmethod
    def load(cls, settings: ServiceSettings) -> "ModelRuntime":
        """Load the checkpoint named by ``settings`` (sha256-verified), score one text, set up monitoring.

        The text is scored before monitoring starts, so that it is never monitored:
        what a model builds on its first call (the featuriser's tries: about 1 s for
        1.35 million word bigrams) is built before the service answers its first request.

        Raises
        ------
        KttError
            If the checkpoint is missing or does not match its recorded sha256.
        """
        from ktt.model import Model

        model = Model.from_checkpoint(settings.checkpoint_path, sha256=settings.checkpoint_sha256)
        cls(model).classify(["warm up"])  # builds the featuriser's tries now, not on the first request
        monitor = None
        if settings.monitoring:
            from ktt.serving.monitoring import MonitoringClient

            monitor = MonitoringClient(settings.monitoring_url, queue_size=settings.monitoring_queue_size,
                                       timeout_s=settings.monitoring_timeout_s)
        return cls(model, monitor, settings.max_batch_size)

    def classify(self, texts: Sequence[str]) -> list[dict]:
        """Label paths of preprocessed texts, with a score per level.

        Parameters
        ----------
        texts : sequence of str
            Output of :func:`ktt.preprocess.preprocess`.

        Returns
        -------
        list of dict
            ``{"path": [class names, top level first], "scores": [one float per level]}``
            per text (see :meth:`ktt.model_sklearn.SklearnModel.paths_from_scores`).
        """
        if not len(texts):
            return []
        features = self.model.encode(list(texts))
        scores = self.model.score_features(features)
        paths, path_scores = self.model.paths_from_scores(scores)
        if self.monitor is not None:
            from ktt.pooling import pool_features
            from ktt.serving.monitoring import monitoring_rows

            self.monitor.submit(monitoring_rows(pool_features(features), scores))
        names = self.class_names[paths]
        if self.model.hierarchy.ragged or getattr(self.model, "stop_thresholds_", None) is not None:
            return ragged_predictions(self.model, names, paths, path_scores)
        return [{"path": names[i].tolist(), "scores": path_scores[i].tolist()} for i in range(len(names))]

    async def classify_async(self, texts: list[str]) -> list[dict]:
        """:meth:`classify` inside an HTTP service (no model service): the texts of concurrent requests
        scored together, up to ``max_batch_size`` per call (:class:`ktt.serving.batching.RequestBatcher`)."""
        return await self.batcher(texts)

    def close(self) -> None:
        """Stop the monitoring thread."""
        if self.monitor is not None:
            self.monitor.close()


def ragged_predictions(model, names: np.ndarray, paths: np.ndarray, path_scores: np.ndarray) -> list[dict]:
    """Predictions whose paths end at their deepest real class (a ragged tree's stops dropped).

    Parameters
    ----------
    model : ktt.model_sklearn.SklearnModel
        A fitted model; its ``stopped(paths, path_scores)`` (``predict_threshold``), if
        it has one, cuts paths above the leaf where the model is unsure.
    names, paths, path_scores : ndarray of shape (n, depth)
        Class names, class indices and per-level scores of the predicted paths.
    """
    real = model.hierarchy.real_mask(paths)
    stopped = model.stopped(paths, path_scores) if hasattr(model, "stopped") else None
    if stopped is not None:
        real &= ~stopped
    return [{"path": names[i][real[i]].tolist(), "scores": path_scores[i][real[i]].tolist()}
            for i in range(len(names))]
