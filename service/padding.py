"""Right-padding a batch of token-id sequences: the one way every part of the project builds
model input (serving, training, evaluation, benchmarks). Numpy only, so serving stays torch-free."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def right_pad(seqs: Sequence[Sequence[int] | np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """→ input_ids, attention_mask: (B, T) int64, T = the longest sequence."""
    T = max(len(s) for s in seqs)
    ids = np.full((len(seqs), T), pad_id, dtype=np.int64)  # (B, T)
    mask = np.zeros((len(seqs), T), dtype=np.int64)  # (B, T)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = s
        mask[r, : len(s)] = 1
    return ids, mask
