from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvloop

from service.batch_queue import BatchLimits, Group, Item, LengthQueue, pick_batch
from service.batcher import Batcher
from service.engine import Engine, EngineConfig
from service.errors import DeadlineExceeded, InferenceFailed, NotReady, QueueFull
from service.metrics import Metrics

_LOOP = asyncio.new_event_loop()  # the futures of _item's groups, never run


@pytest.fixture(scope="module", autouse=True)
def _close_loop() -> Iterator[None]:
    yield
    _LOOP.close()


def _ids(values: list[int]) -> bytes:
    """Token ids as the batcher takes them: int64 bytes."""
    return np.array(values, dtype=np.int64).tobytes()


def _item(n: int) -> Item:
    group = Group(asyncio.Future(loop=_LOOP), 1)
    return Item(_ids(list(range(1, n + 1))), time.monotonic() + 10, group, 0)


def _pick(items: list[Item], limits: BatchLimits) -> list[Item]:
    """pick_batch with items[0] as the anchor and the others queued in their length lanes."""
    lanes: dict[int, deque[Item]] = {}
    for it in items[1:]:
        lanes.setdefault(it.n, deque()).append(it)
    return pick_batch(items[0], lanes, limits)


def test_pick_batch_takes_the_oldest_and_the_closest_lengths_within_both_limits() -> None:
    items = [_item(n) for n in (30, 2, 17, 29, 31, 28, 1, 100, 30)]
    batch = _pick(items, BatchLimits(max_batch_size=3, max_batch_tokens=100, split_cost_tokens=16))
    # The oldest (30) always goes; then the other 30 (no padding), then 29 or 31 (one token of
    # padding either way: the older, 29, wins the tie). 28 would make four: over max_batch_size.
    assert [i.n for i in batch] == [30, 30, 29]
    tight = _pick(items, BatchLimits(max_batch_size=8, max_batch_tokens=95, split_cost_tokens=16))
    assert len(tight) == 3 and max(i.n for i in tight) * len(tight) <= 95


def test_pick_batch_keeps_texts_apart_when_padding_costs_more_than_a_call() -> None:
    items = [_item(n) for n in (5, 40, 6, 4, 22)]
    batch = _pick(items, BatchLimits(max_batch_size=64, max_batch_tokens=4096, split_cost_tokens=16))
    assert [i.n for i in batch] == [5, 6, 4]  # 22 would add (22 - 6) × 3 = 48 padded tokens
    assert [i.n for i in _pick([_item(200), _item(3)], BatchLimits(max_batch_tokens=100))] == [200]


def test_length_queue_batches_oldest_first_and_skips_dropped_items() -> None:
    q = LengthQueue()
    items = [_item(n) for n in (7, 3, 7, 3, 9, 7)]
    q.push(items)
    dead = {id(items[2])}  # e.g. its caller disconnected

    def alive(it: Item) -> bool:
        if id(it) in dead:
            q.drop(it)
            return False
        return True

    limits = BatchLimits(split_cost_tokens=0)
    assert q.next_batch(limits, alive) == [items[0], items[5]]  # the 7s, the dropped one skipped
    assert q.pending == 3 and q.front() is items[1]
    assert q.next_batch(limits, alive) == [items[1], items[3]]
    assert q.next_batch(limits, alive) == [items[4]]
    assert q.pending == 0 and q.front() is None and not q.lanes


def test_length_queue_near_counts_texts_within_the_spread() -> None:
    q = LengthQueue()
    q.push([_item(n) for n in (7, 3, 7, 3, 9, 7, 12)])
    assert [q.near(7, 0), q.near(8, 1), q.near(7, 2), q.near(5, 1)] == [3, 4, 4, 0]
    assert q.near(7, 10_000) == 7  # a spread wider than the lanes: counted over the lanes


def _engine(artifact: Path) -> Engine:
    return Engine(artifact / "model.onnx", EngineConfig(device="cpu"))


