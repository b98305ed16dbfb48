"""Micro-batching: one asyncio task owns the queue and makes one engine call at a time.

The next batch is formed when the queue holds `max_batch_size` texts, or `max_batch_tokens`
padded tokens, or the oldest text has waited `max_wait_s`. It always contains the oldest live text
(so waiting is first come, first served and nobody waits behind more than the queue ahead of
them), joined by the queued texts closest to it in length, within both limits and as long as each
one adds less padding than one more engine call costs: similar lengths share a batch, so little
compute goes to padding. Texts whose deadline passed or whose caller went away are dropped before
they run. While a batch runs in the engine thread, new texts queue up, so the batch size grows with
the load by itself.

Knows nothing of HTTP or pydantic: items are token-id arrays with a deadline and a future.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from service.errors import DeadlineExceeded, InferenceFailed, NotReady, QueueFull
from service.metrics import Metrics
from service.padding import right_pad

log = logging.getLogger(__name__)

RunFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Result = tuple[np.ndarray, np.ndarray]  # probabilities (C,), attention (L,)


@dataclass(eq=False)
class Item:
    ids: np.ndarray  # (L,) int64
    deadline: float  # time.monotonic() by which it must have run
    future: asyncio.Future[Result]
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 64
    max_batch_tokens: int = 4096
    max_wait_s: float = 0.002
    max_queue: int = 2048
    split_cost_tokens: int = 4


def pick_batch(window: list[Item], limits: BatchLimits) -> list[Item]:
    """The oldest item (window[0]) and the items closest to it in length (older first among
    equals), with count ≤ max_batch_size and longest × count ≤ max_batch_tokens (a single text
    longer than the token budget still runs, alone).

    An item joins only if it adds at most `split_cost_tokens` of padding (its own, if shorter than
    the batch's longest; the others', if longer): on a CPU the cost per token hardly falls past a
    few texts per batch, so padding is waste while one more engine call is cheap
    (see docs/SERVING.md).
    """
    anchor = len(window[0].ids)
    batch, longest = [window[0]], anchor
    for i in sorted(range(1, len(window)), key=lambda i: (abs(len(window[i].ids) - anchor), i)):
        if len(batch) >= limits.max_batch_size:
            break
        n = len(window[i].ids)
        top = max(longest, n)
        added = (top - longest) * len(batch) + (top - n)  # padded tokens this item adds
        if added <= limits.split_cost_tokens and top * (len(batch) + 1) <= limits.max_batch_tokens:
            batch.append(window[i])
            longest = top
    return batch


class Batcher:
    def __init__(self, run: RunFn, pad_id: int, limits: BatchLimits, metrics: Metrics) -> None:
        self.run_fn, self.pad_id, self.limits, self.metrics = run, pad_id, limits, metrics
        self.queue: deque[Item] = deque()
        self.queue_max_len = 0  # longest text queued since the queue was last empty: for _full()
        self.wake = asyncio.Event()
        # One engine call at a time, off the event loop.
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.last_batch_texts = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop(), name="batcher")

    def submit(self, ids: list[np.ndarray], deadline: float) -> list[asyncio.Future[Result]]:
        """Queue a request's texts together (all or none); the futures resolve in order."""
        if self.closing:
            raise NotReady("the server is shutting down", "retry on another replica", {"Retry-After": "1"})
        if len(self.queue) + len(ids) > self.limits.max_queue:
            raise QueueFull(
                f"the queue is full ({len(self.queue)} of {self.limits.max_queue} texts waiting)",
                "retry after the Retry-After delay, send fewer texts, or add replicas",
                {"Retry-After": "1"},
            )
        loop = asyncio.get_running_loop()
        futures = []
        for x in ids:
            it = Item(x, deadline, loop.create_future())
            self.queue.append(it)
            self.queue_max_len = max(self.queue_max_len, len(x))
            futures.append(it.future)
        self.metrics.queue_depth.inc(len(ids))
        self.wake.set()
        return futures

    def _full(self) -> bool:
        n = len(self.queue)
        return n >= self.limits.max_batch_size or n * self.queue_max_len >= self.limits.max_batch_tokens

    async def _loop(self) -> None:
        while True:
            if not self.queue:
                if self.closing:
                    return
                self.wake.clear()
                await self.wake.wait()
                continue
            # Wait for company until the batch is full or the oldest text has waited enough —
            # unless the last batch was a lone text run into an empty queue: then nobody else is
            # sending, and waiting would only add max_wait to every request of a lone client.
            oldest = self.queue[0].enqueued
            lone = self.last_batch_texts <= 1 and len(self.queue) == 1
            while not lone and not self._full() and not self.closing:
                left = oldest + self.limits.max_wait_s - time.monotonic()
                if left <= 0:
                    break
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), left)
                except TimeoutError:
                    break
            batch = self._next_batch()
            if batch:
                await self._run(batch)

    def _next_batch(self) -> list[Item]:
        """Take the next batch off the queue, dropping the dead texts met on the way. Only the
        oldest few batches' worth are considered, which bounds the work per batch."""
        now = time.monotonic()
        window = [self.queue.popleft() for _ in range(min(len(self.queue), 4 * self.limits.max_batch_size))]
        live = []
        for it in window:
            if it.future.done():  # cancelled: the caller disconnected or gave up
                self.metrics.texts.labels("cancelled").inc()
            elif it.deadline < now:
                self._expire(it)
            else:
                live.append(it)
        batch = pick_batch(live, self.limits) if live else []
        taken = set(batch)
        rest = [it for it in live if it not in taken]
        self.queue.extendleft(reversed(rest))  # back at the front, in their order
        if not self.queue:
            self.queue_max_len = 0  # otherwise an upper bound, which only makes _full() keener
        self.metrics.queue_depth.dec(len(window) - len(rest))
        self.last_batch_texts = len(batch)
        return batch

    def _expire(self, it: Item) -> None:
        self.metrics.texts.labels("deadline").inc()
        it.future.set_exception(
            DeadlineExceeded("the request's deadline passed while it was queued", "raise timeout_ms, send fewer texts, or add replicas")
        )

    async def _run(self, batch: list[Item]) -> None:
        start = time.monotonic()
        # The wait for company or a slow engine call may have run past someone's deadline.
        for it in batch:
            if not it.future.done() and it.deadline < start:
                self._expire(it)
        batch = [it for it in batch if not it.future.done()]
        if not batch:
            return
        for it in batch:
            self.metrics.queue_wait.observe(start - it.enqueued)
        ids, mask = right_pad([it.ids for it in batch], self.pad_id)  # (B, T) each
        B, T = ids.shape
        self.metrics.batch_texts.observe(B)
        self.metrics.batch_tokens.observe(B * T)
        self.metrics.batch_padding.observe(1.0 - float(mask.sum()) / (B * T))
        try:
            probs, attn = await asyncio.get_running_loop().run_in_executor(self.pool, self.run_fn, ids, mask)
            if probs.shape[0] != B or attn.shape != (B, T):
                raise InferenceFailed(
                    f"the engine returned {probs.shape[0]} rows / attention {attn.shape} for a batch of {(B, T)}",
                    "the artifact's outputs do not follow the contract; re-export it",
                )
        except Exception as e:
            err = (
                e
                if isinstance(e, InferenceFailed)
                else InferenceFailed(f"inference failed: {e}", "retry; report it with the request_id if it persists")
            )
            log.error("batch of %d texts failed: %s", B, err.message)
            self.metrics.texts.labels("error").inc(B)
            for it in batch:
                if not it.future.done():
                    it.future.set_exception(err)
            return
        finally:
            self.metrics.inference.observe(time.monotonic() - start)
        for r, it in enumerate(batch):
            if not it.future.done():
                it.future.set_result((probs[r], attn[r, : len(it.ids)]))
        self.metrics.texts.labels("ok").inc(B)

    async def close(self, timeout: float) -> None:
        """Stop taking texts, finish every queued one, then stop the engine thread."""
        self.closing = True
        self.wake.set()
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), timeout)
            except TimeoutError:
                log.error("drain timeout: %d queued texts not run", len(self.queue))
                self.task.cancel()
                for it in self.queue:
                    if not it.future.done():
                        it.future.set_exception(NotReady("the server stopped before this text ran", "retry"))
        self.pool.shutdown(wait=True)
