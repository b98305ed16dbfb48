"""The artifact's tokenizer applied to request texts, with an exact fast path for plain text.

`tokenizers` spends ~37 µs of CPU on a review-sized text (~25 tokens) here, most of it in the
normalizer's and pre-tokenizer's per-character bookkeeping, and under load tokenizing was the
largest single cost of the event loop (docs/SERVING.md, Performance). For the pipeline our
artifacts ship (BertNormalizer, BertPreTokenizer, WordPiece, no post-processor), normalising and
splitting plain text is simple: ASCII is lowercased (one character for one, so offsets do not
move), whitespace dropped, and every punctuation character cut off as a word of its own. The fast
path does that with one regex and hands each word to the tokenizer's own WordPiece model (cached
per word), which gives the same ids, offsets and pieces in ~10 µs. Non-ASCII characters join in
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

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


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # (L,) int64, L >= 1
    # One dict per token, as the answer lists it: "text" (the caller's text[start:end]), "start",
    # "end", "attention" (None until the model ran) and "piece" (the tokenizer's own token).
    # Built here, in the loop that finds the tokens, rather than from offset and piece lists
    # afterwards: one pass over the tokens instead of two (~7 µs less CPU per text).
    tokens: list[dict[str, Any]]
    truncated: bool

    def same(self, other: Encoded) -> bool:
        return (self.ids.tolist(), self.tokens, self.truncated) == (other.ids.tolist(), other.tokens, other.truncated)


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
    def __init__(self, artifact: Path, max_length: int, fast: bool = True, cache_words: int = 100_000) -> None:
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
        self.words: dict[str, WordEntry] = {}
        self.cache_words = cache_words
        self.plain = PLAIN
        self.table: dict[int, str] = {}  # non-ASCII character → what the normaliser makes of it
        blocker = fast_path_blocker(config) if fast else "switched off in the settings"
        if blocker is None:
            self.table, extra = self._extra_chars()
            self.plain = re.compile(f"[{ASCII}{re.escape(extra)}]*\\Z")
            blocker = self._self_check()
        self.fast = blocker is None
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
            fast = self._fast(text)
            if fast is not None and not fast.same(self._slow(text)):
                log.error("fast tokenizer path disagrees with tokenizers on %r", text)
                return f"it disagrees with tokenizers on {text!r}"
        return None

    def encode(self, texts: list[str]) -> list[Encoded]:
        # One text at a time, not encode_batch: its thread pool spreads a request over every
        # core, where the other workers and the engine threads are already busy; under load
        # that cost more CPU per text than it saved in latency (docs/SERVING.md, Performance).
        out = []
        for text in texts:
            enc = (self._fast(text) if self.fast else None) or self._slow(text)
            if len(enc.ids):
                out.append(enc)
            else:
                # Nothing the tokenizer can read (e.g. only control characters): one unknown
                # token spanning the whole text, as in training.
                unk = {"text": text, "start": 0, "end": len(text), "attention": None, "piece": "[UNK]"}
                out.append(Encoded(np.array([self.unk_id], dtype=np.int64), [unk], False))
        return out

    def _slow(self, text: str) -> Encoded:
        enc = self.tok.encode(text)
        spans = zip(enc.offsets, enc.tokens, strict=True)
        tokens = [{"text": text[s:e], "start": s, "end": e, "attention": None, "piece": p} for (s, e), p in spans]
        return Encoded(np.array(enc.ids, dtype=np.int64), tokens, bool(enc.overflowing))

    def _fast(self, text: str) -> Encoded | None:
        """None when the text has a character the fast path does not take, or a special token."""
        if not self.plain.match(text):
            return None
        low = text if text.isascii() else text.translate(self.table)  # one character for one
        low = low.lower() if self.lowercase else low  # ASCII: same length, same offsets
        if any(s in text for s in self.specials_raw) or any(s in low for s in self.specials_norm):
            return None
        ids: list[int] = []
        tokens: list[dict[str, Any]] = []
        cached, at = self.words.get, 0
        for space, word in WORD.findall(low):  # plain tuples: cheaper than match objects
            at += len(space)
            end = at + len(word)
            entry = cached(word) or self._word(word)
            if len(entry) == 2 and type(entry[0]) is int:  # the whole word is one piece
                ids.append(entry[0])
                tokens.append({"text": text[at:end], "start": at, "end": end, "attention": None, "piece": entry[1]})
            else:
                for i, s, e, p in entry:
                    ids.append(i)
                    tokens.append({"text": text[at + s : at + e], "start": at + s, "end": at + e, "attention": None, "piece": p})
            at = end
        n = self.max_length  # truncation, as tokenizers does it: the first n tokens
        return Encoded(np.array(ids[:n], dtype=np.int64), tokens[:n], len(ids) > n)

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
