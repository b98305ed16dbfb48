"""model/teacher.py: the MiniLM teacher on its real weights (a few steps), and its soft-label files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model import pipeline
from model import teacher as tch
from model.data import DataError
from model.pipeline import BuildOptions, load_examples
from model.split import grouped_split, hash_examples
from tests.conftest import CACHE

TEXTS = ["a warm, funny, lovely film", "dull and far too long", "a triumph", "a mess"] * 4


def test_teacher_fine_tune_fits_a_few_texts_and_predicts_probabilities() -> None:
    y = np.array([1, 0, 1, 0] * 4)
    cfg = tch.TeacherConfig(epochs=3, lr=1e-4, batch_size=8, progress=False)
    net, tok = tch.fine_tune(TEXTS, y, 2, Path(".cache"), cfg)
    probs = tch.predict(net, tok, TEXTS)
    assert probs.shape == (16, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == y).mean() == 1.0


def test_soft_labels_for_another_split_or_missing_fail_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "soft.npz"
    probs = np.array([[0.2, 0.8], [0.9, 0.1]], dtype=np.float32)
    tch.save_soft_labels(path, probs, "abc", {"test_accuracy": 0.9})
    assert np.allclose(tch.load_soft_labels(path, "abc"), probs, atol=1e-3)
    with pytest.raises(DataError, match=r"made for another training split.*make teacher.*--teacher none"):
        tch.load_soft_labels(path, "another split")
    with pytest.raises(DataError, match=r"not found.*make teacher.*--teacher none"):
        tch.load_soft_labels(tmp_path / "missing.npz", "abc")


def test_build_default_corpus_without_its_soft_labels_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object) -> None:
        raise AssertionError("training started without the teacher's soft labels")

    monkeypatch.setattr(pipeline, "DEFAULT_SOFT_LABELS", tmp_path / "missing.npz")
    monkeypatch.setattr(pipeline, "train", must_not_run)
    with pytest.raises(DataError, match="teacher soft labels not found"):
        pipeline.build(BuildOptions(out=tmp_path / "a", embeddings="none", cache_dir=CACHE))


def test_shipped_soft_labels_fit_the_default_training_split() -> None:
    train = grouped_split(load_examples(BuildOptions(cache_dir=CACHE))[0]).train
    probs = tch.load_soft_labels(tch.DEFAULT_SOFT_LABELS, hash_examples(train))
    assert probs.shape == (len(train), 2), "model/assets soft labels are stale: run `make teacher`"
