"""Reading an exported artifact back with onnxruntime alone (no torch): used by evaluation and by
anyone who wants to re-check an artifact's numbers on the split CSV.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from service.padding import right_pad

FORMAT_VERSION = 1
MODEL_FILE, TOKENIZER_FILE, METADATA_FILE = "model.onnx", "tokenizer.json", "metadata.json"


def read_metadata(artifact: Path) -> dict[str, Any]:
    return dict(json.loads((artifact / METADATA_FILE).read_text()))


def write_metadata(artifact: Path, meta: dict[str, Any]) -> None:
    (artifact / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")


@dataclass
class Outputs:
    probabilities: np.ndarray  # (N, C)
    attention: list[np.ndarray]  # N arrays, one weight per token of that text
    tokens: list[list[str]]


class OnnxClassifier:
    """Tokenise, pad per length-sorted batch, run; results in input order."""

    def __init__(self, artifact: Path, threads: int = 2) -> None:
        self.meta = read_metadata(artifact)
        self.labels: list[str] = list(self.meta["labels"])
        self.tok = Tokenizer.from_file(str(artifact / TOKENIZER_FILE))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(str(artifact / MODEL_FILE), opts, providers=["CPUExecutionProvider"])
        self.pad_id = int(self.meta["model_config"]["pad_id"])
        self.unk_id = self.tok.token_to_id("[UNK]") or 0

    def __call__(self, texts: list[str], batch_size: int = 64) -> Outputs:
        encs = self.tok.encode_batch(texts)
        ids = [e.ids or [self.unk_id] for e in encs]
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        attn: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(texts)
        order = np.argsort([len(s) for s in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, m = right_pad([ids[i] for i in idx], self.pad_id)  # (B, T) each
            p, a = self.sess.run(["probabilities", "attention"], {"input_ids": x, "attention_mask": m})
            probs[idx] = p
            for r, i in enumerate(idx):
                attn[i] = a[r, : len(ids[i])]
        return Outputs(probs, attn, [e.tokens or ["[UNK]"] for e in encs])
