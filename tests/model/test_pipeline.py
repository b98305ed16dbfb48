"""The tiny artifact, trained and exported by the real pipeline, checked from the outside."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model.artifact import OnnxClassifier
from model.evaluate import metrics
from model.export import PARITY_TOLERANCE, ExportError, check_parity, export_onnx, sha256_file
from model.net import ModelConfig, SentimentNet
from model.split import Split


def _meta(artifact: Path) -> dict:  # type: ignore[type-arg]
    return dict(json.loads((artifact / "metadata.json").read_text()))


def _recompute(artifact: Path, split: Split) -> tuple[dict, np.ndarray]:  # type: ignore[type-arg]
    """The artifact's test metrics recomputed from its files alone, and its predicted classes."""
    clf = OnnxClassifier(artifact)
    probs = clf([e.text for e in split.test]).probabilities
    y = np.array([clf.labels.index(e.label) for e in split.test], dtype=np.int64)
    return metrics(probs, y, clf.labels), probs.argmax(1)


def _assert_same_metrics(recorded: dict, recomputed: dict) -> None:  # type: ignore[type-arg]
    # ECE depends on every probability, so a copy of another model's numbers does not pass.
    assert recorded["n"] == recomputed["n"] and recorded["confusion_matrix"] == recomputed["confusion_matrix"]
    for key in ("accuracy", "macro_f1", "ece"):
        assert recorded[key] == pytest.approx(recomputed[key], abs=1e-9), key


def test_artifact_has_the_contract_files_and_metadata(tiny_artifact: Path) -> None:
    meta = _meta(tiny_artifact)
    for key in ("name", "version", "labels", "max_length", "model_config", "data", "metrics", "onnx"):
        assert key in meta
    assert meta["labels"] == ["negative", "positive"]
    assert meta["onnx"]["sha256"] == sha256_file(tiny_artifact / "model.onnx")
    assert set(meta["data"]["sha256"]) == {"train", "validation", "test"}
    for f in ("report.json", "report.md", "training_curves.png", "confusion_matrix.png", "attention_examples.png"):
        assert (tiny_artifact / "report" / f).stat().st_size > 0


def test_artifact_metrics_match_a_recomputation_on_the_test_split(tiny_artifact: Path, tiny_split: Split) -> None:
    meta = _meta(tiny_artifact)
    assert meta["data"]["sha256"] == tiny_split.hashes(), "tests/model/conftest.py's TINY_LIMIT no longer matches the fixture"
    m = meta["metrics"]
    assert m["test"]["n"] == len(tiny_split.test)
    _assert_same_metrics(m["test"], _recompute(tiny_artifact, tiny_split)[0])
    y = [e.label for e in tiny_split.test]
    majority = max(y.count(lab) for lab in meta["labels"]) / len(y)
    assert m["majority_accuracy"] == pytest.approx(majority, abs=1e-12)
    # The baseline's probability columns must line up with the labels: misaligned, it would
    # score below the majority class.
    assert m["baseline_tfidf_lr"]["accuracy"] > majority + 0.1
    # The model learns something (≈ 0.71 against 0.52): a test of the served labels can then tell
    # a label mix-up from a model that gives every text the same answer.
    assert m["test"]["accuracy"] > majority + 0.1


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
    meta = _meta(tiny_artifact)
    assert max(meta["parity_max_abs_diff"].values()) <= PARITY_TOLERANCE


def test_check_parity_fails_when_the_graph_differs_from_the_net(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SentimentNet(ModelConfig(vocab_size=50, num_classes=2, embed_dim=8, hidden_size=8, attention_dim=8)).eval()
    export_onnx(net, tmp_path / "model.onnx")
    assert max(check_parity(net, tmp_path / "model.onnx").values()) <= PARITY_TOLERANCE
    with torch.no_grad():
        net.head.bias[0] += 1e-3  # a change far above the tolerance, far below any accuracy effect
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_parity(net, tmp_path / "model.onnx")


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


def test_int8_artifact_metadata_matches_its_own_file_and_accuracy(tiny_artifact: Path, tiny_split: Split) -> None:
    q = tiny_artifact.with_name("tiny-int8")
    meta, float_meta = _meta(q), _meta(tiny_artifact)
    assert meta["name"] == "tiny-int8"
    assert meta["onnx"]["sha256"] == sha256_file(q / "model.onnx") != float_meta["onnx"]["sha256"]
    assert meta["version"] == meta["onnx"]["sha256"][:12]
    int8_metrics, int8_pred = _recompute(q, tiny_split)
    float_metrics, float_pred = _recompute(tiny_artifact, tiny_split)
    _assert_same_metrics(meta["metrics"]["test"], int8_metrics)
    assert meta["metrics"]["accuracy_delta_vs_float"] == pytest.approx(int8_metrics["accuracy"] - float_metrics["accuracy"], abs=1e-9)
    assert (int8_pred == float_pred).mean() >= 0.95
    assert meta["quantized_from"] == {"name": float_meta["name"], "version": float_meta["version"]}
    assert "parity_max_abs_diff" not in meta  # the float export's parity is not the int8 graph's
    assert not (q / "report").exists()
