"""ktt.serving.batching: the requests waiting together are scored in one call, each gets its own answer."""

import asyncio
import threading

import pytest

from ktt.serving.batching import RequestBatcher


class Recorder:
    """A classify that answers each text with its upper-case form and records its calls."""

    def __init__(self, fail_on: str | None = None):
        self.calls: list[list[str]] = []
        self.threads: list[int] = []
        self.fail_on = fail_on

    def __call__(self, texts):
        self.calls.append(list(texts))
        self.threads.append(threading.get_ident())
        if self.fail_on is not None and self.fail_on in texts:
            raise ValueError(f"cannot score {self.fail_on!r}")
        return [text.upper() for text in texts]


def run(coroutine):
    return asyncio.run(coroutine)


def test_requests_waiting_together_are_scored_in_one_call_and_each_gets_its_own_answers():
    recorder = Recorder()
    batcher = RequestBatcher(recorder, max_batch_size=64, inline_texts=16)

    async def main():
        return await asyncio.gather(*(batcher([f"t{i}", f"u{i}"]) for i in range(5)))

    assert run(main()) == [[f"T{i}", f"U{i}"] for i in range(5)]
    assert recorder.calls == [[text for i in range(5) for text in (f"t{i}", f"u{i}")]]
    assert (batcher.calls, batcher.texts) == (1, 10)


def test_a_request_alone_is_scored_at_once_and_alone():
    recorder = Recorder()
    batcher = RequestBatcher(recorder, max_batch_size=64, inline_texts=16)

    async def main():
        first = await batcher(["a"])
        second = await batcher(["b"])
        return first, second

    assert run(main()) == (["A"], ["B"])
    assert recorder.calls == [["a"], ["b"]]


def test_batches_hold_at_most_max_batch_size_texts_and_keep_the_order():
    recorder = Recorder()
    batcher = RequestBatcher(recorder, max_batch_size=4, inline_texts=16)

    async def main():
        return await asyncio.gather(*(batcher([f"t{i}"] * 3) for i in range(4)), batcher(["x"] * 9))

    answers = run(main())
    assert answers == [[f"T{i}"] * 3 for i in range(4)] + [["X"] * 9]
    # 3 + 3 would exceed 4: each request of 3 alone; the request of 9 alone, whole
    assert [len(call) for call in recorder.calls] == [3, 3, 3, 3, 9]


def test_large_calls_run_in_a_worker_thread_small_ones_in_the_event_loop():
    recorder = Recorder()
    batcher = RequestBatcher(recorder, max_batch_size=64, inline_texts=2)

    async def main():
        await batcher(["a", "b"])
        await batcher(["a", "b", "c"])

    run(main())
    loop_thread = threading.get_ident()
    assert recorder.threads[0] == loop_thread and recorder.threads[1] != loop_thread


def test_a_failing_request_fails_alone_and_its_neighbours_get_their_answers():
    recorder = Recorder(fail_on="bad")
    batcher = RequestBatcher(recorder, max_batch_size=64, inline_texts=16)

    async def main():
        return await asyncio.gather(batcher(["a"]), batcher(["bad"]), batcher(["c"]), return_exceptions=True)

    a, bad, c = run(main())
    assert (a, c) == (["A"], ["C"])
    assert isinstance(bad, ValueError) and "cannot score 'bad'" in str(bad)
    # the shared call failed, then each request was scored on its own
    assert recorder.calls == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


def test_a_request_whose_client_left_is_not_scored():
    recorder = Recorder()
    batcher = RequestBatcher(recorder, max_batch_size=64, inline_texts=16)

    async def main():
        gone = asyncio.ensure_future(batcher(["gone"]))
        kept = asyncio.ensure_future(batcher(["kept"]))
        await asyncio.sleep(0)  # both are queued
        gone.cancel()
        return await kept

    assert run(main()) == ["KEPT"]
    assert recorder.calls == [["kept"]]


def test_the_batcher_serves_again_after_its_event_loop_changes():
    """A new event loop (a restarted server, or tests) gets a new worker."""
    recorder = Recorder()
    batcher = RequestBatcher(recorder, max_batch_size=64, inline_texts=16)
    assert run(batcher(["a"])) == ["A"]
    assert run(batcher(["b"])) == ["B"]


@pytest.mark.parametrize("size", [1, 64])
def test_batch_sizes_are_counted(size):
    recorder = Recorder()
    batcher = RequestBatcher(recorder, max_batch_size=64, inline_texts=16)
    run(batcher(["a"] * size))
    assert (batcher.calls, batcher.texts) == (1, size)
