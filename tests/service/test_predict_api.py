"""POST /predict against a real uvicorn process: answers, offsets, attention, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.artifact import OnnxClassifier
from model.data import load_rotten_tomatoes
from tests.conftest import CACHE
from tests.service.conftest import Server

TEXTS = ["A gorgeous, heartfelt film!", "  Dull and far   too long.", "Café crème — naïve 😀 résumé"]


def test_predict_texts_answered_in_order_with_offsets_into_the_original(server: Server) -> None:
    r = server.client.post("/predict", json={"texts": TEXTS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "tiny"
    assert len(body["predictions"]) == len(TEXTS)
    for text, pred in zip(TEXTS, body["predictions"], strict=True):
        assert pred["label"] in ("negative", "positive")
        assert pred["score"] == max(pred["probabilities"].values())
        assert abs(sum(pred["probabilities"].values()) - 1.0) < 1e-5
        assert pred["truncated"] is False
        for tok in pred["tokens"]:
            assert tok["text"] == text[tok["start"] : tok["end"]]
            assert tok["text"].strip() == tok["text"] != ""
        assert abs(sum(t["attention"] for t in pred["tokens"]) - 1.0) <= 1e-5


def test_predict_answers_match_the_artifact_evaluated_offline(server: Server, tiny_artifact: Path) -> None:
    # The whole served path (fast tokenizer, batching, splitting, label lookup) against the
    # evaluation code reading the same artifact with `tokenizers` and onnxruntime alone.
    texts = [e.text for e in load_rotten_tomatoes(CACHE)[::211][:48]]
    model = OnnxClassifier(tiny_artifact)
    offline = model(texts)
    served = []
    for i in range(0, len(texts), 8):  # the fixture's max_texts_per_request
        r = server.client.post("/predict", json={"texts": texts[i : i + 8]})
        assert r.status_code == 200, r.text
        served += r.json()["predictions"]
    names = model.labels
    for k, (pred, probs, attn, pieces) in enumerate(zip(served, offline.probabilities, offline.attention, offline.tokens, strict=True)):
        assert pred["label"] == names[int(np.argmax(probs))], texts[k]
        assert [pred["probabilities"][n] for n in names] == pytest.approx(probs.tolist(), abs=1e-5)
        assert [t["piece"] for t in pred["tokens"]] == pieces
        assert [t["attention"] for t in pred["tokens"]] == pytest.approx(attn.tolist(), abs=1e-5)
    # The tiny model gives both answers, so a swapped label lookup could not pass unnoticed.
    assert {p["label"] for p in served} == set(names)


def test_predict_numbers_written_with_float32_digits_only(server: Server) -> None:
    # The model computes in float32: each number is the shortest decimal that reads back as that
    # float32 (0.9998461), never float64's expansion of it (0.9998461008071899).
    r = server.client.post("/predict", json={"texts": TEXTS})
    for pred in r.json()["predictions"]:
        numbers = [pred["score"], *pred["probabilities"].values(), *(t["attention"] for t in pred["tokens"])]
        assert [float(str(np.float32(x))) for x in numbers] == numbers


def test_predict_single_text_same_as_in_a_batch(server: Server) -> None:
    one = server.client.post("/predict", json={"text": TEXTS[0]}).json()["predictions"][0]
    many = server.client.post("/predict", json={"texts": TEXTS}).json()["predictions"][0]
    assert one["probabilities"] == pytest.approx(many["probabilities"], abs=1e-5)
    assert [t["attention"] for t in one["tokens"]] == pytest.approx([t["attention"] for t in many["tokens"]], abs=1e-5)


def test_predict_attention_false_omits_tokens(server: Server) -> None:
    pred = server.client.post("/predict", json={"text": "fine", "attention": False}).json()["predictions"][0]
    assert "tokens" not in pred and pred["label"]


def test_predict_long_text_truncated_and_flagged(server: Server) -> None:
    text = "good " * 200  # the tiny model's max_length is 64 tokens
    pred = server.client.post("/predict", json={"text": text}).json()["predictions"][0]
    assert pred["truncated"] is True
    assert len(pred["tokens"]) == 64


def test_predict_unreadable_text_gets_one_unknown_token(server: Server) -> None:
    text = "\u0301\u0301"  # only combining marks: the normaliser strips them all
    pred = server.client.post("/predict", json={"text": text}).json()["predictions"][0]
    assert pred["tokens"] == [{"text": text, "start": 0, "end": 2, "attention": 1.0, "piece": "[UNK]"}]


def test_request_id_echoed_or_generated(server: Server) -> None:
    r = server.client.post("/predict", json={"text": "ok"}, headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = server.client.get("/healthz").headers["x-request-id"]
    assert len(generated) >= 8


def _bad(server: Server, content: Any = None, **kw: Any) -> dict[str, Any]:
    r = server.client.post("/predict", content=content, **kw) if content is not None else server.client.post("/predict", **kw)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["message"] and err["code"] and err["request_id"]
    return {"status": r.status_code, **err}


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"content": b'{"text": '}, 422, "Invalid JSON"),
        ({"content": b""}, 422, "body is empty"),
        ({"content": b'{"text": "\xff\xfe"}'}, 422, "unicode"),
        ({"json": {"text": 5}}, 422, "text"),
        ({"json": {"texts": "not a list"}}, 422, "texts"),
        ({"json": {}}, 422, "exactly one of"),
        ({"json": {"text": "a", "texts": ["b"]}}, 422, "exactly one of"),
        ({"json": {"text": ""}}, 422, "empty or only whitespace"),
        ({"json": {"texts": ["fine", " \n\t "]}}, 422, "text 1 is empty"),
        ({"json": {"texts": []}}, 422, "empty"),
        ({"json": {"texts": ["x"] * 9}}, 422, "limit is 8"),
        ({"json": {"text": "x" * 2001}}, 422, "limit is 2000"),
        ({"json": {"text": "x", "colour": "red"}}, 422, "colour: Extra inputs"),
        ({"json": {"text": "x", "timeout_ms": 10**9}}, 422, "maximum"),
        ({"json": {"text": "x", "timeout_ms": -1}}, 422, "timeout_ms"),
        ({"json": ["a list"]}, 422, "should be an object"),
        ({"content": b"x" * 20001}, 413, "limit is 20000"),
        # Chunked, with no Content-Length: the limit holds while streaming too.
        ({"content": iter([b"x" * 15000, b"x" * 15000])}, 413, "exceeds 20000"),
    ],
)
def test_predict_bad_input_gets_4xx_saying_what_and_how_to_fix(server: Server, kwargs: dict[str, Any], status: int, needle: str) -> None:
    err = _bad(server, **kwargs)
    assert err["status"] == status
    assert needle.lower() in err["message"].lower()
    assert err.get("fix")


def test_unknown_route_and_wrong_method_are_4xx_json(server: Server) -> None:
    assert server.client.get("/nope").json()["error"]["code"] == "http_error"
    r = server.client.get("/predict")
    assert r.status_code == 405 and r.json()["error"]["message"]


def test_openapi_documents_predict_with_examples(server: Server) -> None:
    spec = server.client.get("/openapi.json").json()
    op = spec["paths"]["/predict"]["post"]
    assert set(op["requestBody"]["content"]["application/json"]["examples"]) == {"one", "several"}
    assert op["responses"]["200"]["content"]["application/json"]["example"]["predictions"]
    assert {"401", "413", "422", "429", "503", "504"} <= set(op["responses"])
    assert "/healthz" in spec["paths"] and "/v2/models/{name}/infer" in spec["paths"]
    assert server.client.get("/docs").status_code == 200


def test_server_logs_are_json_with_request_ids(server: Server) -> None:
    import json

    server.client.post("/predict", json={"text": "ok"}, headers={"X-Request-ID": "log-me-1"})
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    assert any(rec.get("request_id") == "log-me-1" and rec.get("path") == "/predict" for rec in lines)
