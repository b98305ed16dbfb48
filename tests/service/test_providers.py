from __future__ import annotations

import pytest

from service import providers as prov
from service.errors import ConfigurationError

CPU_ONLY = ["AzureExecutionProvider", prov.CPU]
WITH_CUDA = [prov.CUDA, prov.CPU]
WITH_TRT = [prov.TRT, prov.CUDA, prov.CPU]


def names(asked: prov.ProviderList) -> list[str]:
    return [prov.name(p) for p in asked]


@pytest.mark.parametrize(
    ("device", "available", "expected"),
    [
        ("auto", CPU_ONLY, [prov.CPU]),
        ("auto", WITH_CUDA, [prov.CUDA, prov.CPU]),
        ("auto", WITH_TRT, [prov.CUDA, prov.CPU]),
        ("cpu", WITH_CUDA, [prov.CPU]),
        ("cuda", WITH_CUDA, [prov.CUDA, prov.CPU]),
        ("tensorrt", WITH_TRT, [prov.TRT, prov.CUDA, prov.CPU]),
    ],
)
def test_requested_providers_follow_device(device: str, available: list[str], expected: list[str]) -> None:
    assert names(prov.requested(device, available)) == expected


@pytest.mark.parametrize(("device", "available"), [("cuda", CPU_ONLY), ("tensorrt", WITH_CUDA), ("gpu", WITH_CUDA)])
def test_requested_explicit_device_not_offered_fails_with_fix(device: str, available: list[str]) -> None:
    with pytest.raises(ConfigurationError) as e:
        prov.requested(device, available)
    assert e.value.fix


def test_verify_explicit_cuda_dropped_by_session_fails_never_silent_cpu() -> None:
    with pytest.raises(ConfigurationError, match="session has only"):
        prov.verify("cuda", prov.requested("cuda", WITH_CUDA), [prov.CPU])


def test_verify_auto_cuda_dropped_reports_false_for_cpu_rebuild() -> None:
    assert prov.verify("auto", prov.requested("auto", WITH_CUDA), [prov.CPU]) is False
    assert prov.verify("auto", prov.requested("auto", WITH_CUDA), [prov.CUDA, prov.CPU]) is True


def test_requested_cuda_keeps_tf32_off_unless_asked() -> None:
    first, _ = prov.requested("cuda", WITH_CUDA)
    assert isinstance(first, tuple) and first[0] == prov.CUDA and first[1]["use_tf32"] == "0"
    first, _ = prov.requested("auto", WITH_CUDA, tf32=True)
    assert isinstance(first, tuple) and first[1]["use_tf32"] == "1"
