"""The artifact's tokenizer applied to request texts, with an exact fast path for plain text.

`tokenizers` spends ~40–75 µs of CPU on a review-sized text (~25 tokens) here, most of it in the
normalizer's and pre-tokenizer's per-character bookkeeping, and under load tokenizing was the
largest single cost of the event loop (docs/PERFORMANCE.md). For the pipeline our
artifacts ship (BertNormalizer, BertPreTokenizer, WordPiece, no post-processor), normalising and
splitting plain text is simple: ASCII is lowercased (one character for one, so offsets do not
move), whitespace dropped, and every punctuation character cut off as a word of its own. The fast
path does that in one pass and hands each word to the tokenizer's own WordPiece model (cached per
word), which gives the same ids, offsets and pieces: ~7 µs with the pass in C (service/_fastpath.c,
`split`), ~25 µs with its Python twin `split_words` (measured in the same hour as ~76 µs for
tokenizers). A text's tokens stay compact (ids, spans, pieces: no object per token) until the
answer's token JSON is written in one go (`render`, or `render_tokens`). Non-ASCII characters join in
when the tokenizer's own normaliser maps them one-to-one onto ASCII letters or spaces (é → e) or
leaves them as punctuation (’ — …), and a start-up probe of each agrees with tokenizers.

Everything else (ß, CJK, emoji, control characters, a special token's text such as "[CLS]",
another pipeline) goes through `tokenizers` unchanged: 6 texts in the 12,808 of the dataset.
Tests compare both paths on every text of the dataset and on random strings; at start-up the
service compares them on sample texts and switches the fast path off, with an error log, if they
ever disagree.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from service.native import fastpath as _fastpath

log = logging.getLogger(__name__)

# Printable ASCII and the three control characters BERT's clean-up turns into spaces. Other
# characters may be removed, split or decomposed by BertNormalizer: only those checked against
# the tokenizer at start-up (TextTokenizer._extra_chars) join them.
ASCII = "\x20-\x7e\t\n\r"
PLAIN = re.compile(f"[{ASCII}]*\\Z")
# Where those are looked for: Latin-1 and Latin Extended letters and spaces, General Punctuation.
CANDIDATES = "".join(chr(c) for c in (*range(0xA0, 0x250), *range(0x2000, 0x2070)))
# BertPreTokenizer on ASCII: runs of letters and digits, and every other non-space character
# alone; each word with the whitespace before it, to know where it starts.
WORD = re.compile(r"([ \t\n\r]*)([A-Za-z0-9]+|[^A-Za-z0-9 \t\n\r])")
SELF_CHECK = [
    "A gorgeous, heartfelt film.",
    "a [CLS] b [SEP] c [MASK] [unk] [PAD",
    "Dull... and far too long; 2/10 -- wouldn't watch again!!",
    'it\'s a BRILLIANT, laugh-out-loud #1 (sort of) "comedy"\tof\r\nerrors_$5 @home {ok} [no] ~yes~ `x` ^_^ |',
    "supercalifragilisticexpialidocious " * 3 + "x" * 150,
    "naïve café — “not” plain… Ñandú’s Æsop ß İ ½ e\u0301",
]

# A word that is one piece, spanning all of it: (id, piece) (most words); else its pieces as
# (id, start, end within the word, piece). Typed Any: a union mypy cannot narrow by length.
WordEntry = Any


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, 0.44 µs a
# text against 0.13 (docs/PERFORMANCE.md, session 12). Nothing changes one after tokenizing.
@dataclass(slots=True)
class Encoded:
    """A text's tokens, kept compact (a text's ~25 tokens as dicts cost more CPU than the rest of
    the tokenizing); the answer's token objects are written from them in one go (service/answer.py).
    Ids stay bytes, as the batcher pads them (service/padding.py `pad_ids`)."""

    text: str  # the caller's text
    ids: bytes  # (L,) int64, native byte order, L >= 1
    spans: bytes  # (L, 2) int32, native byte order: where each token lies in `text`
    pieces: list[str]  # the tokenizer's own tokens
    truncated: bool

    def token_ids(self) -> list[int]:
        return np.frombuffer(self.ids, dtype=np.int64).tolist()  # type: ignore[no-any-return]

    def offsets(self) -> list[tuple[int, int]]:
        return [(s, e) for s, e in np.frombuffer(self.spans, dtype=np.int32).reshape(-1, 2).tolist()]

    def surfaces(self) -> list[str]:
        """text[start:end] of each token: what a UI highlights."""
        return [self.text[s:e] for s, e in self.offsets()]

    def same(self, other: Encoded) -> bool:
        mine = (self.text, self.ids, self.spans, self.pieces, self.truncated)
        return mine == (other.text, other.ids, other.spans, other.pieces, other.truncated)


Split = tuple[bytes, bytes, list[str], bool]  # ids (int64), spans (int32 pairs), pieces, truncated


def split_words(low: str, words: dict[str, WordEntry], miss: Callable[[str], WordEntry], max_length: int) -> Split:
    """What service/_fastpath.c's split does, in Python (used when it is not built): the words of
    the normalised text `low` (runs of ASCII letters and digits, or any other non-space character
    alone), each through its WordPiece entry; the first max_length tokens."""
    if max_length < 0:
        raise ValueError("max_length must be >= 0")
    ids: list[int] = []
    spans: list[int] = []
    pieces: list[str] = []
    cached, at = words.get, 0
    for space, word in WORD.findall(low):  # plain tuples: cheaper than match objects
        at += len(space)
        end = at + len(word)
        entry = cached(word) or miss(word)
        if len(entry) == 2 and type(entry[0]) is int:  # the whole word is one piece
            ids.append(entry[0])
            spans += (at, end)
            pieces.append(entry[1])
        else:
            for i, s, e, p in entry:
                ids.append(i)
                spans += (at + s, at + e)
                pieces.append(p)
        at = end
    n = max_length  # truncation, as tokenizers does it: the first n tokens
    return (
        np.array(ids[:n], dtype=np.int64).tobytes(),
        np.array(spans[: 2 * n], dtype=np.int32).tobytes(),
        pieces[:n],
        len(ids) > n,
    )


def fast_path_blocker(config: dict[str, object]) -> str | None:
    """Why the fast path cannot reproduce this tokenizer.json exactly, or None if it can."""
    norm, pre, model = config.get("normalizer"), config.get("pre_tokenizer"), config.get("model")
    if not isinstance(norm, dict) or norm.get("type") != "BertNormalizer":
        return f"normalizer is {norm.get('type') if isinstance(norm, dict) else norm}, not BertNormalizer"
    if not isinstance(pre, dict) or pre.get("type") != "BertPreTokenizer":
        return "pre-tokenizer is not BertPreTokenizer"
    if not isinstance(model, dict) or model.get("type") != "WordPiece":
        return "model is not WordPiece"
    if config.get("post_processor") is not None:
        return "it has a post-processor (special tokens around the text)"
    return None


class TextTokenizer:
    def __init__(self, artifact: Path, max_length: int, fast: bool = True, native: bool = True, cache_words: int = 100_000) -> None:
        self.tok = Tokenizer.from_file(str(artifact / "tokenizer.json"))
        # The artifact's tokenizer already truncates at max_length; enforce it in case a
        # hand-edited tokenizer.json does not.
        self.tok.enable_truncation(max_length=max_length)
        self.tok.no_padding()
        self.max_length = max_length
        unk = self.tok.token_to_id("[UNK]")
        self.unk_id = 0 if unk is None else unk
        config = json.loads(self.tok.to_str())
        self.lowercase = bool((config.get("normalizer") or {}).get("lowercase"))
        # Texts holding an added (special) token's text take the slow path, which matches them: on
        # the raw text, or on the normalised text for tokens marked `normalized`.
        added = config.get("added_tokens", [])
        self.specials_raw = [t["content"] for t in added if not t.get("normalized")]
        norm = self.tok.normalizer
        self.specials_norm = [norm.normalize_str(t["content"]) if norm else t["content"] for t in added if t.get("normalized")]
        # A text without any special token's first character (BERT's all start with "[") holds
        # none of them: one scan in C instead of a substring search per special token (~1 µs a text).
        firsts = {t[0] for t in self.specials_raw + self.specials_norm if t}
        self.stops = "".join(sorted(firsts))
        self.may_hold_special = re.compile(f"[{re.escape(self.stops)}]").search if firsts else None
        self.words: dict[str, WordEntry] = {}
        self.cache_words = cache_words
        # The compiled splitter and renderer when built (and not switched off), else their Python twins.
        lib = _fastpath if native else None
        self.native = lib is not None
        self._split: Callable[[str, dict[str, WordEntry], Callable[[str], WordEntry], int], Split] = split_words
        if lib is not None:
            self._split = lib.split
        elif native:
            log.warning("service/_fastpath.c is not built (reinstall with a C compiler present): per-token work runs in Python")
        self.plain = PLAIN
        self.table: dict[int, str] = {}  # non-ASCII character → what the normaliser makes of it
        self.extra: dict[int, str] = {}  # the same, with the punctuation it keeps as itself
        # A plain text (nearly all of them) in one C call: the checks of _fast and the split.
        self._split_plain: Callable[..., Split | None] | None = None
        blocker = fast_path_blocker(config) if fast else "switched off in the settings"
        if blocker is None:
            self.table, extra = self._extra_chars()
            self.plain = re.compile(f"[{ASCII}{re.escape(extra)}]*\\Z")
            self.extra = {ord(c): self.table.get(ord(c), c) for c in extra}
            self._split_plain = lib.split_plain if lib is not None else None
            blocker = self._self_check()
        self.fast = blocker is None
        if not self.fast:
            self._split_plain = None
        if blocker is not None and fast:
            log.warning("fast tokenizer path off: %s; every text goes through tokenizers", blocker)

    def _extra_chars(self) -> tuple[dict[int, str], str]:
        """The non-ASCII characters the fast path can take too, with what they become: those the
        tokenizer's normaliser turns into one ASCII letter, digit or space (é → e, no-break space
        → space: same length, same offsets) and punctuation it leaves as is (’ — …). Each is kept
        only if tokenizers agrees with the fast path on it, in context."""
        assert self.tok.normalizer is not None  # fast_path_blocker checked it is BertNormalizer
        table: dict[int, str] = {}
        punct: list[str] = []
        for c in CANDIDATES:
            d = self.tok.normalizer.normalize_str(c)
            if len(d) == 1 and ((d.isascii() and d.isalnum()) or d == " "):
                table[ord(c)] = d
            elif d == c and unicodedata.category(c).startswith("P"):
                punct.append(c)
        agreed = []
        for c in [chr(k) for k in table] + punct:
            self.plain = re.compile(f"[{ASCII}{re.escape(c)}]*\\Z")
            self.table = {ord(c): table[ord(c)]} if ord(c) in table else {}
            probe = f"x{c}y {c}Ab{c}. {c}"
            fast = self._fast(probe)
            if fast is not None and fast.same(self._slow(probe)):
                agreed.append(c)
        return {k: v for k, v in table.items() if chr(k) in agreed}, "".join(agreed)

    def _self_check(self) -> str | None:
        for text in SELF_CHECK:
            slow = self._slow(text)
            for fast in (self._fast(text), self._plain_native(text)):
                if fast is not None and not fast.same(slow):
                    log.error("fast tokenizer path disagrees with tokenizers on %r", text)
                    return f"it disagrees with tokenizers on {text!r}"
        return None

    def _plain_native(self, text: str) -> Encoded | None:
        """What encode gets from split_plain (C), or None."""
        if self._split_plain is None:
            return None
        r = self._split_plain(text, self.words, self._word, self.max_length, self.lowercase, self.stops, self.extra)
        return None if r is None else Encoded(text, *r)

    def encode(self, texts: list[str]) -> list[Encoded]:
        # One text at a time, not encode_batch: its thread pool spreads a request over every
        # core, where the other workers and the engine threads are already busy; under load
        # that cost more CPU per text than it saved in latency (docs/PERFORMANCE.md).
        out = []
        for text in texts:
            enc = self._plain_native(text) or (self._fast(text) if self.fast else None) or self._slow(text)
            if not enc.ids:
                # Nothing the tokenizer can read (e.g. only control characters): one unknown
                # token spanning the whole text, as in training.
                ids = np.array([self.unk_id], dtype=np.int64).tobytes()
                enc = Encoded(text, ids, np.array([0, len(text)], dtype=np.int32).tobytes(), ["[UNK]"], False)
            out.append(enc)
        return out

    def _slow(self, text: str) -> Encoded:
        enc = self.tok.encode(text)
        spans = np.array(enc.offsets, dtype=np.int32).tobytes()
        return Encoded(text, np.array(enc.ids, dtype=np.int64).tobytes(), spans, enc.tokens, bool(enc.overflowing))

    def _fast(self, text: str) -> Encoded | None:
        """None when the text has a character the fast path does not take, or a special token."""
        if not self.plain.match(text):
            return None
        low = text if text.isascii() else text.translate(self.table)  # one character for one
        low = low.lower() if self.lowercase else low  # ASCII: same length, same offsets
        if (self.may_hold_special is not None and (self.may_hold_special(text) or self.may_hold_special(low))) and (
            any(s in text for s in self.specials_raw) or any(s in low for s in self.specials_norm)
        ):
            return None
        return Encoded(text, *self._split(low, self.words, self._word, self.max_length))

    def _word(self, word: str) -> WordEntry:
        tokens = self.tok.model.tokenize(word)
        entry: WordEntry
        if len(tokens) == 1:  # WordPiece: the word itself, or [UNK] for all of it
            entry = (tokens[0].id, tokens[0].value)
        else:
            # The model reports UTF-8 byte offsets; the caller's offsets count characters.
            char_at = {len(word[:i].encode()): i for i in range(len(word) + 1)}
            entry = tuple((t.id, char_at[t.offsets[0]], char_at[t.offsets[1]], t.value) for t in tokens)
        if len(self.words) >= self.cache_words:
            self.words.clear()  # bounded memory under adversarial input; common words return at once
        self.words[word] = entry
        return entry