def test_batcher_results_match_running_each_text_alone(tiny_artifact: Path) -> None:
    engine = _engine(tiny_artifact)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(2, 1000, size=int(n)).astype(np.int64) for n in rng.integers(1, 40, size=50)]

    async def go() -> list[tuple[np.ndarray, np.ndarray]]:
        b = Batcher(engine.run, 0, BatchLimits(max_batch_size=16, max_batch_tokens=256, max_wait_s=0.01), Metrics())
        b.start()
        # One request per text and one request with all of them: results come back in order.
        alone = [b.submit([s.tobytes()], time.monotonic() + 10) for s in seqs]
        together = await b.submit([s.tobytes() for s in seqs], time.monotonic() + 10)
        res = [r for (r,) in await asyncio.gather(*alone)]
        await b.close(5)
        for (p1, a1), (p2, a2) in zip(res, together, strict=True):
            assert np.allclose(p1, p2, atol=1e-5) and np.allclose(a1, a2, atol=1e-5)
        return res

    for s, (probs, attn) in zip(seqs, asyncio.run(go()), strict=True):
        p1, a1 = engine.run(s[None, :], np.ones((1, len(s)), dtype=np.int64))
        assert np.abs(probs - p1[0]).max() <= 1e-5
        assert attn.shape == (len(s),) and np.abs(attn - a1[0]).max() <= 1e-5


