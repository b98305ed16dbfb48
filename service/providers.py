"""Which onnxruntime execution providers to ask for, and whether the session really got them.

Pure functions over provider-name lists, so the whole policy is testable without a GPU:
- `auto`: CUDA when onnxruntime offers it, else CPU with a warning. If CUDA was offered but the
  session came up without it (driver or CUDA libraries missing), the engine rebuilds on CPU and
  says so: a warning log, and the providers in /healthz and metrics.
- `cpu`, `cuda`, `tensorrt`: exactly that; a provider that is missing, or that the session
  dropped, is a start-up error. Never a silent CPU fallback.
"""

from __future__ import annotations

from typing import Any

from service.errors import ConfigurationError

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
ProviderList = list[str | tuple[str, dict[str, Any]]]

GPU_HINT = (
    "install onnxruntime-gpu (pip install '.[serve-gpu]', never together with onnxruntime), make the "
    "GPU visible (docker --gpus / nvidia.com/gpu) and check CUDA/cuDNN libraries, or set SENTIMENT_DEVICE=cpu"
)


def requested(device: str, available: list[str], device_id: int = 0, tf32: bool = False) -> ProviderList:
    """Providers to pass to InferenceSession, most preferred first.

    TF32 is off unless asked for: on an H100 it made the default model 35% faster but moved its
    outputs by up to 8e-4 from the CPU's (5e-6 without it), so a text's answer would depend on
    the machine that computed it.
    """
    cuda: tuple[str, dict[str, Any]] = (CUDA, {"device_id": device_id, "use_tf32": "1" if tf32 else "0"})
    if device == "cpu":
        return [CPU]
    if device == "auto":
        return [cuda, CPU] if CUDA in available else [CPU]
    if device == "cuda":
        if CUDA not in available:
            raise ConfigurationError(f"device=cuda but onnxruntime offers only {available}", GPU_HINT)
        return [cuda, CPU]
    if device == "tensorrt":
        if TRT not in available:
            raise ConfigurationError(f"device=tensorrt but onnxruntime offers only {available}", GPU_HINT)
        return [(TRT, {"device_id": device_id}), cuda, CPU]
    raise ConfigurationError(f"unknown device {device!r}", "use one of auto, cpu, cuda, tensorrt")


def name(p: str | tuple[str, dict[str, Any]]) -> str:
    return p if isinstance(p, str) else p[0]


def verify(device: str, asked: ProviderList, got: list[str]) -> bool:
    """True when the session has the provider that `device` is about.

    For cuda/tensorrt a missing provider raises; for auto it returns False so the caller can
    rebuild on CPU (and log it).
    """
    primary = name(asked[0])
    if primary in got:
        return True
    if device == "auto":
        return False
    raise ConfigurationError(f"device={device}: asked onnxruntime for {primary}, the session has only {got}", GPU_HINT)
