from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.engine_thread import EngineThread


def test_engine_thread_runs_calls_off_the_loop_one_at_a_time() -> None:
    running, overlap = [0], [False]

    def work(i: int) -> tuple[int, str]:
        running[0] += 1
        overlap[0] |= running[0] > 1
        time.sleep(0.01)
        running[0] -= 1
        return i * i, threading.current_thread().name

    async def go() -> list[tuple[int, str]]:
        t = EngineThread()
        try:
            return list(await asyncio.gather(*(t.call(work, i) for i in range(5))))
        finally:
            t.close()

    for i, (sq, name) in enumerate(asyncio.run(go())):
        assert sq == i * i and name == "engine" != threading.current_thread().name
    assert not overlap[0]


def test_engine_thread_error_reaches_the_caller_and_the_thread_keeps_serving() -> None:
    def boom() -> None:
        raise ValueError("bad shape")

    async def go() -> int:
        t = EngineThread()
        try:
            with pytest.raises(ValueError, match="bad shape"):
                await t.call(boom)
            return await t.call(lambda: 7)
        finally:
            t.close()

    assert asyncio.run(go()) == 7


def test_engine_thread_cancelled_caller_does_not_break_the_next_call() -> None:
    async def go() -> int:
        t = EngineThread()
        try:
            slow = asyncio.ensure_future(t.call(time.sleep, 0.05))
            await asyncio.sleep(0.01)
            slow.cancel()
            return await t.call(lambda: 3)
        finally:
            t.close()

    assert asyncio.run(go()) == 3
