"""A plain ASGI middleware (no BaseHTTPMiddleware: it costs a task per request) that gives every
request an id, echoes it as X-Request-ID, records request metrics and writes one access log line.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import unknown_error
from service.logs import request_id_var
from service.metrics import Metrics

log = logging.getLogger("service.access")
REQUEST_ID = b"x-request-id"


def route_label(path: str, known: frozenset[str]) -> str:
    """The metric label of a path: itself when it is one of ours, else 'other' (bounded labels)."""
    if path in known:
        return path
    if path.startswith("/v2/models/"):
        return "/v2/models/{model}" + ("/infer" if path.endswith("/infer") else "")
    return "other"


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics, known_routes: frozenset[str]) -> None:
        self.app, self.metrics, self.known = app, metrics, known_routes
        # Metric children by label values: `.labels()` costs a few µs a call; the set is bounded.
        self.children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = ""
        for k, v in scope["headers"]:
            if k == REQUEST_ID:
                rid = v.decode("latin-1")[:128]
                break
        rid = rid or os.urandom(8).hex()
        token = request_id_var.set(rid)
        status = [0]  # until the response starts

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID, rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Answered here, not by an exception handler: those run outside this middleware, where
            # the request id is gone from the log line, the body and the X-Request-ID header.
            answer = unknown_error(scope["path"], exc)  # logs it, with the request id
            if not status[0]:
                await answer(scope, receive, send_with_id)
            # else half an answer is out: nothing more to send; uvicorn closes the connection on an
            # unfinished response (re-raised, the error would be logged twice more, without its id)
        finally:
            took = time.perf_counter() - start
            key = (scope["path"], scope["method"], status[0] or 500)
            children = self.children.get(key)
            if children is None:
                route = route_label(scope["path"], self.known)
                children = self.metrics.requests.labels(route, key[1], str(key[2])), self.metrics.latency.labels(route)
                if len(self.children) < 1000:  # paths are the caller's: keep the cache bounded
                    self.children[key] = children
            children[0].inc()
            children[1].observe(took)
            if log.isEnabledFor(logging.INFO):
                extra: dict[str, Any] = {"method": key[1], "path": key[0], "status": key[2], "ms": round(took * 1000, 2)}
                log.info("request", extra=extra)
            request_id_var.reset(token)
