"""The fast path must give exactly what `tokenizers` gives: ids, offsets, pieces and the truncation
flag, on every text of the dataset and on random strings; in C (service/_fastpath.c) and in Python
alike. The answer's token JSON is the same from both renderers, byte for byte."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from tokenizers import Tokenizer, processors

from model import tokenizer as toks
from model.data import load_rotten_tomatoes
from service.answer import render_tokens
from service.text_tokenizer import Encoded, TextTokenizer, WordEntry, _fastpath, split_words
from tests.conftest import CACHE

# The compiled module, for the tests of its functions (test_native_extension_is_built fails if
# it is not built; these then fail with it rather than pass for nothing).
native: Any = _fastpath

# Letters weighted up, every ASCII punctuation character, the whitespace BERT keeps, digits, and
# fragments that stress WordPiece (long words, unknown pieces) and special-token matching.
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" * 4 + "0123456789" + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" + "    \t\n\r"
FRAGMENTS = ["[CLS]", "[unk]", "[PAD", "##", "x" * 120, "unbelievably", " ", "'s", "\x00", "日本"]
# Non-ASCII the fast path takes (é É ’ — … no-break space) and some it must leave to tokenizers:
# ß and æ stay non-ASCII letters, İ lowercases to two characters, ½ is a symbol, U+0301 combines.
FRAGMENTS += ["é", "É", "ñ", "’", "“", "—", "…", "\xa0", "\u2009", "ß", "æ", "İ", "½", "e\u0301", "\u200b", "ǅ"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [e.text for e in load_rotten_tomatoes(CACHE)]


@pytest.fixture(scope="module")
def minilm_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model's tokenizer: MiniLM's vocabulary, with BERT's special tokens."""
    out = tmp_path_factory.mktemp("minilm")
    toks.minilm_tokenizer(CACHE, max_length=128).save(str(out / "tokenizer.json"))
    return out


