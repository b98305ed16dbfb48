"""Export to ONNX, prove parity with PyTorch, optionally quantise to int8.

The artifact contract (read by `service/`): `model.onnx` with inputs `input_ids`, `attention_mask`
int64 (batch, seq) and outputs `probabilities` float32 (batch, classes), `attention` float32
(batch, seq); `tokenizer.json`; `metadata.json` (see `model.artifact`).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from model.artifact import ArtifactError
from model.net import ExportWrapper, SentimentNet

OPSET = 17
INPUTS = ["input_ids", "attention_mask"]
OUTPUTS = ["probabilities", "attention"]
PARITY_TOLERANCE = 1e-5


class ExportError(ArtifactError):
    """The exported graph does not reproduce the PyTorch model; nothing should ship."""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_onnx(net: SentimentNet, path: Path) -> None:
    net.eval()
    wrapper = ExportWrapper(net).eval()
    ids = torch.ones(2, 5, dtype=torch.int64)  # (B, T) example input; both axes are dynamic
    mask = torch.ones(2, 5, dtype=torch.int64)
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is deprecated and that RNN batch sizes may
        # vary; it still gives named dynamic axes on every output, which the dynamo exporter
        # (torch 2.13) gets wrong for `attention` (a fixed seq length) — see docs/MODEL.md.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (ids, mask),
            str(path),
            input_names=INPUTS,
            output_names=OUTPUTS,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "probabilities": {0: "batch"},
                "attention": {0: "batch", 1: "seq"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


def random_batches(vocab: int, pad_id: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of several sizes with rows of varied length and right padding."""
    rng = np.random.default_rng(seed)
    out = []
    for batch, seq in [(1, 1), (1, 9), (3, 4), (8, 17), (16, 64), (5, 128)]:
        lengths = rng.integers(1, seq + 1, size=batch)
        lengths[0] = seq  # at least one full row, so the padded width is really `seq`
        ids = rng.integers(0, vocab, size=(batch, seq)).astype(np.int64)  # (B, T)
        mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)  # (B, T)
        ids[mask == 0] = pad_id
        out.append((ids, mask))
    return out


def check_parity(net: SentimentNet, onnx_path: Path) -> dict[str, float]:
    """Max abs difference PyTorch vs onnxruntime; raises ExportError above PARITY_TOLERANCE."""
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    wrapper = ExportWrapper(net).eval()
    worst = {"probabilities": 0.0, "attention": 0.0}
    for ids, mask in random_batches(net.cfg.vocab_size, net.cfg.pad_id):
        with torch.no_grad():
            p_t, a_t = wrapper(torch.from_numpy(ids), torch.from_numpy(mask))
        p_o, a_o = sess.run(OUTPUTS, {"input_ids": ids, "attention_mask": mask})
        worst["probabilities"] = max(worst["probabilities"], float(np.abs(p_t.numpy() - p_o).max()))
        worst["attention"] = max(worst["attention"], float(np.abs(a_t.numpy() - a_o).max()))
    bad = {k: v for k, v in worst.items() if not v <= PARITY_TOLERANCE}
    if bad:
        raise ExportError(
            f"{onnx_path}: ONNX output differs from PyTorch by {bad} (tolerance {PARITY_TOLERANCE}), so the graph does "
            "not compute what the network does and no artifact was written. If model/net.py or the torch / onnxruntime "
            "versions changed, run `pytest tests/model` to find the operation that exports differently"
        )
    return worst


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of the weights (MatMul/Gemm/LSTM), activations stay float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
