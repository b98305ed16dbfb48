"""The answer's JSON: the compiled renderer and its Python twin write the same bytes, and those
bytes say what the model said (label = first largest probability, float32 values as written,
tokens over the caller's text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from model.data import load_rotten_tomatoes
from service.answer import as_json, render_predictions, renderer
from service.text_tokenizer import Encoded, TextTokenizer
from tests.conftest import CACHE

LABELS = ["negative", "positive"]


@pytest.fixture(scope="module")
def encoded(tiny_artifact: Path) -> list[Encoded]:
    texts = [e.text for e in load_rotten_tomatoes(CACHE)][:3000]
    texts += ['say "no" \\ or \\n', "tab\there", "é’—…日本😀", "[CLS] special"]
    return TextTokenizer(tiny_artifact, 64).encode(texts)


def _outputs(encoded: list[Encoded], n_labels: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Probabilities (N, C) with ties and tiny values among them; attention (L_i,) per text."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(n_labels), size=len(encoded)).astype(np.float32)  # (N, C)
    probs[::7] = 1.0 / n_labels  # ties: the first label wins, as with Python's max
    probs[3::11, 0] = 3.4916984e-6  # written as 0.0000034916984 by orjson's float32 form
    attention = [rng.dirichlet(np.ones(len(e.pieces))).astype(np.float32) for e in encoded]
    return probs, attention


def _both(encoded: list[Encoded], labels: list[str], probs_json: bytes, attention_json: bytes | None) -> bytes:
    native = renderer(True)
    assert native is not render_predictions, "service/_fastpath.c is not built (test_native_extension_is_built)"
    out = native(encoded, labels, probs_json, attention_json)
    assert out == render_predictions(encoded, labels, probs_json, attention_json)
    return out


@pytest.mark.parametrize("labels", [LABELS, ["neg", "neutral", "pos", 'odd "label" é']])
@pytest.mark.parametrize("with_attention", [True, False])
def test_render_predictions_native_and_python_write_the_same_answer(
    encoded: list[Encoded], labels: list[str], with_attention: bool
) -> None:
    probs, attention = _outputs(encoded, len(labels), len(labels))
    out = _both(encoded, labels, as_json(list(probs)), as_json(attention) if with_attention else None)
    preds: list[dict[str, Any]] = json.loads(out)
    assert len(preds) == len(encoded)
    for enc, p, a, pred in zip(encoded, probs, attention, preds, strict=True):
        k = p.tolist().index(max(p.tolist()))
        assert pred["label"] == labels[k] and list(pred["probabilities"]) == labels
        assert np.array(list(pred["probabilities"].values()), dtype=np.float32).tolist() == p.tolist()  # float32, exactly
        assert np.float32(pred["score"]) == p[k]
        assert pred["truncated"] is enc.truncated
        assert ("tokens" in pred) is with_attention
        if with_attention:
            tokens = pred["tokens"]
            assert [t["text"] for t in tokens] == enc.surfaces() and [t["piece"] for t in tokens] == enc.pieces
            assert [(t["start"], t["end"]) for t in tokens] == enc.offsets()
            assert np.array([t["attention"] for t in tokens], dtype=np.float32).tolist() == a.tolist()


def test_render_predictions_keeps_orjsons_float32_form(encoded: list[Encoded]) -> None:
    # float64's writer (a Python float) would give 3.4916984e-6 and 0.9999965190887451.
    probs = np.array([[3.4916984e-6, 0.9999965]], dtype=np.float32)
    out = _both(encoded[:1], LABELS, as_json(list(probs)), None)
    assert out.startswith(b'[{"label":"positive","score":0.9999965,"probabilities":{"negative":0.0000034916984,"positive":0.9999965}')


@pytest.mark.parametrize(
    ("probs_json", "attention_json", "error"),
    [
        (b"[[0.5,0.5]]", None, "fewer rows than texts"),  # two texts, one row
        (b"[[0.5,0.5],[0.5,0.5],[0.5,0.5]]", None, "more rows than texts"),
        (b"[[0.5,0.5],[0.5]]", None, "must hold 2 numbers"),
        (b"[[0.5,0.5],[0.5,0.5,0.1]]", None, "must hold 2 numbers"),
        (b"[[0.5,0.5],[null,0.5]]", None, "could not convert|must hold"),  # NaN, as orjson writes it
        (b"[[0.5,0.5],[0.5,0.5]]", b"[[0.5]]", "fewer rows than texts|attention has 1 values"),
    ],
)
def test_render_predictions_rejects_outputs_that_do_not_fit_the_texts(
    encoded: list[Encoded], probs_json: bytes, attention_json: bytes | None, error: str
) -> None:
    two = encoded[:2]
    for render in (renderer(True), render_predictions):
        with pytest.raises(ValueError, match=error):
            render(two, LABELS, probs_json, attention_json)


def test_render_predictions_is_valid_json_for_every_text(encoded: list[Encoded]) -> None:
    probs, attention = _outputs(encoded, 2, 0)
    out = renderer(True)(encoded, LABELS, as_json(list(probs)), as_json(attention))
    assert orjson.loads(out) == json.loads(out)  # two parsers agree: nothing malformed


def test_render_predictions_takes_many_labels_and_no_texts(encoded: list[Encoded]) -> None:
    labels = [f"class {k}" for k in range(100)]
    probs = np.full((3, 100), 0.01, dtype=np.float32)
    probs[1, 73] = 0.5
    out = _both(encoded[:3], labels, as_json(list(probs)), None)
    assert [p["label"] for p in json.loads(out)] == ["class 0", "class 73", "class 0"]
    assert _both([], LABELS, b"[]", b"[]") == b"[]" == _both([], LABELS, b"[]", None)


class _Odd:
    """An Encoded whose flag cannot be read: the error comes through as it is."""

    text, spans, pieces = "a", np.array([0, 1], dtype=np.int32).tobytes(), ["a"]

    @property
    def truncated(self) -> bool:
        raise LookupError("no flag")


@pytest.mark.parametrize("probs_json", [b"[[0.5,0.5]", b"[0.5,0.5]]", b"0.5"])
def test_render_predictions_rejects_what_is_not_an_array_of_rows(encoded: list[Encoded], probs_json: bytes) -> None:
    for render in (renderer(True), render_predictions):
        with pytest.raises(ValueError):
            render(encoded[:1], LABELS, probs_json, None)


def test_render_predictions_passes_an_attribute_error_on(encoded: list[Encoded]) -> None:
    for render in (renderer(True), render_predictions):
        with pytest.raises(LookupError, match="no flag"):
            render([_Odd()], LABELS, b"[[0.5,0.5]]", None)  # type: ignore[list-item]
