"""Batching the requests that wait together, inside one process: :class:`RequestBatcher`.

A prediction's cost is mostly fixed per call (featurising, one product per weight
block, the node rules, the paths), so eight texts scored together cost about 2.5x
one text, not 8x (measured on the default tfidf_hsgd, 20,000 ICD-10-CM rows).
BentoML's adaptive batching gets this across processes, at the price of an HTTP
call per request to the model service; a service that holds its model
(``adaptive_batching=false``) gets it here instead, without waiting for anything:

* a request's texts join a queue, and the first request of an idle service is
  scored at once, alone;
* while a batch is being scored, the requests that arrive queue up, and they are
  scored together as soon as it ends, up to ``max_batch_size`` texts per call.

So there is no latency budget to choose: a quiet service answers each request
alone, a busy one in batches as large as its load makes them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import lru_cache
from typing import Callable, Sequence


class RequestBatcher:
    """Scores the texts of concurrent requests in shared calls of ``classify``.

    Parameters
    ----------
    classify : callable
        Texts to one result per text, in order (:meth:`ktt.serving.ModelRuntime.classify`).
    max_batch_size : int
        Most texts per call; a request with more is scored alone.
    inline_texts : int
        Up to this many texts a call runs in the event loop (cheaper than a thread
        for a few texts); larger calls run in a worker thread, and the loop goes on
        accepting requests meanwhile.
    """

    def __init__(self, classify: Callable[[Sequence[str]], list], max_batch_size: int, inline_texts: int):
        self.classify = classify
        self.max_batch_size = max_batch_size
        self.inline_texts = inline_texts
        self._waiting: deque[tuple[list[str], asyncio.Future]] = deque()
        self._worker: asyncio.Task | None = None
        #: Calls of ``classify`` and texts scored (their ratio is the mean batch; also the
        #: ``ktt_batch_size`` histogram on a service's ``/metrics``).
        self.calls = self.texts = 0

    async def __call__(self, texts: list[str]) -> list:
        """The results of ``texts``, scored with whatever else is waiting."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((texts, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Score what waits, batch after batch, until nothing does."""
        while self._waiting:
            batch, size = [], 0
            while self._waiting and (not batch or size + len(self._waiting[0][0]) <= self.max_batch_size):
                texts, future = self._waiting.popleft()
                if not future.done():  # a request whose client left is not scored
                    batch.append((texts, future))
                    size += len(texts)
            if batch:
                await self._score(batch, size)
            await asyncio.sleep(0)  # the answers go out, and the requests that came meanwhile queue up

    async def _score(self, batch: list[tuple[list[str], asyncio.Future]], size: int) -> None:
        texts = [text for item, _ in batch for text in item]
        try:
            results = await self._call(texts, size)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            for item, future in batch:  # one request's failure is its own, not its neighbours'
                try:
                    _settle(future, result=await self._call(item, len(item)))
                except Exception as own:
                    _settle(future, error=own)
            return
        start = 0
        for item, future in batch:
            _settle(future, result=results[start : start + len(item)])
            start += len(item)

    async def _call(self, texts: list[str], size: int) -> list:
        self.calls += 1
        self.texts += size
        _batch_sizes().observe(size)
        if size <= self.inline_texts:
            return self.classify(texts)
        import anyio

        return await anyio.to_thread.run_sync(self.classify, texts)


@lru_cache(maxsize=1)
def _batch_sizes():
    """The batch-size histogram (``ktt_batch_size`` on ``/metrics``), created on first use (after BentoML's
    metrics setup)."""
    from prometheus_client import Histogram

    return Histogram("ktt_batch_size", "Texts per call of the model inside the HTTP service",
                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