@pytest.fixture(scope="module")
def cased_artifact(minilm_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with a normaliser that keeps case (and accents), as a cased BERT's does."""
    config = json.loads((minilm_artifact / "tokenizer.json").read_text())
    config["normalizer"]["lowercase"] = False
    out = tmp_path_factory.mktemp("cased")
    (out / "tokenizer.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module", params=["tiny", "minilm", "cased"])
def artifact(request: pytest.FixtureRequest, tiny_artifact: Path, minilm_artifact: Path, cased_artifact: Path) -> Path:
    """Also the tiny artifact's own small WordPiece vocabulary: many sub-words and unknowns."""
    return {"tiny": tiny_artifact, "minilm": minilm_artifact, "cased": cased_artifact}[request.param]


def slow_and_fast(artifact: Path, max_length: int) -> tuple[TextTokenizer, TextTokenizer, TextTokenizer]:
    """tokenizers itself; the fast path in C; the fast path in Python."""
    slow = TextTokenizer(artifact, max_length, fast=False)
    native = TextTokenizer(artifact, max_length)
    python = TextTokenizer(artifact, max_length, native=False)
    assert native.fast and native.native and python.fast and not python.native and not slow.fast
    return slow, native, python


def assert_same(a: Encoded, b: Encoded, text: str) -> None:
    assert a.text == b.text == text
    assert (a.token_ids(), a.offsets(), a.pieces, a.truncated) == (b.token_ids(), b.offsets(), b.pieces, b.truncated), text


def assert_all_same(texts: list[str], *tokenizers: TextTokenizer) -> None:
    """Same encodings from every tokenizer, and the same answer JSON from both renderers."""
    first, *others = [t.encode(texts) for t in tokenizers]
    rng = np.random.default_rng(0)
    for i, text in enumerate(texts):
        for other in others:
            assert_same(first[i], other[i], text)
        enc = first[i]
        attention = rng.random(len(enc.pieces)).astype(np.float32)
        att_json = orjson.dumps(attention, option=orjson.OPT_SERIALIZE_NUMPY)
        rendered = native.render(enc.text, enc.spans, enc.pieces, att_json)
        assert rendered == render_tokens(enc, att_json), text
        tokens = json.loads(rendered)
        expected = [(*o, p) for o, p in zip(first[i].offsets(), first[i].pieces, strict=True)]
        assert [(t["start"], t["end"], t["piece"]) for t in tokens] == expected
        assert all(t["text"] == text[t["start"] : t["end"]] for t in tokens), text
        assert np.array([t["attention"] for t in tokens], dtype=np.float32).tolist() == attention.tolist()  # float32, exactly


def test_fast_path_matches_tokenizers_on_every_dataset_text(artifact: Path, texts: list[str]) -> None:
    slow, fast, python = slow_and_fast(artifact, 128)
    assert_all_same(texts, slow, fast, python)
    # The fast path really is the one taken for review text (all but a handful of 12,808).
    plain = sum(fast._fast(t) is not None for t in texts)
    assert plain / len(texts) > 0.98, plain  # 99.95% uncased; a cased normaliser keeps é as é
    # And in one C call (split_plain) for all but those holding a special token's first character.
    native = [t for t in texts if fast._plain_native(t) is not None]
    assert len(native) / len(texts) > 0.98 and all(fast._fast(t) is not None for t in native), len(native)


def test_fast_path_matches_tokenizers_on_random_strings(artifact: Path) -> None:
    rng = random.Random(7)
    samples = []
    for _ in range(3000):
        parts = [rng.choice(FRAGMENTS) if rng.random() < 0.05 else rng.choice(ALPHABET) for _ in range(rng.randint(1, 200))]
        samples.append("".join(parts))
    # A short max_length makes truncation (and its flag) common.
    slow, fast, python = slow_and_fast(artifact, 16)
    assert_all_same(samples, slow, fast, python)
    assert any(e.truncated for e in fast.encode(samples))


def test_fast_path_word_cache_stays_bounded_and_correct(tiny_artifact: Path, texts: list[str]) -> None:
    slow = TextTokenizer(tiny_artifact, 64, fast=False)
    for native in (True, False):
        fast = TextTokenizer(tiny_artifact, 64, native=native, cache_words=50)
        for text in texts[:300]:
            (a,), (b,) = slow.encode([text]), fast.encode([text])
            assert_same(a, b, text)
            assert len(fast.words) <= 50


@pytest.mark.parametrize("which", ["minilm", "cased"])
def test_special_token_text_takes_the_tokenizers_path(which: str, minilm_artifact: Path, cased_artifact: Path) -> None:
    slow, fast, _ = slow_and_fast(minilm_artifact if which == "minilm" else cased_artifact, 64)
    text = "[CLS] a fine film [SEP]"
    assert fast._fast(text) is None
    (a,), (b,) = slow.encode([text]), fast.encode([text])
    assert_same(a, b, text)
    assert fast.tok.token_to_id("[CLS]") in b.token_ids()


def test_fast_path_off_for_a_pipeline_it_does_not_reproduce(tiny_artifact: Path, tmp_path: Path) -> None:
    tok = Tokenizer.from_file(str(tiny_artifact / "tokenizer.json"))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    tok.save(str(tmp_path / "tokenizer.json"))
    t = TextTokenizer(tmp_path, 64)
    assert not t.fast
    (enc,) = t.encode(["a fine film"])
    assert enc.pieces[0] == "[CLS]"  # what tokenizers says, special tokens included


def test_fast_path_off_when_its_self_check_disagrees(tiny_artifact: Path) -> None:
    class Broken(TextTokenizer):
        def _word(self, word: str) -> WordEntry:
            return (0, word)  # a wrong id for every word

    t = Broken(tiny_artifact, 64)
    assert not t.fast
    slow = TextTokenizer(tiny_artifact, 64, fast=False)
    (a,), (b,) = slow.encode(["a fine film"]), t.encode(["a fine film"])
    assert_same(a, b, "a fine film")


def test_native_extension_is_built() -> None:
    # `make` installs the project with a C compiler present; without the extension the service
    # still answers the same, with more CPU per token (a warning says so at start-up).
    assert _fastpath is not None


@pytest.mark.parametrize(
    "text",
    ['say "no" \\ or \\n', "tab\there\x00\x01\x1f\x7f", "é’—…日本😀", "lone \ud800 surrogate", ""],
)
def test_render_escapes_text_as_json(text: str) -> None:
    n = len(text)
    spans = np.array([[0, n], [0, 0], [n // 2, n]], dtype=np.int32).tobytes()
    pieces = [text, "##x", '"q"\\']
    out = native.render(text, spans, pieces, b"[0.5,1e-8,0.25]")
    tokens = json.loads(out)
    assert [t["text"] for t in tokens] == [text, "", text[n // 2 :]]
    assert [t["piece"] for t in tokens] == pieces
    assert [t["attention"] for t in tokens] == [0.5, 1e-8, 0.25]
    if "\ud800" not in text:  # orjson refuses lone surrogates; C writes them as JSON escapes
        for t, a in zip(tokens, [b"0.5", b"1e-8", b"0.25"], strict=True):
            t["attention"] = orjson.Fragment(a)  # as written, in the same key order
        assert out == orjson.dumps(tokens)


@pytest.mark.parametrize(
    ("spans", "pieces", "attention", "error"),
    [
        ([[0, 2]], ["ab", "c"], b"[0.5,0.5]", "1 spans for 2 pieces"),
        ([[0, 2], [2, 3]], ["ab", "c"], b"[0.5]", "has 1 values for 2 tokens"),
        ([[0, 2]], ["ab"], b"[0.5,0.5]", "more values than"),
        ([[0, 2]], ["ab"], b"[0.5,]", "more values than"),
        ([[0, 9]], ["ab"], b"[1.0]", "spans 0..9 of a 3-character text"),
        ([[0, 2]], ["ab"], b"0.5", "must be a JSON array"),
    ],
)
def test_render_rejects_inconsistent_input(spans: list[list[int]], pieces: list[str], attention: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        native.render("abc", np.array(spans, dtype=np.int32).tobytes(), pieces, attention)


def test_split_rejects_a_negative_max_length() -> None:
    for split in (native.split, split_words):
        with pytest.raises(ValueError, match="max_length must be >= 0"):
            split("a b", {}, lambda w: (1, w), -1)
