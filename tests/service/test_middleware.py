"""RequestContext around a real FastAPI app with the service's error handlers: an error nobody
expected is answered and logged with the request's id."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.responses import StreamingResponse

from service import errors
from service.logs import JsonFormatter
from service.metrics import Metrics
from service.middleware import RequestContext, route_label


class Lines(logging.Handler):
    """Log lines as the service writes them, formatted where they are emitted (the request id is
    read from the context of the request being served)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    h, logger = Lines(), logging.getLogger("service.errors")
    logger.addHandler(h)
    yield h
    logger.removeHandler(h)


def _client() -> TestClient:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("the secret detail")

    @app.get("/v2/boom")
    async def v2_boom() -> None:
        raise RuntimeError("the secret detail")

    app.add_middleware(RequestContext, metrics=Metrics(), known_routes=frozenset({"/boom", "/v2/boom"}))
    return TestClient(app, raise_server_exceptions=False)


def test_unknown_error_answers_500_with_the_request_id(lines: Lines) -> None:
    with _client() as c:
        r = c.get("/boom", headers={"X-Request-ID": "abc123"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "abc123"
    err = r.json()["error"]
    assert err["code"] == "internal_error" and err["request_id"] == "abc123"
    assert "secret" not in r.text  # the details stay in the log
    (line,) = [x for x in lines.lines if x["msg"] == "unhandled error"]
    assert line["request_id"] == "abc123" and "the secret detail" in str(line["exc"])


def test_unknown_error_on_v2_route_answers_in_the_protocol_shape(lines: Lines) -> None:
    with _client() as c:
        r = c.get("/v2/boom", headers={"X-Request-ID": "v2-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "v2-1"
    assert r.json() == {"error": "internal server error. retry; if it persists, report the request_id"}
    assert [x["request_id"] for x in lines.lines if x["msg"] == "unhandled error"] == ["v2-1"]


def test_route_label_keeps_metric_labels_bounded() -> None:
    known = frozenset({"/predict", "/healthz"})
    assert route_label("/predict", known) == "/predict"
    assert route_label("/v2/models/any-name/infer", known) == "/v2/models/{model}/infer"
    assert route_label("/v2/models/any-name", known) == "/v2/models/{model}"
    assert {route_label(f"/scan/{i}", known) for i in range(100)} == {"other"}  # a path scanner: one label


def test_requests_to_unknown_paths_count_under_other() -> None:
    metrics = Metrics()
    app = FastAPI()
    errors.install(app)
    app.add_middleware(RequestContext, metrics=metrics, known_routes=frozenset({"/boom"}))
    with TestClient(app) as c:
        for i in range(5):
            assert c.get(f"/wp-admin/{i}.php").status_code == 404
    text = metrics.render().decode()
    assert 'sentiment_requests_total{method="GET",route="other",status="404"} 5.0' in text
    assert "wp-admin" not in text


def test_error_after_the_answer_started_is_logged_once_with_the_request_id(lines: Lines) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/half")
    async def half() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"[1,"
            raise RuntimeError("the secret detail")

        return StreamingResponse(body())

    app.add_middleware(RequestContext, metrics=Metrics(), known_routes=frozenset({"/half"}))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/half", headers={"X-Request-ID": "half-1"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "half-1"  # what had gone out
    # Logged here, with its id; not again by the handler outside (without it) or the server.
    assert [x.get("request_id") for x in lines.lines if x["msg"] == "unhandled error"] == ["half-1"]
