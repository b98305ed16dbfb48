"""The onnxruntime session: provider choice, threads, warm-up and `run(ids, mask)`.

Knows nothing of HTTP or batching. Not thread-safe by design: the batcher makes one call at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from service import providers as prov
from service.errors import ConfigurationError, InferenceFailed

log = logging.getLogger(__name__)

GRAPH_OPT = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
SessionFactory = Callable[..., Any]  # ort.InferenceSession or a stand-in with the same signature


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    cuda_tf32: bool = False


class Engine:
    def __init__(
        self,
        model_path: Path,
        cfg: EngineConfig,
        available: list[str] | None = None,
        session_factory: SessionFactory = ort.InferenceSession,
    ) -> None:
        if not model_path.exists():
            raise ConfigurationError(
                f"no model at {model_path}",
                "build one with `make artifact` or point SENTIMENT_ARTIFACT at an artifact folder",
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cfg.intra_op_threads
        opts.inter_op_num_threads = cfg.inter_op_threads
        opts.graph_optimization_level = GRAPH_OPT[cfg.graph_optimization]
        # Without this, idle intra-op threads spin for a while after each call and steal the CPU
        # the event loop needs to parse the next requests.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers() if available is None else available
        asked = prov.requested(cfg.device, available, tf32=cfg.cuda_tf32)
        sess = session_factory(str(model_path), opts, providers=asked)
        if not prov.verify(cfg.device, asked, sess.get_providers()):
            log.warning(
                "CUDA is offered by onnxruntime but the session could not use it; serving on CPU",
                extra={"providers": sess.get_providers()},
            )
            sess = session_factory(str(model_path), opts, providers=[prov.CPU])
        elif prov.CUDA not in sess.get_providers() and cfg.device == "auto":
            log.warning("no CUDA execution provider in onnxruntime (%s); serving on CPU", available)
        self.sess = sess
        self.providers: list[str] = list(sess.get_providers())
        log.info("onnxruntime session ready", extra={"providers": self.providers, "threads": cfg.intra_op_threads})

    @property
    def device(self) -> str:
        return {prov.TRT: "tensorrt", prov.CUDA: "cuda"}.get(self.providers[0], "cpu")

    def run(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ids, mask: (B, T) int64 → probabilities (B, C) float32, attention (B, T) float32."""
        try:
            probs, attn = self.sess.run(["probabilities", "attention"], {"input_ids": ids, "attention_mask": mask})
        except Exception as e:  # onnxruntime raises its own exception types, all to be reported alike
            raise InferenceFailed(
                f"the model failed on a batch of shape {ids.shape}: {e}",
                "retry; report it with the request_id if it persists",
            ) from e
        return probs, attn

    def warmup(self, batch_sizes: list[int], lengths: list[int], pad_id: int, runs: int = 1, stop: threading.Event | None = None) -> float:
        """Run every (batch, length) shape so the first requests don't pay for allocation.

        Returns early once `stop` is set: a signal during a long warm-up (a large model on CPU, a
        TensorRT build) must not hold up the exit until the warm-up is over, as the thread that
        runs it cannot be cancelled."""
        t = time.perf_counter()
        for b in [b for b in batch_sizes for _ in range(runs)]:
            for n in lengths:
                if stop is not None and stop.is_set():
                    return time.perf_counter() - t
                ids = np.full((b, n), pad_id, dtype=np.int64)  # (B, T)
                ids[:, 0] = pad_id + 1
                mask = np.ones((b, n), dtype=np.int64)  # (B, T)
                self.run(ids, mask)
        return time.perf_counter() - t
