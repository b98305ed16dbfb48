"""One thread that runs engine calls, one at a time, for an event loop that awaits them.

Lighter than `loop.run_in_executor` on a ThreadPoolExecutor: a call is one SimpleQueue put and one
`call_soon_threadsafe` back, ~26 µs of CPU a round trip on one core instead of ~50 µs (measured in
docs/PERFORMANCE.md), paid once per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
RunFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Outcome = tuple[tuple[np.ndarray, np.ndarray] | Exception, float]  # a run's outputs or error, and its seconds
Call = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any], asyncio.AbstractEventLoop]


def _settle(fut: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if fut.done():  # cancelled while the call ran
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)


def run_each(run: RunFn, inputs: list[tuple[np.ndarray, np.ndarray]]) -> list[Outcome]:
    """In the engine thread: a call's runs one after the other, each with its own outcome (a
    failed run fails only its own texts) and duration."""
    out: list[Outcome] = []
    for ids, mask in inputs:
        t = time.perf_counter()
        try:
            out.append((run(ids, mask), time.perf_counter() - t))
        except Exception as e:  # reported per run by the event loop
            out.append((e, time.perf_counter() - t))
    return out


class EngineThread:
    def __init__(self, name: str = "engine") -> None:
        self.calls: SimpleQueue[Call | None] = SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (call := self.calls.get()) is not None:
            fn, args, fut, loop = call
            value: Any = None
            error: BaseException | None = None
            try:
                value = fn(*args)
            except BaseException as e:  # handed to the awaiting coroutine, which decides
                error = e
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
                loop.call_soon_threadsafe(_settle, fut, value, error)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self.calls.put((fn, args, fut, loop))
        return await fut

    def close(self, timeout: float | None = None) -> None:
        """Finish the call in progress (waiting at most `timeout` s), then stop the thread."""
        self.calls.put(None)
        self.thread.join(timeout)
