"""Keep-alive connections dealt evenly over the worker processes.

Each worker listens on its own SO_REUSEPORT socket, and the kernel deals each new connection to
one of them by a hash of its addresses: fair on average, but a few long-lived keep-alive
connections land unevenly (64 connections over 2 workers came out 32/32, 27/37 and 31/33 in one
session). The worker holding more then queues more texts per engine call while the other idles in
between, and the slowest requests wait on the busier worker: that set p99 at c=64
(docs/PERFORMANCE.md, session 8).

So every worker publishes its count of open connections in one shared array (one slot each; a
worker writes only its own slot, from the moment it listens, and the launcher marks the slot of a
worker that has not started or has exited dead: a heuristic needs no lock). A worker holding more
than its fair share (the total divided by the workers, rounded up) answers one request with
`Connection: close`, at most once per `cooldown_s`; the client reconnects and the kernel deals the
new connection again. The cooldown keeps the workers from closing many connections at once and
swinging the imbalance the other way before the clients have reconnected. When a worker exits,
the launcher marks its slot dead: the survivors share the connections among themselves (a killed
worker's last count would otherwise stay in the array, and a survivor would keep closing
connections to make room for it).
"""

from __future__ import annotations

from collections.abc import MutableSequence
from typing import Protocol

DEAD = -1  # the slot of a worker not listening (yet, or any more): it takes no share


def mark_dead(counts: MutableSequence[int], index: int) -> None:
    """For the launcher, when worker `index` has exited: the others stop making room for it."""
    counts[index] = DEAD


class _Gauge(Protocol):
    def inc(self, amount: float = 1) -> None: ...
    def dec(self, amount: float = 1) -> None: ...


class _Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class ConnectionShare:
    __slots__ = ("_closes", "_cooldown_s", "_counts", "_gauge", "_index", "_last_close", "_live", "_mine", "_rebalance")

    def __init__(
        self,
        counts: MutableSequence[int],
        index: int,
        *,
        rebalance: bool = True,
        cooldown_s: float = 0.05,
        gauge: _Gauge | None = None,
        closes: _Counter | None = None,
    ) -> None:
        self._counts, self._index = counts, index
        self._mine = 0  # this worker's open connections; published in its slot once it listens
        self._live = False
        self._rebalance = rebalance and len(counts) > 1
        self._cooldown_s = cooldown_s
        self._last_close = float("-inf")
        self._gauge, self._closes = gauge, closes

    def live(self) -> None:
        """The worker listens: from now on the others count it (until then its slot stays dead, so
        they do not close connections to make room for a worker still loading its model)."""
        self._live = True
        self._counts[self._index] = self._mine

    def opened(self) -> None:
        self._mine += 1
        if self._live:
            self._counts[self._index] = self._mine
        if self._gauge is not None:
            self._gauge.inc()

    def closed(self) -> None:
        self._mine -= 1
        if self._live:
            self._counts[self._index] = self._mine
        if self._gauge is not None:
            self._gauge.dec()

    def should_close(self, now: float) -> bool:
        """Whether the response to the request now starting should close its connection (`now`:
        a monotonic clock in seconds). True at most once per cooldown, and only while this
        worker holds more than its fair share."""
        if not self._rebalance or not self._live or now - self._last_close < self._cooldown_s:
            return False
        counts = self._counts
        mine = counts[self._index]
        live = [n for n in counts if n != DEAD]
        fair = -(-sum(live) // len(live))  # ceil: with 65 connections on 2 workers, 33 is fair
        if mine <= fair:
            return False
        self._last_close = now
        if self._closes is not None:
            self._closes.inc()
        return True
