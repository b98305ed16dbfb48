"""The whole classifier in one file: embeddings → BiLSTM/BiGRU → masked attention pooling → linear.

Shapes: B = batch, T = padded sequence length, E = embedding dim, H = hidden size per direction,
C = number of classes. Batches are right-padded; `mask` is 1 on real tokens, 0 on padding.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import torch
from torch import nn

Cell = Literal["lstm", "gru"]
Attention = Literal["additive", "dot"]


@dataclass
class ModelConfig:
    vocab_size: int
    num_classes: int
    embed_dim: int = 384
    hidden_size: int = 128
    cell: Cell = "lstm"
    attention: Attention = "additive"
    attention_dim: int = 128
    dropout: float = 0.5
    embed_dropout: float = 0.4
    pad_id: int = 0

    def __post_init__(self) -> None:
        # Configs arrive as JSON (--model-config): a typo would otherwise silently pick the other
        # branch in SentimentNet (any cell but "lstm" was a GRU) or fail deep inside torch.
        for name, allowed in (("cell", get_args(Cell)), ("attention", get_args(Attention))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"ModelConfig.{name} is {getattr(self, name)!r}; allowed values: {', '.join(allowed)}")
        for name in ("vocab_size", "num_classes", "embed_dim", "hidden_size", "attention_dim", "pad_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "pad_id" else 1):
                raise ValueError(
                    f"ModelConfig.{name} is {value!r}; it must be a {'non-negative' if name == 'pad_id' else 'positive'} integer"
                )
        for name in ("dropout", "embed_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                raise ValueError(f"ModelConfig.{name} is {value!r}; it must be a number in [0, 1)")
        if self.num_classes < 2:
            raise ValueError(f"ModelConfig.num_classes is {self.num_classes}; a classifier needs at least 2")
        if self.pad_id >= self.vocab_size:
            raise ValueError(f"ModelConfig.pad_id {self.pad_id} is outside the vocabulary of {self.vocab_size} ids")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first `length` steps and leave its padding where it is.

    This is how the backward direction starts at each row's own last token instead of at the
    padding, which makes a text's output independent of what it is batched with. Applying it
    twice is the identity. x: (B, T, D), lengths: (B,)
    """
    T = x.shape[1]
    t = torch.arange(T, device=x.device).unsqueeze(0)  # (1, T)
    L = lengths.unsqueeze(1)  # (B, 1)
    idx = torch.where(t < L, L - 1 - t, t)  # (B, T)
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # (B, T, D)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over real tokens only: padding gets exactly 0, real tokens sum to 1.

    scores: (B, T), mask: (B, T) of 0/1 → (B, T)
    """
    keep = mask > 0
    # Subtract the max over real tokens only, so padding never shifts the numbers.
    neg = torch.finfo(scores.dtype).min
    m = torch.where(keep, scores, torch.full_like(scores, neg)).amax(dim=1, keepdim=True)  # (B, 1)
    # exp only of real tokens' scores: a padding score far above them would overflow to inf, and
    # the gradient through the where() below would be 0 × inf = NaN.
    z = torch.where(keep, scores - m, torch.zeros_like(scores))  # (B, T), ≤ 0 where kept
    e = torch.where(keep, torch.exp(z), torch.zeros_like(scores))  # (B, T)
    return e / e.sum(dim=1, keepdim=True).clamp_min(1e-30)  # (B, T)


class AdditiveAttention(nn.Module):
    """score_t = vᵀ tanh(W h_t + b)  (Bahdanau)."""

    def __init__(self, in_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, T, D) → (B, T)
        return self.v(torch.tanh(self.proj(h))).squeeze(-1)


class DotAttention(nn.Module):
    """score_t = q·k_t / √d with a learned query q and keys k_t = W h_t."""

    def __init__(self, in_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.key = nn.Linear(in_dim, attn_dim)
        self.query = nn.Parameter(torch.randn(attn_dim) / math.sqrt(attn_dim))
        self.scale = 1.0 / math.sqrt(attn_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, T, D) → (B, T)
        return (self.key(h) @ self.query) * self.scale


class SentimentNet(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id, sparse=True)
        self.embed_drop = nn.Dropout(cfg.embed_dropout)
        rnn = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        # Two one-directional RNNs instead of bidirectional=True: the backward one runs over each
        # row reversed within its own length (see reverse_within_length).
        self.fwd = rnn(cfg.embed_dim, cfg.hidden_size, batch_first=True)
        self.bwd = rnn(cfg.embed_dim, cfg.hidden_size, batch_first=True)
        d = 2 * cfg.hidden_size
        attn_cls = AdditiveAttention if cfg.attention == "additive" else DotAttention
        self.attn = attn_cls(d, cfg.attention_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d, cfg.num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """input_ids, attention_mask: (B, T) int64 → logits (B, C), attention (B, T)."""
        mask = attention_mask.to(torch.float32)  # (B, T)
        lengths = attention_mask.sum(dim=1)  # (B,)
        x = self.embed_drop(self.embed(input_ids))  # (B, T, E)
        # Forward direction: right padding comes after every real token, so it cannot leak in.
        h_f, _ = self.fwd(x)  # (B, T, H)
        h_b, _ = self.bwd(reverse_within_length(x, lengths))  # (B, T, H)
        h_b = reverse_within_length(h_b, lengths)  # (B, T, H), aligned with h_f again
        h = torch.cat([h_f, h_b], dim=-1)  # (B, T, 2H)
        weights = masked_softmax(self.attn(h), mask)  # (B, T)
        pooled = torch.bmm(weights.unsqueeze(1), h).squeeze(1)  # (B, 2H)
        return self.head(self.drop(pooled)), weights  # (B, C), (B, T)


class ExportWrapper(nn.Module):
    """What goes into ONNX: probabilities instead of logits, int64 inputs, named outputs."""

    def __init__(self, net: SentimentNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, attention = self.net(input_ids, attention_mask)  # (B, C), (B, T)
        return torch.softmax(logits, dim=-1), attention
