"""Training loop: seeded and deterministic on CPU, early stopping on validation accuracy."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from tqdm import tqdm

from model.data import Example
from model.net import ModelConfig, SentimentNet
from service.padding import right_pad

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    embed_lr: float = 1e-4  # pretrained embeddings move slower than the freshly initialised rest
    weight_decay: float = 1e-4
    patience: int = 3  # epochs without a better validation accuracy before stopping
    seed: int = 1
    threads: int = 2
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    distill_alpha: float = 0.9  # weight of the teacher's soft labels in the loss, when there are any
    max_seconds: float | None = None  # a wall-clock budget; training stops after the epoch
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Encoded:
    ids: list[list[int]]
    labels: np.ndarray  # (N,) int64
    pad_id: int


@dataclass
class History:
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def encode(tok: Tokenizer, examples: list[Example], labels: list[str]) -> Encoded:
    index = {lab: i for i, lab in enumerate(labels)}
    encs = tok.encode_batch([e.text for e in examples])
    # A text the normaliser strips to nothing still needs one token to attend to.
    unk = tok.token_to_id("[UNK]") or 0
    ids = [enc.ids or [unk] for enc in encs]
    labels_ = np.array([index[e.label] for e in examples], dtype=np.int64)
    return Encoded(ids=ids, labels=labels_, pad_id=tok.token_to_id("[PAD]") or 0)


def batches(
    data: Encoded, batch_size: int, gen: torch.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]]:
    """Length-bucketed batches: shuffle, sort within windows of 50 batches, shuffle the batches.

    Yields input_ids (B, T), attention_mask (B, T), labels (B,), and the example indices.
    """
    n = len(data.ids)
    if gen is None:
        order = np.arange(n)
    else:
        order = torch.randperm(n, generator=gen).numpy()
        window = batch_size * 50
        chunks = [order[i : i + window] for i in range(0, n, window)]
        order = np.concatenate([c[np.argsort([len(data.ids[j]) for j in c], kind="stable")] for c in chunks])
    groups = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if gen is not None:
        groups = [groups[i] for i in torch.randperm(len(groups), generator=gen).tolist()]
    for g in groups:
        ids, mask = right_pad([data.ids[j] for j in g], data.pad_id)  # (B, T) each
        yield torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(data.labels[g]), g


@torch.no_grad()
def predict(net: SentimentNet, data: Encoded, batch_size: int = 256) -> tuple[np.ndarray, list[np.ndarray]]:
    """Probabilities (N, C) and each example's attention over its own tokens, in input order."""
    net.eval()
    probs = np.zeros((len(data.ids), net.cfg.num_classes), dtype=np.float32)
    attn: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(data.ids)
    for ids, mask, _, idx in batches(data, batch_size, None):
        logits, w = net(ids, mask)  # (B, C), (B, T)
        probs[idx] = torch.softmax(logits, dim=-1).numpy()
        for row, j in enumerate(idx):
            attn[j] = w[row, : len(data.ids[j])].numpy()
    return probs, attn


def accuracy(net: SentimentNet, data: Encoded) -> float:
    probs, _ = predict(net, data)
    return float((probs.argmax(1) == data.labels).mean())


def train(
    cfg: ModelConfig,
    tcfg: TrainConfig,
    train_data: Encoded,
    val_data: Encoded,
    embeddings: np.ndarray | None = None,
    soft_labels: np.ndarray | None = None,
) -> tuple[SentimentNet, History]:
    """soft_labels: a teacher's probabilities (N, C) for train_data, in its order (distillation:
    the loss is (1 − α)·CE(labels) + α·CE(teacher), α = distill_alpha)."""
    torch.manual_seed(tcfg.seed)
    torch.set_num_threads(tcfg.threads)
    torch.use_deterministic_algorithms(True)
    net = SentimentNet(cfg)
    if embeddings is not None:
        net.embed.weight.data.copy_(torch.from_numpy(embeddings))
        net.embed.weight.data[cfg.pad_id] = 0.0
    # The embedding table is most of the parameters (30522×384 with MiniLM) but a batch touches
    # a few hundred rows: sparse gradients + SparseAdam update only those rows, 3.5× faster per
    # epoch than a dense AdamW step over the whole table (10 s against 35 s, docs/MODEL.md).
    rest = [p for n, p in net.named_parameters() if not n.startswith("embed.")]
    opt = torch.optim.AdamW(rest, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    embed_opt = torch.optim.SparseAdam(list(net.embed.parameters()), lr=tcfg.embed_lr) if tcfg.embed_lr > 0 else None
    net.embed.weight.requires_grad_(embed_opt is not None)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=tcfg.label_smoothing)
    gen = torch.Generator().manual_seed(tcfg.seed)
    soft = torch.from_numpy(soft_labels.astype(np.float32)) if soft_labels is not None else None  # (N, C)
    hist, best, best_state, stale = History(), -1.0, copy.deepcopy(net.state_dict()), 0
    start = time.perf_counter()
    for epoch in range(1, tcfg.epochs + 1):
        net.train()
        total, seen, correct = 0.0, 0, 0
        steps = (len(train_data.ids) + tcfg.batch_size - 1) // tcfg.batch_size
        bar = tqdm(
            batches(train_data, tcfg.batch_size, gen),
            total=steps,
            desc=f"epoch {epoch}/{tcfg.epochs}",
            disable=not tcfg.progress,
            leave=False,
        )
        for ids, mask, y, idx in bar:
            logits, _ = net(ids, mask)  # (B, C)
            loss = loss_fn(logits, y)
            if soft is not None:
                teacher = soft[torch.from_numpy(np.asarray(idx))]  # (B, C)
                soft_ce = -(teacher * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
                loss = (1 - tcfg.distill_alpha) * loss + tcfg.distill_alpha * soft_ce
            opt.zero_grad()
            if embed_opt is not None:
                embed_opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(rest, tcfg.grad_clip)
            opt.step()
            if embed_opt is not None:
                embed_opt.step()
            total += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        # Training accuracy is the running one (with dropout on): evaluating the whole training
        # set again each epoch would cost a sixth of the epoch.
        train_acc, val_acc = correct / seen, accuracy(net, val_data)
        row = {"epoch": epoch, "loss": total / seen, "train_accuracy": train_acc, "val_accuracy": val_acc}
        row["seconds"] = time.perf_counter() - start
        hist.epochs.append(row)
        log.info(
            "epoch %d loss %.4f train_acc %.4f val_acc %.4f (%.0fs)",
            epoch,
            row["loss"],
            train_acc,
            val_acc,
            row["seconds"],
        )
        if val_acc > best:
            best, best_state, stale, hist.best_epoch = val_acc, copy.deepcopy(net.state_dict()), 0, epoch
        else:
            stale += 1
            if stale >= tcfg.patience:
                log.info("early stop: no better validation accuracy for %d epochs", stale)
                break
        if tcfg.max_seconds is not None and row["seconds"] > tcfg.max_seconds:
            log.info("time budget of %.0fs reached", tcfg.max_seconds)
            break
    hist.seconds = time.perf_counter() - start
    net.load_state_dict(best_state)
    net.eval()
    return net, hist
