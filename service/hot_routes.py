"""The hot routes (POST /predict), called straight from the middleware stack.

Starlette would reach them through its exception middleware, FastAPI's exit-stack middleware, the
router's match and the route's request/response wrapper: about 1.6 µs of event-loop CPU per text
of a 32-text request when hot, twice that under load, where every layer runs with cold caches
(docs/PERFORMANCE.md, session 13). Here one dictionary lookup finds the endpoint, and the errors it
raises become responses through the same mapping the exception handlers use (service/errors.py);
anything else goes up to service/middleware.py, which logs it with the request id. Every other
request, and these paths with another method (405), takes the router as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import known_error_response

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Endpoint]) -> None:
        self.app, self.routes = app, routes  # (method, path) → endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.routes.get((scope.get("method", ""), scope["path"])) if scope["type"] == "http" else None
        if endpoint is None or scope.get("root_path"):  # under a root path, the router knows the way
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            known = known_error_response(request, exc)
            if known is None:
                raise
            response = known
        await response(scope, receive, send)
