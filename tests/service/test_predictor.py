"""The predictor without HTTP: the compiled per-text path (SENTIMENT_NATIVE, the default) and its
Python twins give the same answer, byte for byte, over a real onnxruntime session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from model.data import load_rotten_tomatoes
from service.app import State, build_predictor
from service.metrics import Metrics
from service.settings import Settings
from tests.conftest import CACHE


def _answers(artifact: Path, native: bool, requests: list[list[str]], attention: bool) -> list[bytes]:
    s = Settings(artifact=artifact, native=native, warmup_runs=0, workers=1, intra_op_threads=1)

    async def go() -> list[bytes]:
        p = build_predictor(s, State(settings=s, metrics=Metrics()))
        assert p.tokenizer.native is native
        p.batcher.start()
        try:  # one request at a time: the same batches both ways (a request's texts get padded)
            return [await p.predict(texts, attention) for texts in requests]
        finally:
            await p.batcher.close(5.0)

    return asyncio.run(go())


@pytest.mark.parametrize("attention", [True, False])
def test_predict_native_and_python_paths_answer_byte_for_byte(tiny_artifact: Path, attention: bool) -> None:
    texts = [e.text for e in load_rotten_tomatoes(CACHE)][:320]
    texts += ["naïve café — “not” plain…", "[CLS] special", "x" * 900, "a\tb\nc"]  # the general path, truncation
    requests = [texts[i : i + 32] for i in range(0, len(texts), 32)]
    native = _answers(tiny_artifact, True, requests, attention)
    assert native == _answers(tiny_artifact, False, requests, attention)
    preds = [p for a in native for p in orjson.loads(a)["predictions"]]
    assert len(preds) == len(texts) and any(p["truncated"] for p in preds)
    assert all(("tokens" in p) is attention for p in preds)
