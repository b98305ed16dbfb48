"""How /predict learns that its client went away: from our protocol's callbacks (the real server,
tests/service/test_server_behaviour.py) or, under another ASGI server, from a watcher task; and
how /readyz speaks for several workers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from service.app import State
from service.errors import NotReady
from service.http_protocol import ON_DISCONNECT
from service.metrics import Metrics
from service.predictor import Job
from service.routes import WATCH_AFTER_S, cancel_on_disconnect, readyz
from service.settings import Settings
from tests.service.test_metrics import _worker


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


def test_readyz_with_several_workers_waits_for_every_one(tmp_path: Path) -> None:
    # Whichever worker answers speaks for the server: ready only once all are. Two stand-in
    # workers write their readiness to the shared metrics files, as real ones do.
    state = State(settings=Settings(workers=2), metrics=Metrics(str(tmp_path)))
    state.ready = True  # the worker answering has warmed up
    procs = [_worker(tmp_path, 1), _worker(tmp_path, 0)]  # one ready, one still warming up
    try:
        with pytest.raises(NotReady, match="1 of 2 workers ready") as err:
            asyncio.run(readyz(state))
        assert err.value.headers["Retry-After"] == "1"
        procs.append(_worker(tmp_path, 1))  # the other has warmed up (its replacement, here)
        procs[1].kill()
        procs[1].wait()
        state.metrics.mark_process_dead(procs[1].pid)
        assert asyncio.run(readyz(state)) == {"status": "ready"}
        state.start_draining()
        with pytest.raises(NotReady, match="draining"):
            asyncio.run(readyz(state))
    finally:
        for p in procs:
            p.kill()
            p.wait()
