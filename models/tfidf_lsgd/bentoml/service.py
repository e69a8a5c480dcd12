"""BentoML service of tfidf_lsgd: raw text in, the predicted label path with a score per level out.

This file is copied into the bento by ``python -m ktt export=bento`` (or
``python -m ktt.export run_id=... export=bento``), beside ``ktt_service.json``, the
run's checkpoint and ktt's code; it only wires ktt's shared runtime
(:mod:`ktt.serving`) into BentoML. It cannot run from the source tree.

Two services, so that validation and preprocessing happen per request while the
model sees adaptive batches:

* ``TfidfLSGD`` (HTTP): ``POST /predict`` with ``{"text": "..."}`` answers
  ``{"path": [...], "scores": [...]}``; ``{"texts": ["...", ...]}`` answers
  ``{"predictions": [{"path": ..., "scores": ...}, ...]}``. A missing, non-string
  or empty text gets 400 ``{"error": ...}``, as does a body that is not a JSON object (or is
  nested too deeply); a body over ``max_body_bytes`` gets 413, a Content-Type other than JSON 415.
* ``TfidfLSGDClassifier``: the checkpoint (verified by its sha256) behind
  ``classify``, batched up to ``max_batch_size`` texts within ``max_latency_ms``;
  it feeds the monitoring hook when the bento has a reference set.
"""

from __future__ import annotations

from typing import Annotated, Any

import bentoml
from pydantic import Field

from ktt.serving import ModelRuntime, RequestGuard, RequestHandler, ServiceSettings

SETTINGS = ServiceSettings.load(__file__)


@bentoml.service(name="tfidf_lsgd_classifier", **SETTINGS.service_config("model"))
class TfidfLSGDClassifier:
    """The model behind adaptive batching: preprocessed texts in, label paths out."""

    def __init__(self) -> None:
        self.runtime = ModelRuntime.load(SETTINGS)

    @bentoml.api(**SETTINGS.batching())
    def classify(self, texts: list[str]) -> list[dict]:
        """Label paths (with a score per level) of preprocessed texts."""
        return self.runtime.classify(texts)


@bentoml.service(name="tfidf_lsgd", **SETTINGS.service_config("api"))
class TfidfLSGD:
    """Hierarchical text classification with tfidf_lsgd."""

    classifier = bentoml.depends(TfidfLSGDClassifier)

    def __init__(self) -> None:
        self.handler = RequestHandler(SETTINGS)

    @bentoml.api(route="/predict")
    async def predict(
        self,
        text: Annotated[Any, Field(description="One text to classify")] = None,
        texts: Annotated[Any, Field(description="Several texts to classify (instead of text)")] = None,
    ) -> dict:
        """Classify ``text`` (one string) or ``texts`` (a list of strings)."""
        return await self.handler.predict(text, texts, self.classifier.to_async.classify)


TfidfLSGD.add_asgi_middleware(RequestGuard, max_bytes=SETTINGS.max_body_bytes)
