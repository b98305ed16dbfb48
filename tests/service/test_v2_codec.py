from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from service.errors import BadRequest
from service.v2_codec import InferRequest, encode_infer, parse_infer, tensors


def _binary_request(texts: list[str], extra: bytes = b"") -> tuple[bytes, int]:
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts) + extra
    head = orjson.dumps(
        {"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [len(texts), 1], "parameters": {"binary_data_size": len(raw)}}]}
    )
    return head + raw, len(head)


def test_parse_binary_bytes_tensor_round_trips_utf8() -> None:
    body, n = _binary_request(["héllo", "", "😀 ok"])
    assert parse_infer(body, n).texts == ["héllo", "", "😀 ok"]


def test_parse_json_nested_data_and_timeout_in_microseconds() -> None:
    body = orjson.dumps(
        {
            "id": "r1",
            "inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [2, 1], "data": [["a"], ["b"]]}],
            "parameters": {"timeout": 1500},
        }
    )
    req = parse_infer(body, None)
    assert req.texts == ["a", "b"] and req.timeout_ms == 2 and req.request_id == "r1"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{", "not valid JSON"),
        (orjson.dumps({"inputs": []}), "exactly one input"),
        (orjson.dumps({"inputs": [{"name": "X", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}), "unknown input"),
        (orjson.dumps({"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [2], "data": ["a"]}]}), r"1 elements for shape \[2\]"),
        (orjson.dumps({"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": [1]}]}), "must be strings"),
        (
            orjson.dumps({"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": ["a"]}], "outputs": [{"name": "NOPE"}]}),
            "unknown outputs",
        ),
    ],
)
def test_parse_bad_request_says_what(body: bytes, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        parse_infer(body, None)


def test_parse_binary_leftover_or_short_data_rejected() -> None:
    body, n = _binary_request(["a"], extra=b"\x00")
    with pytest.raises(BadRequest, match="left over"):
        parse_infer(body, n)
    with pytest.raises(BadRequest, match="does not fit"):
        parse_infer(body, len(body) + 5)


def test_encode_mixed_binary_and_json_outputs() -> None:
    out = tensors(np.array([[0.25, 0.75]], dtype=np.float32), [np.array([0.5, 0.5], dtype=np.float32)], [["a", "b"]])
    req = InferRequest(["a b"], {"PROBS": True, "TOKENS": False})
    body, n = encode_infer("m", "1", req, out)
    assert n is not None
    head = orjson.loads(body[:n])
    assert head["outputs"][1] == {"name": "TOKENS", "datatype": "BYTES", "shape": [1, 2], "data": ["a", "b"]}
    assert np.frombuffer(body[n:], dtype="<f4").tolist() == [0.25, 0.75]


def test_encode_json_float32_written_with_float32_digits() -> None:
    probs = np.array([[0.00015391716, 0.9998461]], dtype=np.float32)
    out = tensors(probs, [np.array([1.0], dtype=np.float32)], [["a"]])
    body, n = encode_infer("m", "1", InferRequest(["a"], {"PROBS": False}), out)
    assert n is None
    assert b'"data":[0.00015391716,0.9998461]' in body


OK_INPUT = {"name": "TEXT", "datatype": "BYTES", "shape": [1, 1], "data": ["a"]}


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        ({"inputs": [1]}, r"inputs\.0: Input should be an object"),
        ({"inputs": [OK_INPUT], "parameters": [1]}, "parameters: Input should be an object"),
        ({"inputs": [{**OK_INPUT, "parameters": [1]}]}, r"inputs\.0\.parameters: Input should be an object"),
        ({"inputs": [OK_INPUT], "outputs": "PROBS"}, "outputs: Input should be a valid array"),
        ({"inputs": [OK_INPUT], "outputs": [{"name": "PROBS", "parameters": [1]}]}, r"outputs\.0\.parameters"),
        ({"inputs": [OK_INPUT], "parameters": {"timeout": "abc"}}, r"parameters\.timeout"),
        ({"inputs": [OK_INPUT], "parameters": {"timeout": -5}}, r"parameters\.timeout: Input should be greater than or equal to 0"),
        ({"inputs": [{**OK_INPUT, "parameters": {"binary_data_size": "4x"}}]}, r"binary_data_size"),
        ({"inputs": [{**OK_INPUT, "shape": [1.5]}]}, r"inputs\.0\.shape\.0"),
        ({"inputs": [OK_INPUT], "id": 5}, "id: Input should be a valid string"),
        ([1], "body: Input should be an object"),
    ],
)
def test_parse_malformed_request_is_a_bad_request_not_a_crash(request_: object, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        parse_infer(orjson.dumps(request_), None)


def _nested(depth: int) -> bytes:
    return b'{"inputs":[{"name":"TEXT","datatype":"BYTES","shape":[1],"data":' + b"[" * depth + b'"a"' + b"]" * depth + b"}]}"


def test_parse_nested_data_flattens_and_too_deep_is_a_bad_request() -> None:
    assert parse_infer(_nested(150), None).texts == ["a"]
    with pytest.raises(BadRequest, match="recursion limit"):  # was a RecursionError (a 500)
        parse_infer(_nested(900), None)


def test_parse_per_output_binary_flag_overrides_the_request_default() -> None:
    body = orjson.dumps(
        {
            "inputs": [OK_INPUT],
            "outputs": [{"name": "PROBS", "parameters": {"binary_data": True}}, {"name": "ATTN"}],
            "parameters": {"binary_data_output": False, "timeout": 0, "priority": 1},
        }
    )
    req = parse_infer(body, None)
    assert req.outputs == {"PROBS": True, "ATTN": False} and req.timeout_ms is None and req.parameters["priority"] == 1
