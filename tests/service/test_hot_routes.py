"""HotRoutes inside RequestContext, around a real FastAPI app with the service's error handlers:
the hot path answers exactly as the router would, errors included."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from service import errors
from service.hot_routes import HotRoutes
from service.metrics import Metrics
from service.middleware import RequestContext


class Body(BaseModel):
    text: str


async def hot(request: Request) -> Response:
    body = Body.model_validate_json(await request.body())
    if body.text == "full":
        raise errors.QueueFull("the queue is full", "retry later", {"Retry-After": "1"})
    if body.text == "boom":
        raise RuntimeError("the secret detail")
    return Response(b'{"hot": "' + body.text.encode() + b'"}', media_type="application/json")


def _client(root_path: str = "") -> TestClient:
    app = FastAPI()
    errors.install(app)

    @app.get("/hot")
    async def hot_get() -> dict[str, str]:  # the router's own route for another method
        return {"via": "router"}

    app.add_middleware(HotRoutes, routes={("POST", "/hot"): hot})
    app.add_middleware(RequestContext, metrics=Metrics(), known_routes=frozenset({"/hot"}))
    return TestClient(app, raise_server_exceptions=False, root_path=root_path)


def test_hot_routes_answer_a_route_the_router_does_not_have() -> None:
    # The router has no POST /hot: a 200 can only come from HotRoutes.
    with _client() as c:
        r = c.post("/hot", json={"text": "hi"}, headers={"X-Request-ID": "r1"})
    assert r.status_code == 200 and r.json() == {"hot": "hi"}
    assert r.headers["x-request-id"] == "r1"  # RequestContext still wraps it


def test_hot_routes_pass_other_methods_to_the_router() -> None:
    with _client() as c:
        assert c.get("/hot").json() == {"via": "router"}
        r = c.put("/hot", json={"text": "hi"})
    assert r.status_code == 405 and r.json()["error"]["code"] == "http_error"


def test_hot_routes_map_service_errors_like_the_handlers() -> None:
    with _client() as c:
        r = c.post("/hot", json={"text": "full"}, headers={"X-Request-ID": "r2"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.json() == {"error": {"code": "overloaded", "message": "the queue is full", "fix": "retry later", "request_id": "r2"}}


def test_hot_routes_map_validation_errors_to_422() -> None:
    with _client() as c:
        r = c.post("/hot", json={"txt": "typo"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input" and err["message"].startswith("text: Field required")


def test_hot_routes_leave_unknown_errors_to_the_request_context() -> None:
    with _client() as c:
        r = c.post("/hot", json={"text": "boom"}, headers={"X-Request-ID": "r3"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "r3"
    assert r.json()["error"]["code"] == "internal_error" and "secret" not in r.text


def test_hot_routes_under_a_root_path_leave_the_way_to_the_router() -> None:
    # Under a root path the router strips it before matching; HotRoutes does not guess.
    with _client("/api") as c:
        r = c.post("/hot", json={"text": "hi"})
    assert r.status_code == 405  # the router's GET /hot, not HotRoutes' POST
