from __future__ import annotations

import torch

from model.data import Example
from model.net import ModelConfig
from model.tokenizer import pad_id, train_wordpiece
from model.train import TrainConfig, encode, train

TEXTS = [("great fun", "pos"), ("awful mess", "neg"), ("lovely and warm", "pos"), ("dull, boring", "neg")] * 30


def _run(seed: int) -> dict[str, torch.Tensor]:
    ex = [Example(t, lab, str(i)) for i, (t, lab) in enumerate(TEXTS)]
    tok = train_wordpiece([e.text for e in ex], 100, 16)
    data = encode(tok, ex, ["neg", "pos"])
    cfg = ModelConfig(vocab_size=tok.get_vocab_size(), num_classes=2, embed_dim=8, hidden_size=8, attention_dim=8, pad_id=pad_id(tok))
    net, hist = train(cfg, TrainConfig(epochs=3, batch_size=8, seed=seed, progress=False, threads=1), data, data)
    assert len(hist.epochs) >= 1
    return net.state_dict()


def test_train_same_seed_gives_identical_weights() -> None:
    a, b = _run(1), _run(1)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_learns_a_separable_toy_task() -> None:
    ex = [Example(t, lab, str(i)) for i, (t, lab) in enumerate(TEXTS)]
    tok = train_wordpiece([e.text for e in ex], 100, 16)
    data = encode(tok, ex, ["neg", "pos"])
    cfg = ModelConfig(vocab_size=tok.get_vocab_size(), num_classes=2, embed_dim=8, hidden_size=8, attention_dim=8, pad_id=pad_id(tok))
    _, hist = train(cfg, TrainConfig(epochs=8, batch_size=8, lr=1e-2, progress=False, threads=1), data, data)
    assert max(h["val_accuracy"] for h in hist.epochs) == 1.0


def test_train_with_soft_labels_follows_the_teacher() -> None:
    # A "teacher" that says the opposite of every label: with alpha = 1 the student learns the
    # teacher, so against the true labels its accuracy collapses instead of reaching 1.0.
    import numpy as np

    ex = [Example(t, lab, str(i)) for i, (t, lab) in enumerate(TEXTS)]
    tok = train_wordpiece([e.text for e in ex], 100, 16)
    data = encode(tok, ex, ["neg", "pos"])
    cfg = ModelConfig(vocab_size=tok.get_vocab_size(), num_classes=2, embed_dim=8, hidden_size=8, attention_dim=8, pad_id=pad_id(tok))
    flipped = np.eye(2, dtype=np.float32)[1 - data.labels]  # (N, C)
    tcfg = TrainConfig(epochs=8, batch_size=8, lr=1e-2, progress=False, threads=1, distill_alpha=1.0)
    _, hist = train(cfg, tcfg, data, data, soft_labels=flipped)
    assert hist.epochs[-1]["val_accuracy"] == 0.0
