"""A build replaces its output folders only when it succeeded, and never a folder that is not an artifact."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model import pipeline
from model.artifact import ArtifactError, build_lock, publish
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


def _left(folder: Path) -> list[Path]:
    """What is in `folder`, but the builds' lock files (`.<name>.lock`: they stay, unlocked)."""
    return [p for p in folder.iterdir() if not p.name.endswith(".lock")]


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
    assert {p.name: _digests(p) for p in _left(tmp_path)} == before  # no staging folder left either


def test_build_failing_evaluation_leaves_no_metadata_without_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(pipeline, "evaluate_artifact", broken)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        build(_small(tmp_path / "new"))
    assert _left(tmp_path) == []


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


def test_build_lock_refuses_a_second_build_to_the_same_out(tmp_path: Path) -> None:
    out = tmp_path / "artifacts" / "default"
    with build_lock([out]):
        with pytest.raises(ArtifactError, match=rf"another build \(pid {os.getpid()}\) is writing .*default; wait for it"):
            build(_small(out))  # refused before it loads any data
        with build_lock([tmp_path / "artifacts" / "other"]):  # another --out is free
            pass
    with build_lock([out]):  # released with the first
        pass


def test_build_lock_sweeps_what_killed_builds_left(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = int(gone.stdout)  # a process that has exited
    stale = [tmp_path / f".default.tmp-{dead}", tmp_path / f".default.old-{dead}"]
    live = [tmp_path / f".default.tmp-{os.getpid()}", tmp_path / f".other.tmp-{dead}"]  # running; another --out
    for d in stale + live:
        (d / "model.onnx").parent.mkdir(parents=True)
        (d / "model.onnx").write_bytes(b"x")
    with build_lock([tmp_path / "default"]):
        assert not any(d.exists() for d in stale)
        assert all(d.exists() for d in live)


def test_build_lock_puts_back_a_previous_artifact_a_killed_build_left_aside(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    aside = tmp_path / f".default.old-{int(gone.stdout)}"  # killed after moving it aside, before moving its own in
    aside.mkdir()
    (aside / "metadata.json").write_text("{}")
    with build_lock([tmp_path / "default"]):
        assert (tmp_path / "default" / "metadata.json").read_text() == "{}" and not aside.exists()
