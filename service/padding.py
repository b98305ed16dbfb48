"""Right-padding a batch of token-id sequences: the one way every part of the project builds
model input (serving, training, evaluation, benchmarks). Numpy only, so serving stays torch-free;
the service's own form (`pad_ids`, ids as int64 bytes) in C (service/_fastpath_batch.c) when the extension is built."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.native import fastpath as _fastpath


def right_pad(seqs: Sequence[Sequence[int] | np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """→ input_ids, attention_mask: (B, T) int64, T = the longest sequence."""
    T = max(len(s) for s in seqs)
    ids = np.full((len(seqs), T), pad_id, dtype=np.int64)  # (B, T)
    mask = np.zeros((len(seqs), T), dtype=np.int64)  # (B, T)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = s
        mask[r, : len(s)] = 1
    return ids, mask


def pad_ids(seqs: list[bytes], pad_id: int, native: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """right_pad for sequences held as int64 bytes (the service's tokens): one C call for the
    batch instead of two numpy slice assignments per text (0.6 → 0.1 µs a text, session 12)."""
    if native and _fastpath is not None:
        ids, mask, T = _fastpath.pad(seqs, pad_id)
        return np.frombuffer(ids, dtype=np.int64).reshape(-1, T), np.frombuffer(mask, dtype=np.int64).reshape(-1, T)  # (B, T) each
    return right_pad([np.frombuffer(s, dtype=np.int64) for s in seqs], pad_id)
