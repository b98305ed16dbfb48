from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
import pytest

from service import providers as prov
from service.engine import Engine, EngineConfig
from service.errors import ConfigurationError, InferenceFailed


class CudaDroppingSession:
    """A real CPU session that, like onnxruntime on a machine whose CUDA libraries fail to load,
    was asked for CUDA and came up without it."""

    calls: ClassVar[list[list[str]]] = []

    def __init__(self, path: str, opts: ort.SessionOptions, providers: list[Any]) -> None:
        type(self).calls.append([prov.name(p) for p in providers])
        self.inner = ort.InferenceSession(path, opts, providers=[prov.CPU])

    def get_providers(self) -> list[str]:
        return list(self.inner.get_providers())

    def run(self, *a: Any) -> Any:
        return self.inner.run(*a)


def test_engine_runs_the_artifact_on_cpu(tiny_artifact: Path) -> None:
    e = Engine(tiny_artifact / "model.onnx", EngineConfig(device="cpu"))
    ids = np.array([[5, 6, 7, 0]], dtype=np.int64)
    mask = np.array([[1, 1, 1, 0]], dtype=np.int64)
    probs, attn = e.run(ids, mask)
    assert probs.shape == (1, 2) and attn.shape == (1, 4)
    assert e.providers == [prov.CPU] and e.device == "cpu"


def test_engine_auto_with_cuda_offered_but_unusable_rebuilds_on_cpu_and_warns(
    tiny_artifact: Path, caplog: pytest.LogCaptureFixture
) -> None:
    CudaDroppingSession.calls = []
    with caplog.at_level(logging.WARNING):
        e = Engine(
            tiny_artifact / "model.onnx",
            EngineConfig(device="auto"),
            available=[prov.CUDA, prov.CPU],
            session_factory=CudaDroppingSession,
        )
    assert CudaDroppingSession.calls == [[prov.CUDA, prov.CPU], [prov.CPU]]
    assert e.providers == [prov.CPU]
    assert "could not use it" in caplog.text


def test_engine_explicit_cuda_unusable_fails_start(tiny_artifact: Path) -> None:
    with pytest.raises(ConfigurationError, match="session has only"):
        Engine(
            tiny_artifact / "model.onnx",
            EngineConfig(device="cuda"),
            available=[prov.CUDA, prov.CPU],
            session_factory=CudaDroppingSession,
        )


def test_engine_explicit_cuda_not_installed_fails_start_on_this_machine(tiny_artifact: Path) -> None:
    if prov.CUDA in ort.get_available_providers():
        pytest.skip("this machine has onnxruntime-gpu")
    with pytest.raises(ConfigurationError, match="device=cuda"):
        Engine(tiny_artifact / "model.onnx", EngineConfig(device="cuda"))


def test_engine_missing_model_fails_with_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as e:
        Engine(tmp_path / "model.onnx", EngineConfig())
    assert "SENTIMENT_ARTIFACT" in e.value.fix


def test_engine_bad_input_raises_inference_failed(tiny_artifact: Path) -> None:
    e = Engine(tiny_artifact / "model.onnx", EngineConfig(device="cpu"))
    with pytest.raises(InferenceFailed):
        e.run(np.zeros((1, 3), dtype=np.int32), np.ones((1, 3), dtype=np.int64))


class CountingSession:
    """A real session that counts its runs and sets `stop` during run number `stop_at`."""

    def __init__(self, inner: Any, stop: threading.Event, stop_at: int) -> None:
        self.inner, self.stop, self.stop_at, self.runs = inner, stop, stop_at, 0

    def run(self, *a: Any) -> Any:
        self.runs += 1
        if self.runs == self.stop_at:
            self.stop.set()
        return self.inner.run(*a)


def test_engine_warmup_stops_once_asked(tiny_artifact: Path) -> None:
    e = Engine(tiny_artifact / "model.onnx", EngineConfig(device="cpu"))
    stop = threading.Event()
    counting = CountingSession(e.sess, stop, stop_at=3)
    e.sess = counting
    e.warmup([1, 8], [8, 32], pad_id=0, runs=1000, stop=stop)  # 4,000 runs if it never stopped
    assert counting.runs == 3
    e.warmup([1], [8], pad_id=0, runs=5)  # no event: every run
    assert counting.runs == 8
