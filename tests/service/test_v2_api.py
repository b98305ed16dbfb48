"""The Open Inference Protocol, driven by the official Triton HTTP client against a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.service.conftest import Server

TEXTS = ["A gorgeous, heartfelt film!", "Dull and far too long.", "ok"]


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(server.url.removeprefix("http://"))
    yield c
    c.close()


def _text_input(texts: list[str], binary: bool = True) -> triton.InferInput:
    i = triton.InferInput("TEXT", [len(texts), 1], "BYTES")
    i.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=object), binary_data=binary)
    return i


def test_v2_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tiny")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("tiny")
    assert meta["inputs"] == [{"name": "TEXT", "datatype": "BYTES", "shape": [-1, 1]}]
    assert {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]} == {
        "PROBS": ("FP32", [-1, 2]),
        "ATTN": ("FP32", [-1, -1]),
        "TOKENS": ("BYTES", [-1, -1]),
        "LENGTHS": ("INT32", [-1]),
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_v2_infer_agrees_with_predict(client: triton.InferenceServerClient, server: Server, binary: bool) -> None:
    outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("PROBS", "ATTN", "TOKENS", "LENGTHS")]
    res = client.infer("tiny", [_text_input(TEXTS, binary)], outputs=outputs)
    probs, attn, tokens, lengths = (res.as_numpy(n) for n in ("PROBS", "ATTN", "TOKENS", "LENGTHS"))
    assert probs is not None and attn is not None and tokens is not None and lengths is not None
    preds = server.client.post("/predict", json={"texts": TEXTS}).json()["predictions"]
    assert probs.shape == (3, 2) and attn.shape == tokens.shape == (3, int(lengths.max()))
    for i, pred in enumerate(preds):
        n = int(lengths[i])
        assert n == len(pred["tokens"])
        assert probs[i].tolist() == pytest.approx([pred["probabilities"]["negative"], pred["probabilities"]["positive"]], abs=1e-5)
        assert attn[i, :n].tolist() == pytest.approx([t["attention"] for t in pred["tokens"]], abs=1e-5)
        assert np.all(attn[i, n:] == 0)
        surface = [t.decode() if isinstance(t, bytes) else str(t) for t in tokens[i]]
        assert surface[:n] == [t["text"] for t in pred["tokens"]] and all(s == "" for s in surface[n:])


def test_v2_infer_default_outputs_all_binary(client: triton.InferenceServerClient) -> None:
    res = client.infer("tiny", [_text_input(["fine"])])  # no outputs named: all of them, binary
    assert res.as_numpy("PROBS").shape == (1, 2)  # type: ignore[union-attr]
    assert all(o["parameters"]["binary_data_size"] > 0 for o in res.get_response()["outputs"])


def test_v2_infer_only_requested_outputs(client: triton.InferenceServerClient) -> None:
    res = client.infer("tiny", [_text_input(["fine"])], outputs=[triton.InferRequestedOutput("LENGTHS")])
    assert res.as_numpy("LENGTHS").tolist() == [1]  # type: ignore[union-attr]
    assert res.as_numpy("PROBS") is None


def test_v2_unknown_model_is_an_error(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        client.infer("nope", [_text_input(["fine"])])
    assert not client.is_model_ready("nope")


def test_v2_infer_by_version_right_answers_wrong_is_an_error(client: triton.InferenceServerClient) -> None:
    version = client.get_model_metadata("tiny")["versions"][0]
    res = client.infer("tiny", [_text_input(["fine"])], model_version=version)
    assert res.as_numpy("PROBS").shape == (1, 2)  # type: ignore[union-attr]
    with pytest.raises(InferenceServerException, match="unknown model 'tiny' version 'v0'"):
        client.infer("tiny", [_text_input(["fine"])], model_version="v0")


def test_v2_wrong_datatype_is_an_error(client: triton.InferenceServerClient) -> None:
    bad = triton.InferInput("TEXT", [1, 1], "FP32")
    bad.set_data_from_numpy(np.array([[1.0]], dtype=np.float32))
    with pytest.raises(InferenceServerException, match="expected BYTES"):
        client.infer("tiny", [bad])


def test_v2_empty_text_is_an_error(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="empty or only whitespace"):
        client.infer("tiny", [_text_input(["fine", "  "])])


def test_v2_timeout_parameter_is_the_deadline(start_server: Callable[..., Server]) -> None:
    s = start_server(max_wait_ms=1000)
    c = triton.InferenceServerClient(s.url.removeprefix("http://"))
    with pytest.raises(InferenceServerException, match="deadline"):
        c.infer("tiny", [_text_input(["slow", "slower"])], timeout=100_000)  # µs
    c.close()


def test_v2_infer_needs_the_api_key_health_does_not(start_server: Callable[..., Server]) -> None:
    s = start_server(api_key="k")
    c = triton.InferenceServerClient(s.url.removeprefix("http://"))
    assert c.is_server_ready() and c.is_model_ready("tiny")
    with pytest.raises(InferenceServerException, match="API key"):
        c.infer("tiny", [_text_input(["fine"])])
    res = c.infer("tiny", [_text_input(["fine"])], headers={"Authorization": "Bearer k"})
    assert res.as_numpy("PROBS").shape == (1, 2)  # type: ignore[union-attr]
    c.close()


@pytest.mark.parametrize(
    ("body", "headers", "needle"),
    [
        (b'{"inputs": [1]}', {}, "inputs.0: Input should be an object"),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "1O"}, "not a byte count"),
    ],
)
def test_v2_malformed_request_answers_400_with_the_reason(server: Server, body: bytes, headers: dict[str, str], needle: str) -> None:
    r = server.client.post("/v2/models/tiny/infer", content=body, headers=headers)
    assert r.status_code == 400 and needle in r.json()["error"]
