"""The artifact's metadata as the service sees it: labels, max length, identity (the tokenizer that
was used in training is applied by service/text_tokenizer.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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
