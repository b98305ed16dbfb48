"""Open Inference Protocol (KServe V2 / Triton HTTP) tensors in and out, including the binary
tensor data extension: a JSON header of `Inference-Header-Content-Length` bytes followed by raw
tensor bytes; BYTES elements are a 4-byte little-endian length and the bytes.

Pure functions over bytes and numpy arrays: no HTTP, no model.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from service.errors import BadRequest

INPUT = "TEXT"
OUTPUTS = {"PROBS": "FP32", "ATTN": "FP32", "TOKENS": "BYTES", "LENGTHS": "INT32"}
NUMPY = {"FP32": "<f4", "INT32": "<i4"}


@dataclass
class InferRequest:
    texts: list[str]
    outputs: dict[str, bool]  # requested output → binary?
    request_id: str | None = None
    timeout_ms: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def _bytes_elements(raw: bytes, count: int) -> list[bytes]:
    out, pos = [], 0
    for _ in range(count):
        if pos + 4 > len(raw):
            raise BadRequest("binary BYTES tensor ends early", "each element is a 4-byte little-endian length, then the bytes")
        (n,) = struct.unpack_from("<I", raw, pos)
        out.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    if pos != len(raw):
        raise BadRequest(f"binary BYTES tensor has {len(raw) - pos} bytes left over after {count} elements", "check the tensor's shape")
    return out


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [x for item in data for x in _flatten(item)]
    return [data]


def parse_infer(body: bytes, header_length: int | None) -> InferRequest:
    if header_length is not None and not 0 < header_length <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {header_length} does not fit a {len(body)}-byte body", "")
    head, binary = (body[:header_length], body[header_length:]) if header_length is not None else (body, b"")
    try:
        req = orjson.loads(head)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the inference request header is not valid JSON: {e}", "send the V2 JSON request") from None
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list) or len(req["inputs"]) != 1:
        raise BadRequest(
            f"expected exactly one input tensor named {INPUT}", f"send inputs: [{{name: {INPUT}, datatype: BYTES, shape: [N, 1]}}]"
        )
    (t,) = req["inputs"]
    if t.get("name") != INPUT:
        raise BadRequest(f"unknown input {t.get('name')!r}; the model's only input is {INPUT}", "rename the input")
    if t.get("datatype") != "BYTES":
        raise BadRequest(f"input {INPUT} has datatype {t.get('datatype')!r}; expected BYTES", "send the texts as a BYTES tensor")
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequest(f"input {INPUT} has shape {shape!r}", "give the shape as a list of sizes, e.g. [N, 1]")
    count = math.prod(shape)
    size = (t.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if len(binary) < size:
            raise BadRequest(f"input {INPUT} announces {size} binary bytes, the body has {len(binary)}", "")
        items = _bytes_elements(binary[:size], count)
    else:
        data = _flatten(t.get("data", []))
        if not all(isinstance(x, str) for x in data):
            raise BadRequest(f"input {INPUT} data must be strings", "")
        items = [x.encode() for x in data]
    if len(items) != count:
        raise BadRequest(f"input {INPUT} has {len(items)} elements for shape {shape}", "make the shape match the data")
    try:
        texts = [b.decode("utf-8") for b in items]
    except UnicodeDecodeError as e:
        raise BadRequest(f"an element of {INPUT} is not UTF-8: {e}", "encode the texts as UTF-8") from None
    params = req.get("parameters") or {}
    default_binary = bool(params.get("binary_data_output", False))
    wanted = req.get("outputs")
    if wanted:
        unknown = [o.get("name") for o in wanted if o.get("name") not in OUTPUTS]
        if unknown:
            raise BadRequest(f"unknown outputs {unknown}; the model has {list(OUTPUTS)}", "ask for existing outputs")
        outputs = {o["name"]: bool((o.get("parameters") or {}).get("binary_data", default_binary)) for o in wanted}
    else:
        outputs = dict.fromkeys(OUTPUTS, default_binary)
    timeout_us = params.get("timeout")
    timeout_ms = max(1, math.ceil(int(timeout_us) / 1000)) if timeout_us else None
    return InferRequest(texts, outputs, req.get("id"), timeout_ms, params)


def tensors(probs: np.ndarray, attn: list[np.ndarray], tokens: list[list[str]]) -> dict[str, np.ndarray]:
    """Per-text results → the four output tensors (attention and tokens padded to the longest)."""
    n, longest = len(attn), max((len(a) for a in attn), default=0)
    att = np.zeros((n, longest), dtype=np.float32)  # (N, T)
    tok = np.full((n, longest), "", dtype=object)  # (N, T)
    for i, (a, t) in enumerate(zip(attn, tokens, strict=True)):
        att[i, : len(a)] = a
        tok[i, : len(t)] = t
    return {"PROBS": probs.astype(np.float32), "ATTN": att, "TOKENS": tok, "LENGTHS": np.array([len(a) for a in attn], dtype=np.int32)}


def _raw(name: str, arr: np.ndarray) -> bytes:
    if OUTPUTS[name] == "BYTES":
        return b"".join(struct.pack("<I", len(b)) + b for b in (str(x).encode() for x in arr.ravel()))
    return arr.astype(NUMPY[OUTPUTS[name]]).tobytes()


def _numbers(arr: np.ndarray) -> orjson.Fragment:
    """A tensor's values as its own dtype writes them (float32: 0.9998461, not float64's
    0.9998461008071899, digits float32 does not hold)."""
    return orjson.Fragment(orjson.dumps(np.ascontiguousarray(arr).ravel(), option=orjson.OPT_SERIALIZE_NUMPY))


def encode_infer(model: str, version: str, req: InferRequest, out: dict[str, np.ndarray]) -> tuple[bytes, int | None]:
    """→ (body, header length or None when everything is JSON)."""
    head: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": []}
    if req.request_id is not None:
        head["id"] = req.request_id
    blobs = []
    for name, binary in req.outputs.items():
        arr = out[name]
        t: dict[str, Any] = {"name": name, "datatype": OUTPUTS[name], "shape": list(arr.shape)}
        if binary:
            raw = _raw(name, arr)
            t["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            t["data"] = [str(x) for x in arr.ravel()] if OUTPUTS[name] == "BYTES" else _numbers(arr)
        head["outputs"].append(t)
    header = orjson.dumps(head)
    return (header + b"".join(blobs), len(header)) if blobs else (header, None)
