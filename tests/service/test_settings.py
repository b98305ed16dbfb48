from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_settings_read_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("SENTIMENT_DEVICE", "cpu")
    s = Settings()
    assert s.max_batch_size == 7 and s.device == "cpu"


def test_settings_empty_api_key_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_API_KEY", "")
    assert Settings().api_key is None
    monkeypatch.setenv("SENTIMENT_API_KEY", "k")
    key = Settings().api_key
    assert key is not None and key.get_secret_value() == "k"


def test_settings_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_DEVICE", "gpu")
    with pytest.raises(ValidationError):
        Settings()


def test_settings_threads_split_between_workers() -> None:
    assert Settings(workers=2, intra_op_threads=0).threads_per_worker(cpus=4) == 2
    assert Settings(intra_op_threads=3).threads_per_worker() == 3


def test_settings_every_one_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [n for n in Settings.model_fields if f"`SENTIMENT_{n.upper()}`" not in readme]
    assert not missing, f"README's settings table lacks {missing}"
