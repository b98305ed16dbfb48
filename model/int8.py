"""The int8 artifact: onnxruntime dynamic quantisation of a float artifact, measured on the same
test split, with its accuracy change against the float model recorded (and flagged when large).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from model import artifact as art
from model.evaluate import metrics
from model.export import quantize_int8, sha256_file
from model.split import Split

log = logging.getLogger(__name__)
# An int8 artifact whose test accuracy moves more than this from the float one's is flagged: a
# quantisation that changes accuracy by 2 points changes the model, not just its speed.
INT8_MAX_ACCURACY_DELTA = 0.02


def int8_metrics(float_metrics: dict[str, Any], test: dict[str, Any]) -> dict[str, Any]:
    """The int8 artifact's metrics: its own test metrics and its accuracy change against float,
    with a warning (logged and recorded) when that change exceeds INT8_MAX_ACCURACY_DELTA."""
    delta = test["accuracy"] - float_metrics["test"]["accuracy"]
    warning = None
    if abs(delta) > INT8_MAX_ACCURACY_DELTA:
        warning = (
            f"int8 test accuracy differs from the float model's by {delta:+.4f}, more than ±{INT8_MAX_ACCURACY_DELTA}; "
            "serve the float artifact, or check the int8 one on your own data first"
        )
        log.warning(warning)
    return {
        **float_metrics,
        "test": test,
        "accuracy_delta_vs_float": delta,
        "accuracy_delta_threshold": INT8_MAX_ACCURACY_DELTA,
        "accuracy_delta_warning": warning,
    }


def build_int8(out: Path, q: Path, split: Split) -> dict[str, Any]:
    """The int8 artifact of the float one in `out`, written into `q`; its metadata is written
    once, after its accuracy is measured (never with the float model's numbers in it)."""
    meta = art.read_metadata(out)
    quantize_int8(out / art.MODEL_FILE, q / art.MODEL_FILE)
    shutil.copy(out / art.TOKENIZER_FILE, q / art.TOKENIZER_FILE)
    labels = meta["labels"]
    qsha = sha256_file(q / art.MODEL_FILE)
    # Not the float export's parity: the int8 graph is not held to 1e-5 of PyTorch (it would not
    # pass); what it costs is measured as accuracy instead, below.
    qmeta = {
        **{k: v for k, v in meta.items() if k not in ("parity_max_abs_diff", "metrics")},
        "quantized_from": {"name": meta["name"], "version": meta["version"]},
        "name": meta["name"] + "-int8",
        "version": qsha[:12],
        "onnx": {**meta["onnx"], "sha256": qsha, "quantization": "dynamic int8 (onnxruntime.quantization)"},
    }
    y = np.array([labels.index(e.label) for e in split.test], dtype=np.int64)
    m = metrics(art.OnnxClassifier(q, meta=qmeta)([e.text for e in split.test]).probabilities, y, labels)
    qmeta["metrics"] = int8_metrics(meta["metrics"], m)
    art.write_metadata(q, qmeta)
    log.info("int8 artifact: test accuracy %.4f (delta %+.4f)", m["accuracy"], qmeta["metrics"]["accuracy_delta_vs_float"])
    qm = qmeta["metrics"]
    return {"test": m, **{k: qm[k] for k in ("accuracy_delta_vs_float", "accuracy_delta_threshold", "accuracy_delta_warning")}}
