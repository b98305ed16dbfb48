"""service/app.py's choices from the settings: how many texts onnxruntime gets per run."""

from __future__ import annotations

from service.app import CPU_RUN_SIZE, run_size
from service.settings import Settings


def test_run_size_auto_is_16_on_cpu_and_one_run_per_call_on_a_gpu() -> None:
    s = Settings(max_batch_size=64, max_run_size=0)
    assert run_size(s, "cpu") == CPU_RUN_SIZE == 16
    assert run_size(s, "cuda") == run_size(s, "tensorrt") == 64


def test_run_size_setting_wins_within_max_batch_size() -> None:
    assert run_size(Settings(max_batch_size=64, max_run_size=8), "cuda") == 8
    assert run_size(Settings(max_batch_size=4, max_run_size=0), "cpu") == 4  # never more than a call holds
    assert run_size(Settings(max_batch_size=4, max_run_size=32), "cpu") == 4
