"""The artifact as the service sees it: metadata (labels, max length, identity) and the tokenizer
that was used in training, applied unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from service.errors import ConfigurationError

REQUIRED = ("name", "version", "labels", "max_length", "model_config")


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    labels: list[str]
    max_length: int
    pad_id: int

    @classmethod
    def load(cls, artifact: Path) -> Metadata:
        path = artifact / "metadata.json"
        if not path.exists():
            raise ConfigurationError(
                f"no metadata.json in {artifact}",
                "point SENTIMENT_ARTIFACT at a folder made by `python -m model train`",
            )
        raw = json.loads(path.read_text())
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise ConfigurationError(f"{path} lacks {missing}", "re-export the artifact with this version of model/")
        return cls(
            raw["name"],
            str(raw["version"]),
            list(raw["labels"]),
            int(raw["max_length"]),
            int(raw["model_config"]["pad_id"]),
        )


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # (L,) int64, L >= 1
    offsets: list[tuple[int, int]]  # character span of each token in the caller's text
    pieces: list[str]  # the tokenizer's own token strings
    truncated: bool


class TextTokenizer:
    def __init__(self, artifact: Path, max_length: int) -> None:
        self.tok = Tokenizer.from_file(str(artifact / "tokenizer.json"))
        # The artifact's tokenizer already truncates at max_length; enforce it in case a
        # hand-edited tokenizer.json does not.
        self.tok.enable_truncation(max_length=max_length)
        self.tok.no_padding()
        unk = self.tok.token_to_id("[UNK]")
        self.unk_id = 0 if unk is None else unk

    def encode(self, texts: list[str]) -> list[Encoded]:
        out = []
        # One text at a time, not encode_batch: its thread pool spreads a request over every
        # core, where the other workers and the engine threads are already busy; under load
        # that cost more CPU per text than it saved in latency (docs/SERVING.md, Performance).
        for text in texts:
            enc = self.tok.encode(text)
            if enc.ids:
                out.append(Encoded(np.array(enc.ids, dtype=np.int64), list(enc.offsets), list(enc.tokens), bool(enc.overflowing)))
            else:
                # Nothing the tokenizer can read (e.g. only control characters): one unknown
                # token spanning the whole text, as in training.
                out.append(Encoded(np.array([self.unk_id], dtype=np.int64), [(0, len(text))], ["[UNK]"], False))
        return out
