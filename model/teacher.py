"""A contextual teacher for distillation: all-MiniLM-L6-v2 (the wheel whose embeddings initialise
our model) fine-tuned as a whole, mean-pooled, with a linear head, on the training split.

Its class probabilities on the training texts become soft labels for the student (`model/train.py`).
Fine-tuning takes ≈ 11 minutes on 2 cores, more than the student's whole training budget, so the
soft labels of the default corpus ship in `model/assets/` (written by `python -m model teacher`)
and are used only for the training split they were made for (its sha256 is stored with them).

Shapes: B = batch, T = tokens, H = 384 hidden, NH = 12 heads, D = H / NH.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from tqdm import tqdm

from model.data import DataError, read_wheel_member
from model.tokenizer import MINILM, MINILM_WEIGHTS
from service.padding import right_pad

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
DEFAULT_SOFT_LABELS = ASSETS / "teacher_rotten_tomatoes.npz"
H, NH, LAYERS = 384, 12, 6


@dataclass
class TeacherConfig:
    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 64
    dropout: float = 0.1
    seed: int = 1
    threads: int = 2
    progress: bool = True


class MiniLMClassifier(nn.Module):
    """BERT-style encoder (post-LayerNorm) with MiniLM's weights, mean pooling, a linear head."""

    def __init__(self, weights: dict[str, np.ndarray], num_classes: int, dropout: float) -> None:
        super().__init__()
        # Parameter names may not contain dots: keep MiniLM's names with "__" instead.
        self.w = nn.ParameterDict(
            {k.replace(".", "__"): nn.Parameter(torch.from_numpy(v.copy())) for k, v in weights.items() if v.dtype == np.float32}
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(H, num_classes)

    def _p(self, name: str) -> torch.Tensor:
        return self.w[name.replace(".", "__")]

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return nn.functional.layer_norm(x, (H,), self._p(name + ".weight"), self._p(name + ".bias"), eps=1e-12)

    def _lin(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ self._p(name + ".weight").T + self._p(name + ".bias")

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask: (B, T) → logits (B, C)."""
        B, T = ids.shape
        pos = self._p("embeddings.position_embeddings.weight")[:T]  # (T, H)
        x = self._p("embeddings.word_embeddings.weight")[ids] + pos + self._p("embeddings.token_type_embeddings.weight")[0]
        x = self.drop(self._ln(x, "embeddings.LayerNorm"))  # (B, T, H)
        bias = (1.0 - mask)[:, None, None, :] * -1e9  # (B, 1, 1, T): padding gets no attention
        for layer in range(LAYERS):
            p = f"encoder.layer.{layer}."
            q, k, v = (self._lin(x, p + f"attention.self.{n}").view(B, T, NH, H // NH).transpose(1, 2) for n in ("query", "key", "value"))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(H // NH) + bias, dim=-1) @ v  # (B, NH, T, D)
            a = self._lin(a.transpose(1, 2).reshape(B, T, H), p + "attention.output.dense")  # (B, T, H)
            x = self._ln(x + self.drop(a), p + "attention.output.LayerNorm")
            f = self._lin(nn.functional.gelu(self._lin(x, p + "intermediate.dense")), p + "output.dense")  # (B, T, H)
            x = self._ln(x + self.drop(f), p + "output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # (B, H)
        return self.head(self.drop(pooled))  # type: ignore[no-any-return]


def _batches(ids: list[list[int]], order: np.ndarray, size: int) -> list[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    out = []
    for s in range(0, len(order), size):
        idx = order[s : s + size]
        a, m = right_pad([ids[i] for i in idx], 0)  # (B, T) each; 0 is MiniLM's [PAD]
        out.append((torch.from_numpy(a), torch.from_numpy(m).to(torch.float32), idx))
    return out


def _encode(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts)]  # [CLS] … [SEP], as MiniLM was trained


def fine_tune(
    texts: list[str], labels: np.ndarray, num_classes: int, cache_dir: Path, cfg: TeacherConfig
) -> tuple[MiniLMClassifier, Tokenizer]:
    """Fine-tune every weight with AdamW, linear warm-up over 10% of the steps, then linear decay."""
    from safetensors.numpy import load

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    tok = Tokenizer.from_str(read_wheel_member(MINILM, cache_dir).decode("utf-8"))
    tok.no_padding()
    tok.enable_truncation(max_length=cfg.max_length)
    net = MiniLMClassifier(load(read_wheel_member(MINILM, cache_dir, MINILM_WEIGHTS)), num_classes, cfg.dropout)
    ids = _encode(tok, texts)
    y = torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.01)
    steps = cfg.epochs * math.ceil(len(ids) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, (steps - s) / steps))
    rng = np.random.RandomState(cfg.seed)
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        net.train()
        batches = _batches(ids, rng.permutation(len(ids)), cfg.batch_size)
        for a, m, idx in tqdm(batches, desc=f"teacher epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress, leave=False):
            loss = nn.functional.cross_entropy(net(a, m), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        log.info("teacher epoch %d done (%.0fs)", epoch + 1, time.perf_counter() - start)
    net.eval()
    return net, tok


@torch.no_grad()
def predict(net: MiniLMClassifier, tok: Tokenizer, texts: list[str], batch_size: int = 128) -> np.ndarray:
    """Class probabilities (N, C), in input order."""
    net.eval()
    ids = _encode(tok, texts)
    out = np.zeros((len(ids), net.head.out_features), dtype=np.float32)
    for a, m, idx in _batches(ids, np.argsort([len(i) for i in ids], kind="stable"), batch_size):
        out[idx] = torch.softmax(net(a, m), dim=-1).numpy()
    return out


def save_soft_labels(path: Path, probs: np.ndarray, train_sha256: str, info: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # float16 keeps the file small (≈ 40 kB); the student does not need more precision.
    arrays: dict[str, np.ndarray] = {k: np.array(v) for k, v in info.items()}
    arrays.update(probs=probs.astype(np.float16), train_sha256=np.array(train_sha256))
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load_soft_labels(path: Path, train_sha256: str) -> np.ndarray:
    """The soft labels in `path`, which must have been made for exactly this training split.

    Raises DataError otherwise: training on quietly would give a model without distillation,
    about 2 points less accurate (docs/MODEL.md), under the same command.
    """
    fix = "run `make teacher` (≈ 11 minutes) to regenerate it, or pass --teacher none to train without distillation"
    if not path.exists():
        raise DataError(f"{path}: teacher soft labels not found; {fix}")
    with np.load(path) as f:
        if str(f["train_sha256"]) != train_sha256:
            made_for = str(f["train_sha256"])[:12]
            raise DataError(f"{path} was made for another training split (sha256 {made_for}…, this one {train_sha256[:12]}…); {fix}")
        return f["probs"].astype(np.float32)  # type: ignore[no-any-return]
