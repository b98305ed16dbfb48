"""model/artifact.py's OnnxClassifier reads an artifact as its metadata describes it, or says why not;
model/int8.py flags an int8 artifact whose accuracy moved; model/baseline.py keeps label columns."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.artifact import ArtifactError, OnnxClassifier
from model.baseline import tfidf_lr_probs
from model.int8 import INT8_MAX_ACCURACY_DELTA, int8_metrics


def _copy_with(tiny_artifact: Path, dest: Path, **changes: Any) -> Path:
    shutil.copytree(tiny_artifact, dest, ignore=shutil.ignore_patterns("report"))
    meta = json.loads((dest / "metadata.json").read_text())
    (dest / "metadata.json").write_text(json.dumps({**meta, **changes}))
    return dest


def test_onnx_classifier_truncates_at_the_metadata_max_length(tiny_artifact: Path, tmp_path: Path) -> None:
    text = "a slow , dull , long and entirely pointless film that never ends"
    assert len(OnnxClassifier(tiny_artifact)([text]).tokens[0]) > 4
    short = OnnxClassifier(_copy_with(tiny_artifact, tmp_path / "a", max_length=4))([text])
    assert len(short.tokens[0]) == 4 and len(short.attention[0]) == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 99}, "format_version 99, this code reads 1"),
        ({"labels": ["negative", "neutral", "positive"]}, "gives 2 class probabilities but metadata lists 3"),
    ],
)
def test_onnx_classifier_mismatched_metadata_fails_with_the_fix(
    tiny_artifact: Path, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ArtifactError, match=message):
        OnnxClassifier(_copy_with(tiny_artifact, tmp_path / "a", **changes))


def test_onnx_classifier_folder_without_metadata_is_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not an artifact folder"):
        OnnxClassifier(tmp_path)


def test_int8_metrics_large_delta_is_logged_and_recorded(caplog: pytest.LogCaptureFixture) -> None:
    float_metrics = {"test": {"accuracy": 0.80}, "majority_accuracy": 0.6}
    with caplog.at_level(logging.WARNING, logger="model.int8"):
        small = int8_metrics(float_metrics, {"accuracy": 0.80 - INT8_MAX_ACCURACY_DELTA / 2})
        assert not caplog.records and small["accuracy_delta_warning"] is None
        large = int8_metrics(float_metrics, {"accuracy": 0.80 - 2 * INT8_MAX_ACCURACY_DELTA})
    assert large["accuracy_delta_vs_float"] == pytest.approx(-2 * INT8_MAX_ACCURACY_DELTA)
    assert "-0.0400" in large["accuracy_delta_warning"] and caplog.records[0].getMessage() == large["accuracy_delta_warning"]
    assert large["test"] == {"accuracy": 0.80 - 2 * INT8_MAX_ACCURACY_DELTA} and large["majority_accuracy"] == 0.6


def test_baseline_columns_follow_the_labels_when_one_is_missing_from_train() -> None:
    texts = ["awful film", "terrible plot", "dreadful acting", "wonderful film", "lovely plot", "brilliant acting"] * 3
    y = np.array([0, 0, 0, 2, 2, 2] * 3)  # label 1 never occurs in training
    probs = tfidf_lr_probs(texts, y, ["awful acting", "wonderful acting"], num_classes=3)
    assert probs.shape == (2, 3)
    assert np.all(probs[:, 1] == 0.0)
    assert probs.argmax(1).tolist() == [0, 2]
