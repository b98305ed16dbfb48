"""How /predict learns that its client went away: from our protocol's callbacks (the real server,
tests/service/test_server_behaviour.py) or, under another ASGI server, from a watcher task."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from service.http_protocol import ON_DISCONNECT
from service.predictor import Job
from service.routes import WATCH_AFTER_S, cancel_on_disconnect


def _job() -> Job:
    return Job([], asyncio.get_running_loop().create_future(), True, 0.0)


def test_cancel_on_disconnect_registers_with_the_protocol_when_it_offers_callbacks() -> None:
    async def go() -> None:
        callbacks: list[Any] = []
        request = Request({"type": "http", "headers": [], "extensions": {ON_DISCONNECT: callbacks}})
        job = _job()
        stop = cancel_on_disconnect(request, job)
        assert callbacks == [job.cancel]
        for callback in callbacks:  # what the protocol does when the connection is lost
            callback()
        assert job.future.cancelled()
        stop()
        assert callbacks == []  # answered: a later disconnect has nothing to cancel

    asyncio.run(go())


def test_cancel_on_disconnect_under_another_server_watches_for_the_disconnect_message() -> None:
    async def go() -> None:
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        job = _job()
        stop = cancel_on_disconnect(Request({"type": "http", "headers": []}, receive), job)
        gone.set()
        await asyncio.sleep(WATCH_AFTER_S + 0.05)  # the watch starts after WATCH_AFTER_S
        assert job.future.cancelled()
        stop()

        kept = _job()  # answered before the watch started: nothing is cancelled
        cancel_on_disconnect(Request({"type": "http", "headers": []}, receive), kept)()
        await asyncio.sleep(WATCH_AFTER_S + 0.05)
        assert not kept.future.cancelled()

    asyncio.run(go())
