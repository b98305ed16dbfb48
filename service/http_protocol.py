"""uvicorn's httptools protocol, with a response's writes sent together and disconnects reported.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, then the body separately: two sends per response, and on a busy server each
send wakes the client and hands the CPU around once more. Writes made during one event-loop
iteration are buffered here and go out in one send at the end of it (the head and the body of a
plain response are written in the same iteration). Measured in docs/PERFORMANCE.md.

Past uvicorn's write high-water mark the buffer is sent at once, so a large or streamed response
still meets the transport's flow control (uvicorn's `send` waits while the client is slow).

A client that closes its connection while its request runs: the protocol hears it at once
(`connection_lost`; uvicorn keeps reading while a request runs, except behind a pipelined request
or a body over its high-water mark, until reading resumes) and calls the callbacks the app put in
the request's `scope["extensions"][ON_DISCONNECT]` list. The app learns of a disconnect
without a watcher task per request (a task that awaits `receive()` cost ~250 µs of event-loop CPU
per request under load; measured in docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.conn_share import ConnectionShare

ON_DISCONNECT = "sentiment.on_disconnect"


class CoalescingTransport:
    """Forwards everything to the transport it wraps; `write`s are joined until the loop's
    next turn. `close` sends what is buffered first."""

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= HIGH_WATER_LIMIT:
            self.flush()  # now: the transport may pause the writer before the next send

    def flush(self) -> None:
        data, self._pending, self._pending_bytes = self._pending, [], 0
        if data and not self._transport.is_closing():
            self._transport.write(data[0] if len(data) == 1 else b"".join(data))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, is_closing, pause_reading, ...
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    # Counts this worker's connections and closes one now and then to even them out over the
    # workers (service/conn_share.py); None: neither.
    share: ConnectionShare | None = None

    @classmethod
    def with_share(cls, share: ConnectionShare) -> type[CoalescingHttpToolsProtocol]:
        """This protocol for a server whose connections `share` counts (uvicorn takes a class)."""
        return type(cls.__name__, (cls,), {"share": share})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        if self.share is not None:
            self.share.opened()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if self.share is not None and cycle is not None and cycle.keep_alive and self.share.should_close(self.loop.time()):
            cycle.keep_alive = False  # uvicorn answers with `connection: close` and closes after it

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A list of its own per request; middlewares that copy the scope still share it.
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope["extensions"] = {**scope.get("extensions", {}), ON_DISCONNECT: []}

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if self.share is not None:
            self.share.closed()
        if cycle is not None and cycle.disconnected:  # it went away before its response was complete
            scope: dict[str, Any] = cycle.scope  # type: ignore[assignment]
            for callback in scope.get("extensions", {}).get(ON_DISCONNECT, ()):
                callback()
