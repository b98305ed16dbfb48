from __future__ import annotations

import unicodedata

import pytest
from tokenizers import Tokenizer

from model import tokenizer as toks
from tests.conftest import CACHE

TEXTS = [
    "A gorgeous, heartfelt film!",
    "  Leading spaces and   inner   gaps.",
    "Café crème — naïve résumé; ÉCLAIR?",
    "Emoji 😀 and CJK 映画 and tabs\tand\nnewlines",
    "unbelievably overwrought",
]


def _surface(piece: str) -> str:
    return piece.removeprefix("##")


def _fold(s: str) -> str:
    # What BERT normalisation does to a surface: lowercase, strip accents.
    return "".join(c for c in unicodedata.normalize("NFD", s.lower()) if unicodedata.category(c) != "Mn")


@pytest.fixture(scope="module", params=["wordpiece", "minilm"])
def tok(request: pytest.FixtureRequest) -> Tokenizer:
    if request.param == "minilm":
        return toks.minilm_tokenizer(CACHE, max_length=64)
    return toks.train_wordpiece(TEXTS * 20, vocab_size=200, max_length=64)


@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_offsets_round_trip_to_the_original_text(tok: Tokenizer, text: str) -> None:
    enc = tok.encode(text)
    assert enc.ids, "every test text has tokens"
    for piece, (start, end) in zip(enc.tokens, enc.offsets, strict=True):
        assert 0 <= start < end <= len(text)
        if piece != toks.UNK:
            assert _fold(text[start:end]) == _surface(piece)


def test_tokenizer_adds_no_special_tokens_and_no_padding(tok: Tokenizer) -> None:
    enc = tok.encode("short")
    assert "[CLS]" not in enc.tokens and "[SEP]" not in enc.tokens and toks.PAD not in enc.tokens


def test_tokenizer_truncates_at_max_length_and_reports_overflow(tok: Tokenizer) -> None:
    enc = tok.encode("word " * 200)
    assert len(enc.ids) == 64
    assert enc.overflowing


def test_train_wordpiece_same_texts_same_vocabulary() -> None:
    texts = ["great fun", "awful mess", "lovely and warm", "dull, boring"] * 5  # many ties
    vocabs = [toks.train_wordpiece(texts, vocab_size=40, max_length=16).get_vocab() for _ in range(5)]
    assert all(v == vocabs[0] for v in vocabs)
    assert toks.train_wordpiece(texts, 40, 16).encode("unseen words").tokens[:2] == ["u", "##n"]
