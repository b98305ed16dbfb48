"""The naive baseline the benchmark compares against: a FastAPI endpoint that tokenises and runs
the model once per request, no batching, answering through FastAPI's default encoder. Same
artifact, same response content as the service. Run with uvicorn --workers N --factory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer


class Req(BaseModel):
    text: str | None = None
    texts: list[str] | None = None


def create() -> FastAPI:
    artifact = Path(os.environ["NAIVE_ARTIFACT"])
    import json

    meta = json.loads((artifact / "metadata.json").read_text())
    labels = meta["labels"]
    tok = Tokenizer.from_file(str(artifact / "tokenizer.json"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("NAIVE_THREADS", "1"))
    sess = ort.InferenceSession(str(artifact / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    pad = int(meta["model_config"]["pad_id"])
    app = FastAPI()

    @app.post("/predict")
    def predict(req: Req) -> dict[str, Any]:
        texts = [req.text] if req.text is not None else req.texts or []
        encs = tok.encode_batch(texts)
        T = max(len(e.ids) for e in encs)
        ids = np.full((len(texts), T), pad, dtype=np.int64)
        mask = np.zeros((len(texts), T), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        probs, attn = sess.run(None, {"input_ids": ids, "attention_mask": mask})
        preds = []
        for i, (text, e) in enumerate(zip(texts, encs, strict=True)):
            k = int(probs[i].argmax())
            tokens = [
                {"text": text[s:t], "start": s, "end": t, "attention": float(attn[i, j]), "piece": e.tokens[j]}
                for j, (s, t) in enumerate(e.offsets)
            ]
            preds.append(
                {
                    "label": labels[k],
                    "score": float(probs[i, k]),
                    "probabilities": dict(zip(labels, map(float, probs[i]), strict=True)),
                    "tokens": tokens,
                    "truncated": bool(e.overflowing),
                }
            )
        return {"model": {"name": meta["name"], "version": meta["version"]}, "predictions": preds}

    return app
