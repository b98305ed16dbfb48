"""The fast plain-ASCII path must give exactly what `tokenizers` gives: ids, offsets, pieces and
the truncation flag, on every text of the dataset and on random strings."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer, processors

from model import tokenizer as toks
from model.data import load_rotten_tomatoes
from service.text_tokenizer import Encoded, TextTokenizer, WordEntry
from tests.conftest import CACHE

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


def slow_and_fast(artifact: Path, max_length: int) -> tuple[TextTokenizer, TextTokenizer]:
    slow = TextTokenizer(artifact, max_length, fast=False)
    fast = TextTokenizer(artifact, max_length)
    assert fast.fast and not slow.fast
    return slow, fast


def assert_same(a: Encoded, b: Encoded, text: str) -> None:
    assert (a.ids.tolist(), a.tokens, a.truncated) == (b.ids.tolist(), b.tokens, b.truncated), text
    for t in b.tokens:
        assert t["text"] == text[t["start"] : t["end"]]


def test_fast_path_matches_tokenizers_on_every_dataset_text(artifact: Path, texts: list[str]) -> None:
    slow, fast = slow_and_fast(artifact, 128)
    for text, a, b in zip(texts, slow.encode(texts), fast.encode(texts), strict=True):
        assert_same(a, b, text)
    # The fast path really is the one taken for review text (all but a handful of 12,808).
    plain = sum(fast._fast(t) is not None for t in texts)
    assert plain / len(texts) > 0.98, plain  # 99.95% uncased; a cased normaliser keeps é as é


def test_fast_path_matches_tokenizers_on_random_strings(artifact: Path) -> None:
    rng = random.Random(7)
    samples = []
    for _ in range(3000):
        parts = [rng.choice(FRAGMENTS) if rng.random() < 0.05 else rng.choice(ALPHABET) for _ in range(rng.randint(1, 200))]
        samples.append("".join(parts))
    # A short max_length makes truncation (and its flag) common.
    slow, fast = slow_and_fast(artifact, 16)
    for text, a, b in zip(samples, slow.encode(samples), fast.encode(samples), strict=True):
        assert_same(a, b, text)
    assert any(e.truncated for e in fast.encode(samples))


def test_fast_path_word_cache_stays_bounded_and_correct(tiny_artifact: Path, texts: list[str]) -> None:
    slow = TextTokenizer(tiny_artifact, 64, fast=False)
    fast = TextTokenizer(tiny_artifact, 64, cache_words=50)
    sample = texts[:300]
    for text, a, b in zip(sample, slow.encode(sample), fast.encode(sample), strict=True):
        assert_same(a, b, text)
        assert len(fast.words) <= 50


@pytest.mark.parametrize("which", ["minilm", "cased"])
def test_special_token_text_takes_the_tokenizers_path(which: str, minilm_artifact: Path, cased_artifact: Path) -> None:
    slow, fast = slow_and_fast(minilm_artifact if which == "minilm" else cased_artifact, 64)
    text = "[CLS] a fine film [SEP]"
    assert fast._fast(text) is None
    (a,), (b,) = slow.encode([text]), fast.encode([text])
    assert_same(a, b, text)
    assert fast.tok.token_to_id("[CLS]") in b.ids.tolist()


def test_fast_path_off_for_a_pipeline_it_does_not_reproduce(tiny_artifact: Path, tmp_path: Path) -> None:
    tok = Tokenizer.from_file(str(tiny_artifact / "tokenizer.json"))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    tok.save(str(tmp_path / "tokenizer.json"))
    t = TextTokenizer(tmp_path, 64)
    assert not t.fast
    (enc,) = t.encode(["a fine film"])
    assert enc.tokens[0]["piece"] == "[CLS]"  # what tokenizers says, special tokens included


def test_fast_path_off_when_its_self_check_disagrees(tiny_artifact: Path) -> None:
    class Broken(TextTokenizer):
        def _word(self, word: str) -> WordEntry:
            return (0, word)  # a wrong id for every word

    t = Broken(tiny_artifact, 64)
    assert not t.fast
    slow = TextTokenizer(tiny_artifact, 64, fast=False)
    (a,), (b,) = slow.encode(["a fine film"]), t.encode(["a fine film"])
    assert_same(a, b, "a fine film")
