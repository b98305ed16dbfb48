"""Micro-batching: one asyncio task owns the queue and makes one engine call at a time.

The next engine call is made when the queue holds `max_batch_size` texts, or `max_batch_tokens`
padded tokens, or the oldest text has waited `max_wait_s`. Its first batch always contains the
oldest live text (so waiting is first come, first served and nobody waits behind more than the
queue ahead of them), joined by the queued texts closest to it in length, within both limits (and
`max_run_size` texts per batch) and as long as each one adds less padding than one more
onnxruntime run costs: similar lengths share a batch, so little compute goes to padding. While the
queue holds more, the call takes further batches the same way (the next oldest text and its
neighbours in length), each its own onnxruntime run, until the call holds `max_batch_size` texts
or `max_batch_tokens` padded tokens in all: under load one event-loop wake-up and one hop to the
engine thread serve several length groups. On a CPU (several runs per call) the call's texts are
then cut afresh into the onnxruntime runs of least cost (service/run_costs.py). Texts whose
deadline passed or whose caller went away are dropped before they run. While a call runs, new
texts queue up, so the batch size grows with the load by itself.

The queue and the rules that form batches are in service/batch_queue.py. Knows nothing of HTTP or
pydantic: items are token ids (int64 bytes) with a deadline, grouped by request; one future each.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from service.batch_queue import BatchLimits, Group, Item, LengthQueue, Result, cut_call
from service.engine_thread import EngineThread, RunFn, run_each
from service.errors import DeadlineExceeded, InferenceFailed, NotReady, QueueFull
from service.metrics import Metrics
from service.padding import pad_ids
from service.run_costs import RunCosts, default_costs

log = logging.getLogger(__name__)

# A further batch of texts that have not yet waited max_wait joins an engine call only if about
# this many texts can form it: onnxruntime's cost per text is flat from about 4 texts per batch on
# (1.39× for a lone text, 1.09× for two; docs/PERFORMANCE.md), and a smaller group left queued gets
# company during the call. Texts that have waited max_wait already run now, in any batch: like the
# first batch's, their wait for company is over (and a text of a rare length is not passed over
# call after call: single texts at c=64, p99 69-77 → 48-60 ms in three alternating rounds).
FURTHER_BATCH_MIN_TEXTS = 4


def _stopped() -> NotReady:
    return NotReady("the server stopped before this text ran", "retry on another replica")


class Batcher:
    def __init__(
        self, run: RunFn, pad_id: int, limits: BatchLimits, metrics: Metrics, native: bool = True, costs: RunCosts | None = None
    ) -> None:
        self.run_fn, self.pad_id, self.limits, self.metrics, self.native = run, pad_id, limits, metrics, native
        # What a run costs by shape: measured during warm-up (app.py), a default until then.
        self.costs = costs or default_costs(limits.max_run_size or limits.max_batch_size, 128)
        self.queue = LengthQueue()
        self.wake = asyncio.Event()
        self.engine = EngineThread()  # one engine call at a time, off the event loop
        self.task: asyncio.Task[None] | None = None
        self.running: list[Item] = []  # the batch in the engine now
        self.closing = False
        self.last_batch_texts = 0
        self.last_call_alone = False  # it ran one request's texts and left the queue empty (see _loop)
        self.submits_since_call = 0
        self.texts_ok = metrics.texts.labels("ok")  # a labelled child, looked up once

    @property
    def cuts_calls(self) -> bool:
        """A call makes several onnxruntime runs (a CPU), cut by self.costs; else it is one run."""
        lim = self.limits
        return lim.max_run_size is not None and lim.max_run_size < lim.max_batch_size

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop(), name="batcher")

    def submit(self, ids: list[bytes], deadline: float) -> asyncio.Future[list[Result]]:
        """Queue a request's texts together (all or none); the future resolves with their
        results in order. Cancelling it drops the texts that have not run yet."""
        if self.closing:
            raise NotReady("the server is shutting down", "retry on another replica")
        if self.queue.pending + len(ids) > self.limits.max_queue:
            raise QueueFull(
                f"the queue is full ({self.queue.pending} of {self.limits.max_queue} texts waiting)",
                "retry after the Retry-After delay, send fewer texts, or add replicas",
                {"Retry-After": "1"},
            )
        group = Group(asyncio.get_running_loop().create_future(), len(ids))
        now = time.monotonic()
        self.queue.push([Item(x, deadline, group, i, now) for i, x in enumerate(ids)])
        self.submits_since_call += 1
        self.metrics.queue_depth.inc(len(ids))
        self.wake.set()
        return group.future

    def _full(self) -> bool:
        n = self.queue.pending
        return n >= self.limits.max_batch_size or n * self.queue.max_len >= self.limits.max_batch_tokens

    async def _loop(self) -> None:
        while True:
            oldest = self.queue.front()
            if oldest is None:
                if self.closing:
                    return
                self.wake.clear()
                await self.wake.wait()
                continue
            # Wait for company until the batch is full or the oldest text has waited enough, unless
            # the last batch was a lone text run into an empty queue, or the last call one request
            # that emptied it and one request came since: nobody else is sending, and waiting would
            # only add max_wait to each request of a lone client (32-text requests at c=1: +30%).
            lone = (self.last_batch_texts <= 1 and self.queue.pending == 1) or (self.last_call_alone and self.submits_since_call == 1)
            if not lone:
                await self._wait_for_company(oldest.enqueued + self.limits.max_wait_s)
            batches = self._next_batches()
            if batches:
                await self._run(batches)

    async def _wait_for_company(self, until: float) -> None:
        """Until the batch is full, the batcher closes, or time.monotonic() reaches `until`. A
        timer sets the wake event (asyncio.wait_for would wrap the wait in a task each time);
        a new one each round, as the loop's clock may fire it a little before `until`."""
        loop = asyncio.get_running_loop()
        while not self._full() and not self.closing:
            left = until - time.monotonic()
            if left <= 0:
                return
            timer = loop.call_later(left, self.wake.set)
            self.wake.clear()
            try:
                await self.wake.wait()
            finally:
                timer.cancel()

    def _drop_dead(self, it: Item, now: float) -> bool:
        """Take a text out whose caller went away or whose deadline passed; True if it was."""
        if it.deadline < now:
            self._expire(it)
        elif it.group.future.done():  # cancelled (the caller disconnected or gave up), or a sibling failed
            self.metrics.texts.labels("cancelled").inc()
        else:
            return False
        self.queue.drop(it)
        self.metrics.queue_depth.dec()
        return True

    def _next_batches(self) -> list[list[Item]]:
        """The next engine call's batches, taken off the queue: the oldest text's, then while the
        queue holds more, the next oldest's (if it has waited max_wait or can have
        FURTHER_BATCH_MIN_TEXTS texts), and so on, as long as the call stays within max_batch_size
        texts and max_batch_tokens padded tokens in all (a first text longer than the token budget
        still runs, alone); then cut into runs anew (cut_call). Dead texts met on the way are dropped."""
        now = time.monotonic()

        def alive(it: Item) -> bool:  # called for every text that joins a batch: the live case first
            return (it.deadline >= now and not it.group.future.done()) or not self._drop_dead(it, now)

        lim, texts, tokens = self.limits, 0, 0
        batches: list[list[Item]] = []
        while texts < lim.max_batch_size and self.queue.pending:
            size, budget = lim.max_batch_size - texts, lim.max_batch_tokens - tokens  # what the call has room for
            if batches:
                front = self.queue.front()
                while front is not None and not alive(front):  # the budget is for the next live text
                    front = self.queue.front()
                if front is None:  # only dead texts were left: forget them (and their lengths)
                    self.queue.clear()
                    break
                if tokens + front.n > lim.max_batch_tokens:
                    break
                if now - front.enqueued < lim.max_wait_s and self.queue.near(front.n, lim.split_cost_tokens) < FURTHER_BATCH_MIN_TEXTS:
                    break  # too few to run efficiently yet: they wait for company, up to max_wait
            if lim.max_run_size is not None:
                size = min(size, lim.max_run_size)  # one run; the call may make more
            batch = self.queue.next_batch(lim, alive, (size, budget))
            if not batch:
                break
            batches.append(batch)
            texts += len(batch)
            tokens += len(batch) * max(it.n for it in batch)
        if self.cuts_calls and texts > 1:
            batches = cut_call([it for batch in batches for it in batch], self.costs, lim.max_batch_tokens, self.native)
        self.metrics.queue_depth.dec(texts)
        self.last_batch_texts = texts
        self.last_call_alone = not self.queue.pending and len({id(it.group) for batch in batches for it in batch}) == 1
        self.submits_since_call = 0
        return batches

    def _expire(self, it: Item) -> None:
        self.metrics.texts.labels("deadline").inc()
        it.group.fail(
            DeadlineExceeded("the request's deadline passed while it was queued", "raise timeout_ms, send fewer texts, or add replicas")
        )

    async def _run(self, batches: list[list[Item]]) -> None:
        start = time.monotonic()
        runs = [run for run in (self._prepare(batch, start) for batch in batches) if run is not None]
        if not runs:
            return
        self.running = [it for batch, _ in runs for it in batch]
        try:
            outcomes = await self.engine.call(run_each, self.run_fn, [ids_mask for _, ids_mask in runs])
        except Exception as e:  # the hop itself failed: every batch of the call fails with it
            outcomes = [(e, 0.0)] * len(runs)
        finally:
            self.running = []
        for (batch, (ids, _)), (outputs, seconds) in zip(runs, outcomes, strict=True):
            self.metrics.inference.observe(seconds)
            self._split(batch, ids.shape, outputs)

    def _prepare(self, batch: list[Item], start: float) -> tuple[list[Item], tuple[np.ndarray, np.ndarray]] | None:
        """The batch's live texts and their padded input, or None if none is left."""
        # The wait for company or a slow engine call may have run past someone's deadline.
        live = []
        for it in batch:
            if it.group.future.done():
                continue
            if it.deadline < start:
                self._expire(it)
            else:
                live.append(it)
        if len(live) < len(batch):  # an expired text fails its whole request: drop its siblings too
            batch = [it for it in live if not it.group.future.done()]
        if not batch:
            return None
        seqs, tokens = [], 0
        for it in batch:
            seqs.append(it.ids)
            tokens += it.n
            group = it.group
            group.unstarted -= 1
            if not group.unstarted:  # the request's last text starts: it waited this long
                self.metrics.queue_wait.observe(start - it.enqueued)
        ids, mask = pad_ids(seqs, self.pad_id, self.native)  # (B, T) each
        B, T = ids.shape
        self.metrics.batch_texts.observe(B)
        self.metrics.batch_tokens.observe(B * T)
        self.metrics.batch_padding.observe(1.0 - tokens / (B * T))
        return batch, (ids, mask)

    def _split(self, batch: list[Item], shape: tuple[int, ...], outputs: tuple[np.ndarray, np.ndarray] | Exception) -> None:
        """Each text its row of the batch's outputs, or the batch's error to each of its requests."""
        B, T = shape
        if not isinstance(outputs, Exception) and (outputs[0].shape[0] != B or outputs[1].shape != (B, T)):
            outputs = InferenceFailed(
                f"the engine returned {outputs[0].shape[0]} rows / attention {outputs[1].shape} for a batch of {(B, T)}",
                "the artifact's outputs do not follow the contract; re-export it",
            )
        if isinstance(outputs, Exception):
            err = (
                outputs
                if isinstance(outputs, InferenceFailed)
                else InferenceFailed(f"inference failed: {outputs}", "retry; report it with the request_id if it persists")
            )
            log.error("batch of %d texts failed: %s", B, err.message)
            self.metrics.texts.labels("error").inc(B)
            for it in batch:
                it.group.fail(err)
            return
        probs, attn = outputs  # (B, C), (B, T)
        for r, it in enumerate(batch):
            group = it.group
            if not group.future.done():
                group.set(it.index, (probs[r], attn[r, : it.n]))
        self.texts_ok.inc(B)

    async def close(self, timeout: float) -> None:
        """Stop taking texts, finish every queued one, then stop the engine thread."""
        self.closing = True
        self.wake.set()
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), timeout)
            except TimeoutError:
                self.task.cancel()
                for it in self.running:
                    it.group.fail(_stopped())
                self.abort_queued()
        # A call stuck in onnxruntime must not hold up the exit: the thread is a daemon.
        await asyncio.to_thread(self.engine.close, 5.0)

    def abort_queued(self) -> None:
        """The drain timeout has passed: each request with texts still queued gets a 503 now,
        while the server can still answer it (uvicorn would cancel it, a 500, soon after)."""
        self.closing = True
        live = self.queue.live()
        if live:
            log.error("drain timeout: %d queued texts not run; their requests get 503", len(live))
        for it in live:
            it.group.fail(_stopped())
            self.queue.drop(it)
        self.metrics.queue_depth.dec(len(live))
        self.wake.set()