def _recording_batcher(limits: BatchLimits, fail_at_length: int | None = None) -> tuple[Batcher, list[list[tuple[int, int]]]]:
    """A batcher over an echo engine that records each engine call's batch shapes, and fails the
    batches of one length if asked."""
    calls: list[list[tuple[int, int]]] = []

    def echo(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls[-1].append(ids.shape)
        if ids.shape[1] == fail_at_length:
            raise RuntimeError("device lost")
        return np.full((ids.shape[0], 2), 0.5, np.float32), mask.astype(np.float32)

    b = Batcher(echo, 0, limits, Metrics())
    hop = b.engine.call

    async def counted(fn: Any, *args: Any) -> Any:
        calls.append([])
        return await hop(fn, *args)

    b.engine.call = counted  # type: ignore[method-assign]
    return b, calls


def _texts(*lengths: int) -> list[bytes]:
    return [_ids(list(range(1, n + 1))) for n in lengths]


def test_batcher_one_engine_call_runs_each_length_group_apart() -> None:
    async def go() -> list[list[tuple[int, int]]]:
        b, calls = _recording_batcher(BatchLimits(max_wait_s=0.05, split_cost_tokens=0))
        b.start()
        results = await b.submit(_texts(3, 3, 9, 9, 9, 9, 3), time.monotonic() + 10)
        assert [attn.shape for _, attn in results] == [(3,), (3,), (9,), (9,), (9,), (9,), (3,)]  # in request order
        await b.close(5)
        return calls

    # One hop to the engine thread; two onnxruntime runs, oldest text's length group first, no padding.
    assert asyncio.run(go()) == [[(3, 3), (4, 9)]]


@pytest.mark.parametrize(
    ("max_wait_s", "expected"),
    [(1.0, [[(4, 3)], [(3, 9)]]), (0.0, [[(4, 3), (2, 9)], [(1, 9)]])],  # 1 s: far longer than the first call takes
    ids=["fresh-group-waits", "waited-group-runs"],
)
def test_batcher_small_further_group_waits_for_company_up_to_max_wait(max_wait_s: float, expected: list[Any]) -> None:
    # 7 texts × 9 tokens ≥ 30: the queue is full, so the first call starts at once. Three texts of
    # length 9 would run at ~1.1× the cost per text of a full batch: they join only once they
    # have waited max_wait (within the call's 30 tokens: 12 + 2 × 9).
    async def go() -> list[list[tuple[int, int]]]:
        b, calls = _recording_batcher(BatchLimits(max_batch_tokens=30, max_wait_s=max_wait_s, split_cost_tokens=0))
        b.start()
        await b.submit(_texts(3, 3, 3, 3, 9, 9, 9), time.monotonic() + 10)
        await b.close(5)
        return calls

    assert asyncio.run(go()) == expected


@pytest.mark.parametrize(
    ("limits", "lengths", "expected"),
    [
        (BatchLimits(max_batch_size=6), (2, 2, 2, 7, 7, 7, 7, 7), [[(3, 2), (3, 7)], [(2, 7)]]),  # 6 texts a call
        (BatchLimits(max_batch_tokens=30), (2, 2, 2, 5, 5, 5, 5, 5), [[(3, 2), (4, 5)], [(1, 5)]]),  # 6 + 20 ≤ 30 tokens
    ],
    ids=["texts", "tokens"],
)
def test_batcher_call_stays_within_both_limits_in_all(limits: BatchLimits, lengths: tuple[int, ...], expected: list[Any]) -> None:
    async def go() -> list[list[tuple[int, int]]]:
        b, calls = _recording_batcher(replace(limits, max_wait_s=0.05, split_cost_tokens=0))
        b.start()
        await b.submit(_texts(*lengths), time.monotonic() + 10)
        await b.close(5)
        return calls

    assert asyncio.run(go()) == expected


def test_batcher_call_runs_batches_of_at_most_max_run_size() -> None:
    # One hop to the engine thread for all seven texts, in runs of at most three (onnxruntime
    # costs less per text in smaller runs on a CPU; the hop costs the event loop per call).
    async def go() -> list[list[tuple[int, int]]]:
        b, calls = _recording_batcher(BatchLimits(max_run_size=3, max_wait_s=0.0, split_cost_tokens=0))
        b.start()
        await b.submit(_texts(5, 5, 5, 5, 5, 5, 5), time.monotonic() + 10)
        await b.close(5)
        return calls

    # Cut into the runs of least cost by the default table: 2 + 2 + 3 rather than 3 + 3 + 1.
    assert asyncio.run(go()) == [[(2, 5), (2, 5), (3, 5)]]


def test_batcher_token_budget_counts_the_next_live_text_not_a_cancelled_one() -> None:
    async def go() -> list[list[tuple[int, int]]]:
        b, calls = _recording_batcher(BatchLimits(max_batch_tokens=30, max_wait_s=0.0, split_cost_tokens=0))
        b.start()
        short = b.submit(_texts(3, 3, 3, 3), time.monotonic() + 10)  # 12 tokens
        gone = b.submit(_texts(2), time.monotonic() + 10)  # would fit the 18 left, but its client left
        long = b.submit(_texts(20), time.monotonic() + 10)  # does not fit: its own call
        gone.cancel()
        await short
        await long
        await b.close(5)
        return calls

    assert asyncio.run(go()) == [[(4, 3)], [(1, 20)]]


def test_batcher_failed_batch_fails_only_its_own_requests() -> None:
    async def go() -> None:
        b, calls = _recording_batcher(BatchLimits(max_wait_s=0.05, split_cost_tokens=0), fail_at_length=9)
        b.start()
        short = b.submit(_texts(3, 3), time.monotonic() + 10)
        long = b.submit(_texts(9, 9, 9, 9), time.monotonic() + 10)
        assert len(await short) == 2
        with pytest.raises(InferenceFailed, match="device lost"):
            await long
        assert calls == [[(2, 3), (4, 9)]]  # the same engine call
        await b.close(5)

    asyncio.run(go())


def test_batcher_engine_error_fails_the_batch_and_keeps_serving(tiny_artifact: Path) -> None:
    engine = _engine(tiny_artifact)
    fail = [True]

    def flaky(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if fail[0]:
            fail[0] = False
            raise RuntimeError("device lost")
        return engine.run(ids, mask)

    async def go() -> None:
        b = Batcher(flaky, 0, BatchLimits(max_wait_s=0.01), Metrics())
        b.start()
        first = b.submit([_ids([5, 6]), _ids([7])], time.monotonic() + 10)
        with pytest.raises(InferenceFailed, match="device lost"):
            await first
        ((probs, _),) = await b.submit([_ids([5, 6])], time.monotonic() + 10)
        assert probs.shape == (2,)
        await b.close(5)

    asyncio.run(go())


def test_batcher_wrong_row_count_from_engine_fails_clearly() -> None:
    def short(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((ids.shape[0] - 1, 2), np.float32), np.zeros((ids.shape[0] - 1, ids.shape[1]), np.float32)

    async def go() -> None:
        b = Batcher(short, 0, BatchLimits(max_wait_s=0.01), Metrics())
        b.start()
        fut = b.submit([_ids([1]), _ids([2, 3])], time.monotonic() + 10)
        with pytest.raises(InferenceFailed, match="returned 1 rows"):
            await fut
        await b.close(5)

    asyncio.run(go())


def test_batcher_drops_expired_and_cancelled_items_without_running_them(tiny_artifact: Path) -> None:
    engine = _engine(tiny_artifact)
    ran: list[int] = []

    def counting(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ran.append(ids.shape[0])
        return engine.run(ids, mask)

    async def go() -> None:
        b = Batcher(counting, 0, BatchLimits(max_wait_s=0.05), Metrics())
        b.start()
        expired = b.submit([_ids([1, 2])], time.monotonic() - 1)
        gone = b.submit([_ids([3]), _ids([3, 4])], time.monotonic() + 10)
        kept = b.submit([_ids([4])], time.monotonic() + 10)
        gone.cancel()
        with pytest.raises(DeadlineExceeded):
            await expired
        await kept
        await b.close(5)

    asyncio.run(go())
    assert ran == [1]


def _zeros(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An instant engine: outputs of the right shapes."""
    return np.zeros((ids.shape[0], 2), np.float32), np.zeros(ids.shape, np.float32)


def test_batcher_waits_for_company_no_longer_than_max_wait_under_uvloop() -> None:
    # uvloop's timers count whole milliseconds: one set for 0.4 ms fires before the deadline
    # the batcher computed with time.monotonic(). The batcher must not then wait for good (with
    # a single timer per wait, this hung: each wait_for below timed out).
    async def go() -> None:
        b = Batcher(_zeros, 0, BatchLimits(max_wait_s=0.0004), Metrics())
        b.start()
        for _ in range(40):  # two requests at once: never a lone client, so each batch waits for company
            both = asyncio.gather(b.submit([_ids([1])], time.monotonic() + 10), b.submit([_ids([2])], time.monotonic() + 10))
            await asyncio.wait_for(both, 2)
        await b.close(5)

    uvloop.run(go())


def test_batcher_lone_client_multi_text_request_does_not_wait_for_company() -> None:
    async def go() -> float:
        b = Batcher(_zeros, 0, BatchLimits(max_wait_s=10.0), Metrics())
        b.start()
        deadline = time.monotonic() + 30
        await asyncio.wait_for(b.submit([_ids([1])], deadline), 2)  # a lone text runs at once
        # The last call was one request into an empty queue: the next request alone runs at once
        # too, however many texts it has (waiting would take 10 s).
        await asyncio.wait_for(b.submit([_ids([1, 2]), _ids([3])], deadline), 2)
        await asyncio.wait_for(b.submit([_ids([4, 5, 6])] * 3, deadline), 2)
        # Two requests at once: not a lone client, so they wait for company (max_wait, here 0.2 s).
        b.limits = replace(b.limits, max_wait_s=0.2)
        t = time.monotonic()
        await asyncio.wait_for(asyncio.gather(b.submit([_ids([1, 2])] * 2, deadline), b.submit([_ids([3])] * 2, deadline)), 2)
        waited = time.monotonic() - t
        await b.close(5)
        return waited

    assert asyncio.run(go()) >= 0.19


def test_batcher_full_queue_refuses_whole_request() -> None:
    async def go() -> None:
        b = Batcher(lambda i, m: (i, m), 0, BatchLimits(max_queue=3, max_wait_s=10), Metrics())
        try:
            b.submit([_ids([1]), _ids([2])], time.monotonic() + 10)
            with pytest.raises(QueueFull):
                b.submit([_ids([1]), _ids([2])], time.monotonic() + 10)
            assert b.queue.pending == 2
        finally:
            b.engine.close()  # never started: its thread would outlive the test

    asyncio.run(go())


def test_batcher_close_runs_everything_queued(tiny_artifact: Path) -> None:
    engine = _engine(tiny_artifact)

    async def go() -> None:
        b = Batcher(engine.run, 0, BatchLimits(max_wait_s=5), Metrics())
        b.start()
        fut = b.submit([_ids([1, 2, 3])] * 5, time.monotonic() + 10)
        await b.close(5)  # closing cuts the 5 s wait short and drains
        assert fut.done() and len(fut.result()) == 5

    asyncio.run(go())


def test_batcher_drain_timeout_fails_the_running_batch_and_the_queue() -> None:
    release = threading.Event()

    def stuck(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        release.wait(5)
        return np.zeros((ids.shape[0], 2), np.float32), np.zeros(ids.shape, np.float32)

    async def go() -> None:
        b = Batcher(stuck, 0, BatchLimits(max_wait_s=0.0), Metrics())
        b.start()
        running = b.submit([_ids([1, 2])], time.monotonic() + 30)
        await asyncio.sleep(0.05)  # in the engine now
        queued = b.submit([_ids([3])], time.monotonic() + 30)
        asyncio.get_running_loop().call_later(0.5, release.set)  # the stuck call ends, later
        await b.close(0.2)
        for fut in (running, queued):  # both answered at the drain timeout, not at their deadline
            with pytest.raises(NotReady):
                await asyncio.wait_for(fut, 2)  # without the fix: a TimeoutError, not a hang

    asyncio.run(go())
