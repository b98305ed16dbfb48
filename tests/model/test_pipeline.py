"""The tiny artifact, trained and exported by the real pipeline, checked from the outside."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.artifact import OnnxClassifier
from model.export import PARITY_TOLERANCE, sha256_file


def test_artifact_has_the_contract_files_and_metadata(tiny_artifact: Path) -> None:
    meta = json.loads((tiny_artifact / "metadata.json").read_text())
    for key in ("name", "version", "labels", "max_length", "model_config", "data", "metrics", "onnx"):
        assert key in meta
    assert meta["labels"] == ["negative", "positive"]
    assert meta["onnx"]["sha256"] == sha256_file(tiny_artifact / "model.onnx")
    assert set(meta["data"]["sha256"]) == {"train", "validation", "test"}
    assert 0.0 <= meta["metrics"]["test"]["accuracy"] <= 1.0
    for f in ("report.json", "report.md", "training_curves.png", "confusion_matrix.png", "attention_examples.png"):
        assert (tiny_artifact / "report" / f).stat().st_size > 0


def test_onnx_signature_has_dynamic_batch_and_seq(tiny_artifact: Path) -> None:
    sess = ort.InferenceSession(str(tiny_artifact / "model.onnx"), providers=["CPUExecutionProvider"])
    ins = {i.name: (i.type, i.shape) for i in sess.get_inputs()}
    outs = {o.name: (o.type, o.shape) for o in sess.get_outputs()}
    assert ins == {
        "input_ids": ("tensor(int64)", ["batch", "seq"]),
        "attention_mask": ("tensor(int64)", ["batch", "seq"]),
    }
    assert outs == {"probabilities": ("tensor(float)", ["batch", 2]), "attention": ("tensor(float)", ["batch", "seq"])}


def test_export_parity_recorded_within_tolerance(tiny_artifact: Path) -> None:
    meta = json.loads((tiny_artifact / "metadata.json").read_text())
    assert max(meta["parity_max_abs_diff"].values()) <= PARITY_TOLERANCE


def test_onnx_prediction_independent_of_batch_companions(tiny_artifact: Path) -> None:
    clf = OnnxClassifier(tiny_artifact)
    short = "Fine."
    longer = ["An overlong, meandering and ultimately pointless exercise in style over substance.", "Wonderful!"]
    alone = clf([short], batch_size=1)
    together = clf([short, *longer], batch_size=8)
    # batch_size=8 puts all three in one padded batch; the short text is padded to the longest.
    assert np.abs(alone.probabilities[0] - together.probabilities[0]).max() <= 1e-5
    assert np.abs(alone.attention[0] - together.attention[0]).max() <= 1e-5
    assert abs(float(together.attention[0].sum()) - 1.0) <= 1e-5


def test_int8_artifact_records_its_accuracy_delta(tiny_artifact: Path) -> None:
    q = tiny_artifact.with_name("tiny-int8")
    meta = json.loads((q / "metadata.json").read_text())
    assert meta["name"] == "tiny-int8"
    delta = meta["metrics"]["accuracy_delta_vs_float"]
    assert (
        delta
        == meta["metrics"]["test"]["accuracy"] - json.loads((tiny_artifact / "metadata.json").read_text())["metrics"]["test"]["accuracy"]
    )
    assert OnnxClassifier(q)(["good"]).probabilities.shape == (1, 2)
    float_meta = json.loads((tiny_artifact / "metadata.json").read_text())
    assert meta["quantized_from"] == {"name": float_meta["name"], "version": float_meta["version"]}
    assert "parity_max_abs_diff" not in meta  # the float export's parity is not the int8 graph's
