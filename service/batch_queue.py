"""The batcher's queue: texts in arrival order and by length, and the rule that forms a batch.

A batch always holds the oldest live text (so waiting is first come, first served and nobody
waits behind more than the queue ahead of them), joined by the queued texts closest to it in
length. Keeping one FIFO lane per length makes finding them cost about the batch's size, however
long the queue: the closest lengths are the lanes next to the oldest text's own.

Items leave lazily: one taken into a batch (or dropped) through its length lane stays in the
arrival-order deque, marked, until it reaches the front, which is cheaper than removing it.

Each item belongs to its request's Group, which resolves the request's one future.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.run_costs import RunCosts, cut_runs

Alive = Callable[["Item"], bool]  # False if the item must be dropped (its caller is gone); drops it
Result = tuple[np.ndarray, np.ndarray]  # a text's probabilities (C,) and attention (L,)


class Group:
    """One request's texts: resolves with all their results, in order, or with the first error
    (one future per request, not per text: a 32-text request costs one wake-up, not 32)."""

    __slots__ = ("future", "left", "results", "unstarted")

    def __init__(self, future: asyncio.Future[list[Result]], n: int) -> None:
        self.future, self.left, self.unstarted = future, n, n
        self.results: list[Result | None] = [None] * n

    def set(self, index: int, result: Result) -> None:
        self.results[index] = result
        self.left -= 1
        if not self.left and not self.future.done():
            self.future.set_result(self.results)  # type: ignore[arg-type]  # no None left

    def fail(self, err: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(err)


@dataclass(eq=False, slots=True)
class Item:
    ids: bytes  # (L,) int64, native byte order
    deadline: float  # time.monotonic() by which it must have run
    group: Group
    index: int  # position in its request
    enqueued: float = field(default_factory=time.monotonic)
    taken: bool = False  # in a batch already, or dropped
    n: int = 0  # len(ids)

    def __post_init__(self) -> None:
        self.n = len(self.ids) // 8


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 64  # texts per engine call
    max_batch_tokens: int = 4096
    max_wait_s: float = 0.002
    max_queue: int = 2048
    split_cost_tokens: int = 4
    max_run_size: int | None = None  # texts per onnxruntime run (None: as many as the call allows)


def _front(lane: deque[Item], alive: Alive) -> Item | None:
    while lane and (lane[0].taken or not alive(lane[0])):
        lane.popleft()
    return lane[0] if lane else None


def pick_batch(
    anchor: Item, lanes: dict[int, deque[Item]], limits: BatchLimits, alive: Alive = lambda it: True, space: tuple[int, int] | None = None
) -> list[Item]:
    """The anchor (the oldest text, already out of its lane) and the queued texts closest to it
    in length (older first among equally close), with count ≤ max_batch_size and longest × count
    ≤ max_batch_tokens (a single text longer than the token budget still runs, alone). Texts
    joining are taken off their lanes.

    A text joins only if it adds at most `split_cost_tokens` of padding (its own, if shorter than
    the batch's longest; the others', if longer): onnxruntime's cost is proportional to the
    padded tokens from about 4 texts per batch on, so padding is waste, while one more batch
    costs the event loop a little (see docs/PERFORMANCE.md). So only lengths within
    `split_cost_tokens` of the anchor can join.
    """
    batch, longest, cost = [anchor], anchor.n, limits.split_cost_tokens
    size, budget = space or (limits.max_batch_size, limits.max_batch_tokens)
    # The anchor's own length first: no padding, so only the two limits stop them. This loop
    # runs once per text served: kept free of per-text allocations.
    lane = lanes.get(longest)
    room = min(size, budget // longest) - 1
    while lane and room > 0:
        it = lane.popleft()
        if not it.taken and alive(it):
            batch.append(it)
            room -= 1
    for d in range(1, cost + 1):
        open_lanes = [lane for lane in (lanes.get(anchor.n - d), lanes.get(anchor.n + d)) if lane]
        while open_lanes and len(batch) < size:
            best: Item | None = None
            best_lane = open_lanes[0]
            for lane in open_lanes:  # at most two: the older front joins first
                front = _front(lane, alive)
                if front is not None and (best is None or front.enqueued < best.enqueued):
                    best, best_lane = front, lane
            if best is None:
                break
            top = longest if longest > best.n else best.n
            added = (top - longest) * len(batch) + (top - best.n)  # padded tokens this text adds
            if added <= cost and top * (len(batch) + 1) <= budget:
                best_lane.popleft()
                batch.append(best)
                longest = top
            else:  # the rest of this lane has the same length: it would not fit either
                open_lanes = [lane for lane in open_lanes if lane is not best_lane and lane]
    return batch


def cut_call(items: list[Item], costs: RunCosts, max_tokens: int, native: bool = True) -> list[list[Item]]:
    """An engine call's texts, sorted by length, in the onnxruntime runs of least cost by `costs`
    (service/run_costs.py); each run within max_tokens padded tokens unless it is one text."""
    items.sort(key=_length)
    starts = cut_runs([it.n for it in items], costs, max_tokens, native)
    return [items[a:b] for a, b in zip(starts, [*starts[1:], len(items)], strict=True)]


def _length(it: Item) -> int:
    return it.n


class LengthQueue:
    def __init__(self) -> None:
        self.fifo: deque[Item] = deque()  # arrival order
        self.lanes: dict[int, deque[Item]] = {}  # length → arrival order
        self.pending = 0  # items neither taken nor dropped
        self.max_len = 0  # longest item queued since the queue was last empty (an upper bound)

    def push(self, items: list[Item]) -> None:
        for it in items:
            self.fifo.append(it)
            lane = self.lanes.get(it.n)
            if lane is None:
                lane = self.lanes[it.n] = deque()
            lane.append(it)
            self.max_len = max(self.max_len, it.n)
        self.pending += len(items)

    def front(self) -> Item | None:
        """The oldest item not yet taken or dropped."""
        while self.fifo and self.fifo[0].taken:
            self.fifo.popleft()
        return self.fifo[0] if self.fifo else None

    def near(self, n: int, spread: int) -> int:
        """About how many queued texts are within `spread` tokens of length n (an upper bound:
        dropped texts stay in their lanes until they reach the front)."""
        if 2 * spread + 1 > len(self.lanes):
            return sum(len(lane) for k, lane in self.lanes.items() if abs(k - n) <= spread)
        return sum(len(self.lanes.get(k, ())) for k in range(n - spread, n + spread + 1))

    def drop(self, it: Item) -> None:
        it.taken = True
        self.pending -= 1

    def next_batch(self, limits: BatchLimits, alive: Alive, space: tuple[int, int] | None = None) -> list[Item]:
        """Take the next batch; `alive` drops the dead items met on the way. `space`: the texts and
        padded tokens it may hold, if fewer than the limits'."""
        anchor = self.front()
        while anchor is not None and not alive(anchor):
            anchor = self.front()
        if anchor is None:  # only dead items were left
            self.clear()
            return []
        lane = self.lanes[anchor.n]
        while lane[0] is not anchor:  # all older ones of its length are gone already
            lane.popleft()
        lane.popleft()
        batch = pick_batch(anchor, self.lanes, limits, alive, space)
        for it in batch:
            it.taken = True
        self.pending -= len(batch)
        for n in {it.n for it in batch}:
            if not self.lanes[n]:
                del self.lanes[n]
        if not self.pending:
            self.clear()
        return batch

    def clear(self) -> None:
        self.fifo.clear()
        self.lanes.clear()
        self.max_len = 0

    def live(self) -> list[Item]:
        return [it for it in self.fifo if not it.taken]
