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
from pydantic import BaseModel, ConfigDict, NonNegativeInt, StrictBool, ValidationError

from service.errors import BadRequest, describe_validation

INPUT = "TEXT"
OUTPUTS = {"PROBS": "FP32", "ATTN": "FP32", "TOKENS": "BYTES", "LENGTHS": "INT32"}
NUMPY = {"FP32": "<f4", "INT32": "<i4"}
V2_SHAPE = f"send inputs: [{{name: {INPUT}, datatype: BYTES, shape: [N, 1], data: [...]}}] (the Open Inference Protocol)"


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
    """Nested lists (row-major) → their leaves; a loop, not recursion: orjson reads ~1,000 levels
    of nesting, deeper than Python's recursion limit."""
    out: list[Any] = []
    stack = [iter([data])]
    while stack:
        for x in stack[-1]:
            if isinstance(x, list):
                stack.append(iter(x))
                break
            out.append(x)
        else:
            stack.pop()
    return out


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # the protocol lets clients add their own parameters


class InputParameters(_Open):
    binary_data_size: NonNegativeInt | None = None


class InputTensor(_Open):
    name: str
    datatype: str
    shape: list[NonNegativeInt]
    data: Any = None  # nested or flat lists of strings; checked below
    parameters: InputParameters | None = None


class OutputParameters(_Open):
    binary_data: StrictBool | None = None


class OutputTensor(_Open):
    name: str
    parameters: OutputParameters | None = None


class RequestParameters(_Open):
    binary_data_output: StrictBool = False
    timeout: NonNegativeInt | None = None  # microseconds, as tritonclient sends it; 0: none


class V2Request(_Open):
    id: str | None = None
    inputs: list[InputTensor]
    outputs: list[OutputTensor] | None = None
    parameters: RequestParameters | None = None


def parse_infer(body: bytes, header_length: int | None) -> InferRequest:
    if header_length is not None and not 0 < header_length <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {header_length} does not fit a {len(body)}-byte body", "")
    head, binary = (body[:header_length], body[header_length:]) if header_length is not None else (body, b"")
    try:
        req = V2Request.model_validate_json(head)
    except ValidationError as e:
        first = e.errors()[0]
        if first["type"] == "json_invalid":
            raise BadRequest(f"the inference request header is not valid JSON: {first['msg']}", "send the V2 JSON request") from None
        raise BadRequest(f"malformed inference request: {describe_validation(list(e.errors()))}", V2_SHAPE) from None
    if len(req.inputs) != 1:
        raise BadRequest(f"expected exactly one input tensor named {INPUT}", V2_SHAPE)
    (t,) = req.inputs
    if t.name != INPUT:
        raise BadRequest(f"unknown input {t.name!r}; the model's only input is {INPUT}", "rename the input")
    if t.datatype != "BYTES":
        raise BadRequest(f"input {INPUT} has datatype {t.datatype!r}; expected BYTES", "send the texts as a BYTES tensor")
    count = math.prod(t.shape)
    size = t.parameters.binary_data_size if t.parameters else None
    if size is not None:
        if len(binary) < size:
            raise BadRequest(f"input {INPUT} announces {size} binary bytes, the body has {len(binary)}", "")
        items = _bytes_elements(binary[:size], count)
    else:
        data = _flatten(t.data if t.data is not None else [])
        if not all(isinstance(x, str) for x in data):
            raise BadRequest(f"input {INPUT} data must be strings", "")
        items = [x.encode() for x in data]
    if len(items) != count:
        raise BadRequest(f"input {INPUT} has {len(items)} elements for shape {t.shape}", "make the shape match the data")
    try:
        texts = [b.decode("utf-8") for b in items]
    except UnicodeDecodeError as e:
        raise BadRequest(f"an element of {INPUT} is not UTF-8: {e}", "encode the texts as UTF-8") from None
    params = req.parameters or RequestParameters()
    if req.outputs:
        unknown = [o.name for o in req.outputs if o.name not in OUTPUTS]
        if unknown:
            raise BadRequest(f"unknown outputs {unknown}; the model has {list(OUTPUTS)}", "ask for existing outputs")
        outputs = {}
        for o in req.outputs:
            binary_data = o.parameters.binary_data if o.parameters else None
            outputs[o.name] = params.binary_data_output if binary_data is None else binary_data
    else:
        outputs = dict.fromkeys(OUTPUTS, params.binary_data_output)
    timeout_ms = math.ceil(params.timeout / 1000) if params.timeout else None
    return InferRequest(texts, outputs, req.id, timeout_ms, params.model_dump(exclude_none=True))


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
