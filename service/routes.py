"""Thin HTTP routes: read, hand over to the predictor, write bytes."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, Response

from service.compression import encode, inflate
from service.errors import ClientClosed, InvalidInput, NotReady, PayloadTooLarge, Unauthorized
from service.http_protocol import ON_DISCONNECT
from service.schemas import RESPONSE_EXAMPLE, ErrorResponse, PredictRequest, PredictResponse

if TYPE_CHECKING:
    from service.app import State
    from service.batcher import Result
    from service.predictor import Job, Predictor


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def get_state(request: Request) -> State:
    return request.app.state.svc  # type: ignore[no-any-return]


StateDep = Annotated["State", Depends(get_state)]


def check_key(request: Request, state: State) -> None:
    key = state.settings.api_key
    if key is None:
        return
    auth = request.headers.get("authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), key.get_secret_value().encode()):
        raise Unauthorized("missing or wrong API key", "send the header `Authorization: Bearer <key>`", {"WWW-Authenticate": "Bearer"})


async def require_key(request: Request, state: StateDep) -> None:
    check_key(request, state)


public = APIRouter()
protected = APIRouter(dependencies=[Depends(require_key)])


STATIC = Path(__file__).parent / "static"


@public.get("/", include_in_schema=False)
async def explorer() -> FileResponse:
    """The attention explorer page (static files shipped in the package; no CDN, no build step)."""
    return FileResponse(STATIC / "index.html")


@public.get("/healthz", summary="Liveness: 200 while the process serves")
async def healthz(state: StateDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "ready": state.ready and not state.draining,
        "draining": state.draining,
        "model": {"name": state.meta.name, "version": state.meta.version} if state.meta else None,
        "providers": state.engine.providers if state.engine else [],
        "pid": os.getpid(),
    }


@public.get("/readyz", summary="Readiness: 200 once loaded and warmed up, 503 before and while draining")
async def readyz(state: StateDep) -> dict[str, Any]:
    if state.draining:
        raise NotReady("draining: the server is shutting down", "send traffic to another replica")
    if not state.ready:
        raise NotReady("loading and warming up the model", "retry shortly")
    # Whichever worker answers speaks for the whole server: ready only once every worker is,
    # since the kernel hands new connections to all of them.
    workers = state.settings.workers
    ready = state.metrics.ready_workers()
    if ready is not None and ready < workers:
        raise NotReady(f"{ready} of {workers} workers ready; the others are still warming up", "retry shortly")
    return {"status": "ready"}


@protected.get("/metrics", summary="Prometheus metrics of all worker processes")
async def metrics(state: StateDep) -> Response:
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes; the limit is {limit}", "send fewer or shorter texts per request")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body exceeds {limit} bytes", "send fewer or shorter texts per request")
            chunks.append(chunk)
    except ClientDisconnect:  # gone before the whole body arrived: nobody to answer, not our failure
        raise ClientClosed("the client closed the connection before sending the whole body") from None
    return inflate(b"".join(chunks), request.headers.get("content-encoding"), limit)


def answer(request: Request, state: State, payload: bytes, media_type: str, headers: dict[str, str] | None = None) -> Response:
    """The response, compressed when the settings allow it and the client asks for it."""
    headers = headers or {}
    if state.settings.compress_responses:
        payload = encode(payload, request.headers.get("accept-encoding"), headers)
    return Response(payload, media_type=media_type, headers=headers or None)


# Without our protocol's disconnect callbacks (another ASGI server), a task that waits for the
# disconnect message does it; it costs ~250 µs of event-loop CPU per request under load, so it
# starts only for requests still waiting after this long.
WATCH_AFTER_S = 0.05


def cancel_on_disconnect(request: Request, job: Job) -> Callable[[], None]:
    """Drop the job's queued texts if the client goes away before they run. Returns what to call
    once the answer is ready."""
    callbacks = request.scope.get("extensions", {}).get(ON_DISCONNECT)
    if callbacks is not None:  # service/http_protocol.py calls them when the connection is lost
        callbacks.append(job.cancel)
        return callbacks.clear
    task: asyncio.Task[None] | None = None

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        job.cancel()

    def start() -> None:
        nonlocal task
        task = asyncio.ensure_future(watch())

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start)

    def stop() -> None:
        timer.cancel()
        if task is not None:
            task.cancel()

    return stop


async def results_unless_gone(request: Request, predictor: Predictor, job: Job) -> list[Result]:
    """The job's results; its queued texts are dropped if the client disconnects meanwhile."""
    stop_watching = cancel_on_disconnect(request, job)
    try:
        return await predictor.results(job)
    finally:
        stop_watching()


PREDICT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": PredictRequest.model_json_schema(),
                "examples": {
                    "one": {"value": {"text": "A gorgeous, heartfelt film."}},
                    "several": {"value": {"texts": ["A gorgeous, heartfelt film.", "Dull and far too long."]}},
                },
            }
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorResponse, "description": d}
    for c, d in {
        401: "API key missing or wrong",
        413: "body too large",
        422: "invalid input",
        429: "queue full",
        503: "not ready or draining",
        504: "deadline passed",
    }.items()
}


# /predict is served by a plain Starlette route (registered in app.py), not a FastAPI one: FastAPI's
# per-request machinery (dependency solving, exit stacks, telemetry hooks) cost about 90 µs of CPU
# per request, a third of the app's own work on a single-text request (docs/PERFORMANCE.md).
# This documentation-only router gives the route its OpenAPI entry.
predict_docs = APIRouter()


@predict_docs.post(
    "/predict",
    summary="Sentiment of one or more texts, with per-token attention",
    openapi_extra=PREDICT_DOC,
    responses={
        200: {"model": PredictResponse, "content": {"application/json": {"example": RESPONSE_EXAMPLE}}},
        **ERRORS,
    },
)
async def predict_documented() -> None:  # pragma: no cover - documentation only, never routed
    raise NotImplementedError


async def predict(request: Request) -> Response:
    state: State = request.app.state.svc
    check_key(request, state)
    # validate → tokenize → enqueue (submit) → batch → run → split (batcher) → respond
    body = await read_body(request, state.settings.max_body_bytes)
    # While draining, requests are still served: a load balancer may send some until it has
    # seen /readyz fail. Only a closed batcher (after the listener closed) refuses them.
    if state.predictor is None:
        raise NotReady("the model is not loaded yet", "retry shortly")
    try:
        req = PredictRequest.model_validate_json(body)
    except ValidationError:
        if not body.strip():
            raise InvalidInput("the body is empty", 'send JSON like {"text": "..."}') from None
        raise
    predictor = state.predictor
    job = predictor.submit(req.items(), req.attention, req.timeout_ms)
    results = await results_unless_gone(request, predictor, job)
    return answer(request, state, predictor.respond(job, results), "application/json")
