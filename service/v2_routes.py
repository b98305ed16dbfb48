"""Open Inference Protocol (KServe V2 / Triton HTTP) routes over the same predictor as /predict.

Health and readiness are open; model metadata and inference need the API key when one is set.
Errors are non-200 with `{"error": "..."}` (see errors.respond).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from service import v2_codec
from service.errors import BadRequest, NotFound, NotReady
from service.routes import StateDep, answer, check_key, read_body, require_key, results_unless_gone

if TYPE_CHECKING:
    from service.app import State

SERVER: dict[str, object] = {"name": "sentiment-service", "version": "0.1.0", "extensions": ["binary_tensor_data"]}
HEADER = "Inference-Header-Content-Length"

open_v2 = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"])
keyed_v2 = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"], dependencies=[Depends(require_key)])


def _check_model(state: State, name: str, version: str | None = None) -> None:
    if state.meta is None:
        raise NotReady("the model is not loaded yet", "retry shortly")
    if name != state.meta.name or (version is not None and version != state.meta.version):
        served = f"{state.meta.name} (version {state.meta.version})"
        raise NotFound(f"unknown model {name!r}" + (f" version {version!r}" if version else ""), f"this server serves {served}")


@open_v2.get("", summary="Server metadata")
async def server_metadata() -> dict[str, object]:
    return SERVER


@open_v2.get("/health/live", summary="Server liveness")
async def live() -> dict[str, bool]:
    return {"live": True}


@open_v2.get("/health/ready", summary="Server readiness")
async def ready(state: StateDep) -> dict[str, bool]:
    if not state.ready or state.draining:
        raise NotReady("not ready", "retry shortly or use another replica")
    return {"ready": True}


@open_v2.get("/models/{name}/ready", summary="Model readiness")
@open_v2.get("/models/{name}/versions/{version}/ready", summary="Model readiness (a version)")
async def model_ready(name: str, state: StateDep, version: str | None = None) -> dict[str, object]:
    _check_model(state, name, version)
    if not state.ready or state.draining:
        raise NotReady(f"model {name} is not ready", "retry shortly")
    return {"name": name, "ready": True}


@keyed_v2.get("/models/{name}", summary="Model metadata")
@keyed_v2.get("/models/{name}/versions/{version}", summary="Model metadata (a version)")
async def model_metadata(name: str, state: StateDep, version: str | None = None) -> dict[str, object]:
    _check_model(state, name, version)
    assert state.meta is not None
    classes = len(state.meta.labels)
    return {
        "name": state.meta.name,
        "versions": [state.meta.version],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": v2_codec.INPUT, "datatype": "BYTES", "shape": [-1, 1]}],
        "outputs": [
            {"name": "PROBS", "datatype": "FP32", "shape": [-1, classes]},
            {"name": "ATTN", "datatype": "FP32", "shape": [-1, -1]},
            {"name": "TOKENS", "datatype": "BYTES", "shape": [-1, -1]},
            {"name": "LENGTHS", "datatype": "INT32", "shape": [-1]},
        ],
        "parameters": {"labels": state.meta.labels, "max_length": state.meta.max_length},
    }


# Inference is served by a plain Starlette route (registered in app.py), as /predict is: FastAPI's
# per-request machinery (dependency solving, exit stacks) made a single-text V2 request ~27% slower
# than the same text on /predict at c=16. This documentation-only router gives it its OpenAPI entries.
infer_docs = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"])
INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


@infer_docs.post("/models/{name}/infer", summary="Inference (JSON or binary tensor data)")
@infer_docs.post("/models/{name}/versions/{version}/infer", summary="Inference (a version)")
async def infer_documented(name: str, version: str | None = None) -> None:  # pragma: no cover - never routed
    raise NotImplementedError


async def infer(request: Request) -> Response:
    state: State = request.app.state.svc
    check_key(request, state)
    _check_model(state, request.path_params["name"], request.path_params.get("version"))
    if state.predictor is None or state.meta is None:  # loaded, but the batcher not started yet
        raise NotReady("the model is not loaded yet", "retry shortly")
    body = await read_body(request, state.settings.max_body_bytes)
    header = request.headers.get(HEADER)
    if header is not None and not (header.isascii() and header.isdigit()):
        raise BadRequest(f"{HEADER} is {header!r}, not a byte count", "send the JSON header's length in bytes, or leave the header out")
    req = v2_codec.parse_infer(body, int(header) if header is not None else None)
    predictor = state.predictor
    job = predictor.submit(req.texts, True, req.timeout_ms)
    results = await results_unless_gone(request, predictor, job)
    probs = np.stack([p for p, _ in results])  # (N, C)
    tokens = [enc.surfaces() for enc in job.encoded]
    out = v2_codec.tensors(probs, [a for _, a in results], tokens)
    payload, head_len = v2_codec.encode_infer(state.meta.name, state.meta.version, req, out)
    # Compressed as a whole: Inference-Header-Content-Length counts the JSON before compression.
    if head_len is None:
        return answer(request, state, payload, "application/json")
    return answer(request, state, payload, "application/octet-stream", {HEADER: str(head_len)})
