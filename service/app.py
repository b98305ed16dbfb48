"""`create_app(settings)`: wires settings → engine → batcher → predictor → routes.

The lifespan loads the model, warms it up and only then reports ready; on shutdown it drains.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI

from service import errors, routes
from service.batcher import Batcher, BatchLimits
from service.engine import Engine, EngineConfig
from service.metrics import Metrics
from service.middleware import RequestContext
from service.model_files import Metadata, TextTokenizer
from service.predictor import Predictor, RequestLimits
from service.settings import Settings

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
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start_draining(self) -> None:
        self.draining = True
        self.metrics.ready.set(0)


def build_predictor(s: Settings, state: State) -> Predictor:
    meta = Metadata.load(s.artifact)
    engine = Engine(
        s.artifact / "model.onnx",
        EngineConfig(s.device, s.threads_per_worker(), s.inter_op_threads, s.graph_optimization),
    )
    if s.warmup:
        # Shapes that real traffic forms: one short text up to a full batch of long ones.
        sizes = sorted({1, min(8, s.max_batch_size), s.max_batch_size})
        lengths = sorted({8, 32, meta.max_length})
        state.warmup_seconds = engine.warmup(sizes, lengths, meta.pad_id)
    limits = BatchLimits(s.max_batch_size, s.max_batch_tokens, s.max_wait_ms / 1000.0, s.max_queue)
    batcher = Batcher(engine.run, meta.pad_id, limits, state.metrics)
    req = RequestLimits(s.max_texts_per_request, s.max_text_chars, s.request_timeout_ms, s.max_request_timeout_ms)
    state.meta, state.engine = meta, engine
    return Predictor(meta, TextTokenizer(s.artifact, meta.max_length), batcher, req)


def create_app(settings: Settings, metrics_dir: str | None = None) -> FastAPI:
    state = State(settings=settings, metrics=Metrics(metrics_dir))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading and warm-up run in a thread: /healthz answers while they take their time.
        predictor = await asyncio.to_thread(build_predictor, settings, state)
        predictor.batcher.start()
        state.predictor = predictor
        assert state.meta is not None and state.engine is not None
        state.metrics.info.labels(state.meta.name, state.meta.version, state.engine.providers[0]).set(1)
        state.metrics.ready.set(1)
        state.ready = True
        log.info(
            "ready",
            extra={
                "model": state.meta.name,
                "version": state.meta.version,
                "providers": state.engine.providers,
                "warmup_s": round(state.warmup_seconds, 3),
            },
        )
        try:
            yield
        finally:
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
    )
    app.state.svc = state
    errors.install(app)
    app.include_router(routes.public)
    app.include_router(routes.protected)
    known = frozenset(
        r.path for router in (routes.public, routes.protected) for r in router.routes if hasattr(r, "path")
    )
    app.add_middleware(RequestContext, metrics=state.metrics, known_routes=known)
    return app
