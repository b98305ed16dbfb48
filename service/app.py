"""`create_app(settings)`: wires settings → engine → batcher → predictor → routes.

The lifespan loads the model, warms it up and only then reports ready; on shutdown it drains.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from service import errors, routes, v2_routes
from service.batcher import Batcher, BatchLimits
from service.engine import Engine, EngineConfig
from service.hot_routes import HotRoutes
from service.metrics import Metrics
from service.middleware import RequestContext
from service.model_files import Metadata
from service.predictor import Predictor, RequestLimits
from service.run_costs import RunCosts, default_costs
from service.run_costs import measure as measure_costs
from service.settings import Settings
from service.text_tokenizer import TextTokenizer

log = logging.getLogger(__name__)


@dataclass
class State:
    """What health and readiness report; `draining` is set by the server on SIGTERM."""

    settings: Settings
    metrics: Metrics
    meta: Metadata | None = None
    engine: Engine | None = None
    predictor: Predictor | None = None
    ready: bool = False
    draining: bool = False
    warmup_seconds: float = 0.0
    stop_warmup: threading.Event = field(default_factory=threading.Event)  # set on shutdown
    # Called when the worker cannot serve after all (its warm-up failed): the server stops and
    # exits with uvicorn's start-up failure code, as if loading had failed.
    on_fatal: Callable[[], None] | None = None

    def start_draining(self) -> None:
        self.draining = True
        self.metrics.ready.set(0)

    def answer_queued_after(self, timeout: float) -> None:
        """The listener has closed: texts still queued `timeout` seconds from now are not run; their
        requests get a 503 (retry on another replica), while the server can still answer them."""
        if self.predictor is not None:
            asyncio.get_running_loop().call_later(timeout, self.predictor.batcher.abort_queued)


# Texts per onnxruntime run on a CPU when max_run_size is 0: where onnxruntime's cost per text on
# our LSTM is lowest (11-16 texts; runs of 64 served 21% fewer texts/s: docs/PERFORMANCE.md, session 11).
CPU_RUN_SIZE = 16


def run_size(s: Settings, device: str) -> int:
    """Texts per onnxruntime run: the setting, else 16 on a CPU and one run per call on a GPU."""
    return min(s.max_run_size or (CPU_RUN_SIZE if device == "cpu" else s.max_batch_size), s.max_batch_size)


def build_predictor(s: Settings, state: State) -> Predictor:
    """Load metadata, tokenizer and session; fails fast on a bad artifact or missing provider."""
    meta = Metadata.load(s.artifact)
    engine = Engine(
        s.artifact / "model.onnx",
        EngineConfig(s.device, s.threads_per_worker(), s.inter_op_threads, s.graph_optimization, s.cuda_tf32),
    )
    run = run_size(s, engine.device)
    limits = BatchLimits(s.max_batch_size, s.max_batch_tokens, s.max_wait_ms / 1000.0, s.max_queue, s.split_cost_tokens, run)
    batcher = Batcher(engine.run, meta.pad_id, limits, state.metrics, s.native, default_costs(run, meta.max_length))
    req = RequestLimits(s.max_texts_per_request, s.max_text_chars, s.request_timeout_ms, s.max_request_timeout_ms)
    state.meta, state.engine = meta, engine
    return Predictor(meta, TextTokenizer(s.artifact, meta.max_length, s.fast_tokenizer, s.native), batcher, req)


def warm_up(s: Settings, state: State) -> RunCosts | None:
    """Shapes that real traffic forms, from one short text to a full batch of long ones; then, where
    a call makes several runs (a CPU), what a run costs by size, for the batcher to cut calls by."""
    assert state.engine is not None and state.meta is not None and state.predictor is not None
    run = run_size(s, state.engine.device)  # the largest batch onnxruntime is given
    sizes = sorted({1, min(8, run), run})
    lengths = sorted({8, 32, state.meta.max_length})
    state.warmup_seconds = state.engine.warmup(sizes, lengths, state.meta.pad_id, s.warmup_runs, state.stop_warmup)
    if not state.predictor.batcher.cuts_calls or state.stop_warmup.is_set():
        return None
    return measure_costs(state.engine.run, state.meta.pad_id, run, state.meta.max_length)


def create_app(settings: Settings, metrics_dir: str | None = None) -> FastAPI:
    state = State(settings=settings, metrics=Metrics(metrics_dir))

    async def become_ready() -> None:
        # Warm-up runs in a thread after start-up: /healthz answers and /readyz says 503 meanwhile.
        costs = await asyncio.to_thread(warm_up, settings, state) if settings.warmup_runs else None
        assert state.meta is not None and state.engine is not None and state.predictor is not None
        if costs is not None:
            state.predictor.batcher.costs = costs
        state.metrics.info.labels(state.meta.name, state.meta.version, state.engine.providers[0]).set(1)
        # Everything allocated so far lives as long as the process: keep it out of the cyclic
        # garbage collector's scans, which otherwise show up as tail latency under load.
        gc.collect()
        gc.freeze()
        # A 32-text answer is ~1,000 short-lived dicts and lists: at the default threshold (700
        # net new objects) the young generation was scanned more than once a request, 2% of all
        # CPU under load (measured with gc.callbacks: 210 ms per worker in 10 s of 32-text load;
        # 3 ms at 20,000). Nearly all of it dies by reference counting anyway.
        gc.set_threshold(20_000, 10, 10)
        state.metrics.ready.set(1)
        state.ready = True
        extra: dict[str, object] = {"model": state.meta.name, "version": state.meta.version, "providers": state.engine.providers}
        if costs is not None:  # what the batcher cuts calls by: µs per run, and per text per padded token by run size
            extra["run_cost_us"] = costs.summary()
        log.info("ready", extra={**extra, "warmup_s": round(state.warmup_seconds, 3)})

    async def warm_up_or_stop() -> None:
        try:
            await become_ready()
        except Exception:
            # Not ready, and never will be: a worker that stayed up would answer /readyz 503
            # forever while nothing restarts it (its liveness is fine).
            if state.draining:  # stopping anyway: a normal stop, not a failed start
                log.exception("warm-up failed while stopping")
                return
            log.exception("warm-up failed: this worker cannot serve the model; stopping")
            if state.on_fatal is not None:
                state.on_fatal()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading is quick and must fail start-up when it fails (bad artifact, no CUDA when asked).
        predictor = await asyncio.to_thread(build_predictor, settings, state)
        predictor.batcher.start()
        state.predictor = predictor
        warming = asyncio.create_task(warm_up_or_stop(), name="warm-up")
        try:
            yield
        finally:
            # Cancelling the task does not stop its thread, which the interpreter waits for at exit.
            state.stop_warmup.set()
            warming.cancel()
            state.ready = False
            state.metrics.ready.set(0)
            await predictor.batcher.close(settings.drain_timeout_s)
            state.metrics.mark_process_dead(os.getpid())
            log.info("stopped")

    app = FastAPI(
        title="Sentiment inference service",
        summary="Sentiment classifier served from ONNX, with per-token attention mapped to character offsets.",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=routes.JSONBytes,
        # Metrics are Prometheus (/metrics). FastAPI's own OpenTelemetry hooks would look for a
        # configured provider on every request (~6 µs of CPU each) to find none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.svc = state
    errors.install(app)
    # Routes are tried in order (FastAPI's walk through each included router costs tens of µs a
    # request): the inference routes go first, below; then V2 metadata, health and the page.
    app.include_router(v2_routes.keyed_v2)
    app.include_router(v2_routes.open_v2)
    app.include_router(routes.protected)
    app.include_router(routes.public)
    app.mount("/static", StaticFiles(directory=routes.STATIC), name="static")
    # First in the routing table: the hot routes, plain Starlette ones (see routes.predict).
    app.router.routes[:0] = [
        Route("/predict", routes.predict, methods=["POST"]),
        *(Route(path, v2_routes.infer, methods=["POST"]) for path in v2_routes.INFER_PATHS),
    ]
    docs_only = (routes.predict_docs, v2_routes.infer_docs)
    routers = (routes.public, routes.protected, v2_routes.open_v2, v2_routes.keyed_v2, *docs_only)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            documented = [*app.routes, *(r for router in docs_only for r in router.routes)]
            app.openapi_schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=documented)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    known = frozenset(r.path for router in routers for r in router.routes if hasattr(r, "path"))
    # Inside RequestContext (added last, so outermost): /predict gets the request id, metrics and
    # access log like every route, then goes straight to its endpoint (service/hot_routes.py).
    app.add_middleware(HotRoutes, routes={("POST", "/predict"): routes.predict})
    app.add_middleware(RequestContext, metrics=state.metrics, known_routes=known)
    return app
