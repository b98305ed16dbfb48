"""`python -m bench.gpu_check --artifact DIR`: on a machine with a GPU and onnxruntime-gpu, check
what the tests can only simulate — that device=auto and device=cuda really get CUDA, that CUDA
and CPU agree on an artifact, and how fast each is. Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.engine import Engine, EngineConfig


def batches(vocab: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for b, t in [(1, 7), (8, 31), (64, 40), (64, 128)]:
        lengths = rng.integers(1, t + 1, size=b)
        lengths[0] = t
        ids = rng.integers(1, vocab, size=(b, t)).astype(np.int64)
        mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.int64)
        out.append((ids * mask, mask))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifact", type=Path, required=True)
    a = ap.parse_args()
    meta = json.loads((a.artifact / "metadata.json").read_text())
    model = a.artifact / "model.onnx"
    report: dict[str, object] = {"available": ort.get_available_providers(), "onnxruntime": ort.__version__}
    cpu = Engine(model, EngineConfig(device="cpu"))
    engines = {"auto": Engine(model, EngineConfig(device="auto")), "cuda": Engine(model, EngineConfig(device="cuda"))}
    report["providers"] = {k: e.providers for k, e in engines.items()}
    diffs = []
    for ids, mask in batches(int(meta["model_config"]["vocab_size"])):
        p0, a0 = cpu.run(ids, mask)
        p1, a1 = engines["cuda"].run(ids, mask)
        diffs.append(max(float(np.abs(p0 - p1).max()), float(np.abs(a0 - a1).max())))
    report["max_abs_diff_cuda_vs_cpu"] = max(diffs)
    ids, mask = batches(int(meta["model_config"]["vocab_size"]))[2]
    for name, e in (("cpu", cpu), ("cuda", engines["cuda"])):
        for _ in range(5):
            e.run(ids, mask)
        t = time.perf_counter()
        for _ in range(50):
            e.run(ids, mask)
        report[f"{name}_texts_per_s_batch64_len40"] = round(50 * ids.shape[0] / (time.perf_counter() - t))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
