"""The in-process ceiling: the same texts through onnxruntime directly, no HTTP, no Python
serving overhead, in the same topology as the service (W processes × T threads), batched at a
given size with length-sorted batches (the least padding possible)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from service.padding import right_pad


def _batches(artifact: Path, texts: list[str], batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from tokenizers import Tokenizer

    meta = json.loads((artifact / "metadata.json").read_text())
    pad = int(meta["model_config"]["pad_id"])
    tok = Tokenizer.from_file(str(artifact / "tokenizer.json"))
    seqs = sorted((e.ids for e in tok.encode_batch(texts)), key=len)
    return [right_pad(seqs[i : i + batch], pad) for i in range(0, len(seqs), batch)]


def _worker(artifact: str, texts: list[str], batch: int, threads: int, seconds: float) -> int:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(Path(artifact) / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    batches = _batches(Path(artifact), texts, batch)
    done, end, i = 0, time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        ids, mask = batches[i % len(batches)]
        sess.run(None, {"input_ids": ids, "attention_mask": mask})
        done += ids.shape[0]
        i += 1
    return done


def ceiling(artifact: Path, texts: list[str], batch: int, workers: int, threads: int, seconds: float = 5.0) -> float:
    """Sentences per second over all worker processes."""
    with ProcessPoolExecutor(workers) as pool:
        futs = [pool.submit(_worker, str(artifact), texts, max(1, batch), threads, seconds) for _ in range(workers)]
        return sum(f.result() for f in futs) / seconds
