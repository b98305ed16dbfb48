"""model/teacher.py: the MiniLM teacher on its real weights (a few steps), and its soft-label files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import teacher as tch
from model.pipeline import BuildOptions, load_examples
from model.split import grouped_split, hash_examples

TEXTS = ["a warm, funny, lovely film", "dull and far too long", "a triumph", "a mess"] * 4


def test_teacher_fine_tune_fits_a_few_texts_and_predicts_probabilities() -> None:
    y = np.array([1, 0, 1, 0] * 4)
    cfg = tch.TeacherConfig(epochs=3, lr=1e-4, batch_size=8, progress=False)
    net, tok = tch.fine_tune(TEXTS, y, 2, Path(".cache"), cfg)
    probs = tch.predict(net, tok, TEXTS)
    assert probs.shape == (16, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == y).mean() == 1.0


def test_soft_labels_used_only_for_the_split_they_were_made_for(tmp_path: Path) -> None:
    path = tmp_path / "soft.npz"
    probs = np.array([[0.2, 0.8], [0.9, 0.1]], dtype=np.float32)
    tch.save_soft_labels(path, probs, "abc", {"test_accuracy": 0.9})
    loaded = tch.load_soft_labels(path, "abc")
    assert loaded is not None and np.allclose(loaded, probs, atol=1e-3)
    assert tch.load_soft_labels(path, "another split") is None
    assert tch.load_soft_labels(tmp_path / "missing.npz", "abc") is None


def test_shipped_soft_labels_fit_the_default_training_split() -> None:
    train = grouped_split(load_examples(BuildOptions())[0]).train
    probs = tch.load_soft_labels(tch.DEFAULT_SOFT_LABELS, hash_examples(train))
    assert probs is not None, "model/assets soft labels are stale: run `python -m model teacher`"
    assert probs.shape == (len(train), 2)
