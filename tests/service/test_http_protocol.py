"""The transport wrapper that sends a response's head and body together (the real server uses it in
every API test; here, what it sends and when, against a transport that records its calls)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT

from service.http_protocol import CoalescingTransport


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else None


def test_coalescing_transport_sends_one_iterations_writes_at_once() -> None:
    async def go() -> list[tuple[str, Any]]:
        rec = Recorder()
        t = CoalescingTransport(rec, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        t.write(b"{}")
        assert rec.calls == []  # nothing sent yet: the loop's turn has not ended
        await asyncio.sleep(0)
        t.write(b"next")
        await asyncio.sleep(0)
        return rec.calls

    assert asyncio.run(go()) == [("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"), ("write", b"next")]


def test_coalescing_transport_close_sends_what_is_buffered_first() -> None:
    async def go() -> list[tuple[str, Any]]:
        rec = Recorder()
        t = CoalescingTransport(rec, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"bye")
        t.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left, and the transport closed
        t.write(b"late")
        await asyncio.sleep(0)
        return rec.calls

    assert asyncio.run(go()) == [("write", b"bye"), ("close", None)]


def test_coalescing_transport_forwards_everything_else() -> None:
    loop = asyncio.new_event_loop()
    try:
        t = CoalescingTransport(Recorder(), loop)  # type: ignore[arg-type]
        assert t.get_extra_info("sockname") == ("127.0.0.1", 8000)
        assert not t.is_closing()
    finally:
        loop.close()


def test_coalescing_transport_sends_at_once_past_the_high_water_mark() -> None:
    # So that a large or streamed response meets the transport's flow control before the next send.
    async def go() -> list[tuple[str, Any]]:
        rec = Recorder()
        t = CoalescingTransport(rec, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"head")
        t.write(b"x" * HIGH_WATER_LIMIT)
        sent = list(rec.calls)
        await asyncio.sleep(0)
        assert rec.calls == sent  # nothing was left for the end of the turn
        return sent

    assert asyncio.run(go()) == [("write", b"head" + b"x" * HIGH_WATER_LIMIT)]
