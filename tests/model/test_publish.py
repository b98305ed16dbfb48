"""A build replaces its output folders only when it succeeded, and never a folder that is not an artifact."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from model import pipeline
from model.artifact import ArtifactError, publish
from model.export import ExportError, export_onnx
from model.net import SentimentNet
from model.pipeline import BuildOptions, build
from model.train import TrainConfig
from tests.conftest import CACHE


def _small(out: Path) -> BuildOptions:
    """≈ 1 s: enough data for three non-empty splits, a minute model, one epoch."""
    return BuildOptions(
        out=out,
        name="small",
        embeddings="none",
        vocab_size=500,
        max_length=32,
        limit=1500,
        quantize=True,
        cache_dir=CACHE,
        model={"embed_dim": 8, "hidden_size": 8, "attention_dim": 8},
        train=TrainConfig(epochs=1, progress=False),
    )


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_failing_parity_leaves_the_previous_artifact_intact(
    tiny_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prev = tmp_path / "prev"
    shutil.copytree(tiny_artifact, prev)
    shutil.copytree(tiny_artifact.with_name("tiny-int8"), tmp_path / "prev-int8")
    before = {p.name: _digests(p) for p in tmp_path.iterdir()}

    def export_then_drift(net: SentimentNet, path: Path) -> None:
        export_onnx(net, path)
        net.head.bias.data[0] += 1e-2  # the graph no longer computes what the net does

    monkeypatch.setattr(pipeline, "export_onnx", export_then_drift)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        build(_small(prev))
    assert {p.name: _digests(p) for p in tmp_path.iterdir()} == before  # no staging folder left either


def test_build_failing_evaluation_leaves_no_metadata_without_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(pipeline, "evaluate_artifact", broken)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        build(_small(tmp_path / "new"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["folder", "int8 sibling", "current directory"])
def test_build_refuses_to_replace_a_folder_that_is_not_an_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    out = tmp_path / "art"
    notes = (out.with_name("art-int8") if where == "int8 sibling" else out) / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("keep me")
    if where == "current directory":
        monkeypatch.chdir(out)
        out = Path(".")
    with pytest.raises(ArtifactError, match="current directory" if where == "current directory" else "not an artifact"):
        build(_small(out))
    assert notes.read_text() == "keep me"


def test_publish_puts_both_previous_artifacts_back_when_a_move_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = []
    for name in ("art", "art-int8"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metadata.json").write_text(f"old {name}")
        staged = tmp_path / f".{name}.tmp"
        staged.mkdir()
        (staged / "metadata.json").write_text(f"new {name}")
        pairs.append((staged, tmp_path / name))
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self.name == ".art-int8.tmp":  # the float one is already in place by now
            raise OSError("disk gone")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(ArtifactError, match="the previous one is back"):
        publish(pairs)
    assert [(tmp_path / n / "metadata.json").read_text() for n in ("art", "art-int8")] == ["old art", "old art-int8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".art-int8.tmp", "art", "art-int8"]  # the caller removes its staging
