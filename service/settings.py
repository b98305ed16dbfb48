"""Every setting of the service, read once from the environment (prefix `SENTIMENT_`) or a
`.env` file at start-up and passed down as constructor arguments. Nothing else reads the
environment. Labels and max length are not settings: they come from the artifact's metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.cpus import usable_cpus

Device = Literal["auto", "cpu", "cuda", "tensorrt"]
GraphOpt = Literal["disable", "basic", "extended", "all"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMENT_", env_file=".env", extra="ignore")

    # Where and how to listen.
    artifact: Path = Field(Path("artifacts/default"), description="folder with model.onnx, tokenizer.json, metadata.json")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="server processes, each with its own engine and batcher")
    rebalance_connections: bool = Field(
        True,
        description="with several workers, one holding more than its share of connections closes one now and then (Connection: close)",
    )
    pin_workers: bool = Field(
        True, description="with several workers, split the CPUs this process may use between them and pin each to its share"
    )

    # Execution provider and onnxruntime threads.
    device: Device = Field("auto", description="auto: CUDA when it really works, else CPU with a warning")
    intra_op_threads: int = Field(
        0, ge=0, description="0: the usable CPUs (affinity, capped by a cgroup CPU limit) divided by workers (at least 1)"
    )
    inter_op_threads: int = Field(1, ge=1)
    graph_optimization: GraphOpt = "all"
    cuda_tf32: bool = Field(False, description="allow TF32 on CUDA: faster, outputs move by ~1e-3")
    warmup_runs: int = Field(1, ge=0, description="runs of each warm-up shape before ready (0: no warm-up)")

    # Micro-batching.
    max_batch_size: int = Field(64, ge=1, description="texts per engine call (one hop to the engine thread, one or more runs)")
    # On a CPU, onnxruntime's cost per text on our LSTM rises past ~16 texts per run (13,736
    # texts/s at 16, 12,454 at 33, 10,816 at 64 on 2 cores; docs/PERFORMANCE.md, session 11), while
    # each engine call costs the event loop a hop: calls of up to 64 texts in runs of up to 16.
    # A GPU wants one large run.
    max_run_size: int = Field(0, ge=0, description="texts per onnxruntime run; 0: 16 on a CPU, max_batch_size on a GPU")
    max_batch_tokens: int = Field(4096, ge=1, description="padded tokens (longest × count) per engine call")
    max_wait_ms: float = Field(2.0, ge=0, description="how long the first queued text waits for company")
    max_queue: int = Field(2048, ge=1, description="queued texts per worker before answering 429")
    split_cost_tokens: int = Field(
        4,
        ge=0,
        description="cost of one more onnxruntime run in padded tokens: a call's texts form separate batches where padding would exceed it",
    )

    # Requests.
    fast_tokenizer: bool = Field(
        True, description="tokenize plain texts with an exact, verified re-implementation (~4× less CPU); off: all via tokenizers"
    )
    native: bool = Field(
        True, description="per-token work (splitting words, padding, writing the tokens' JSON) in C when built; off: the same in Python"
    )
    compress_responses: bool = Field(
        False,
        description="gzip/deflate answers of 1 KiB or more when the client's Accept-Encoding asks (~280 µs of CPU per 62 kB answer)",
    )
    max_texts_per_request: int = Field(64, ge=1)
    max_text_chars: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1)
    request_timeout_ms: int = Field(10_000, ge=1, description="default deadline of a request")
    max_request_timeout_ms: int = Field(60_000, ge=1, description="largest deadline a request may ask for")
    api_key: SecretStr | None = Field(None, description="when set, /predict, /metrics and the V2 model routes need Bearer auth")

    # Shutdown.
    shutdown_delay_s: float = Field(0.0, ge=0, description="after SIGTERM: report not-ready but keep serving this long")
    drain_timeout_s: float = Field(30.0, gt=0, description="then: finish accepted requests within this time")

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, v: object) -> object:
        # `SENTIMENT_API_KEY=` (as compose passes an unset variable) means no key, not "".
        return None if v is None or (isinstance(v, str) and not v.strip()) else v

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.request_timeout_ms > self.max_request_timeout_ms:
            raise ValueError("request_timeout_ms must not exceed max_request_timeout_ms")
        return self

    def threads_per_worker(self, cpus: int | None = None) -> int:
        """`intra_op_threads`, or else the usable CPUs (affinity and cgroup quota, service/cpus.py)
        split between the workers."""
        if self.intra_op_threads:
            return self.intra_op_threads
        return max(1, (usable_cpus() if cpus is None else cpus) // self.workers)
