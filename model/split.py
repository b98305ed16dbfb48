"""A deterministic, grouped train/validation/test split that needs no random generator.

Groups (movies) that share a snippet are merged first, then exact duplicates (after
normalisation) are dropped, then each merged group goes to a split by the sha256 of a fixed salt
and its name. The result depends only on the data, never on a seed, library or machine.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from model.data import Example, normalize

SALT = "sentiment-split-v1"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    duplicates_dropped: int

    def parts(self) -> dict[str, list[Example]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def hashes(self) -> dict[str, str]:
        return {name: hash_examples(ex) for name, ex in self.parts().items()}

    def sizes(self) -> dict[str, int]:
        return {name: len(ex) for name, ex in self.parts().items()}


def hash_examples(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(f"{e.label}\t{e.text}\n".encode())
    return h.hexdigest()


def _merge_groups(examples: list[Example]) -> dict[str, str]:
    """Union-find over groups linked by a shared normalised text → group → representative."""
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.setdefault(g, g) != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    first_group_of_text: dict[str, str] = {}
    for e in examples:
        key = normalize(e.text)
        other = first_group_of_text.setdefault(key, e.group)
        a, b = find(e.group), find(other)
        if a != b:  # the smaller name represents the merged group, so the result is order-free
            parent[max(a, b)] = min(a, b)
    return {g: find(g) for g in parent}


def bucket(group: str, salt: str = SALT) -> str:
    """About 80/10/10: the last hex digits of sha256(salt|group) modulo 10 pick the split."""
    n = int(hashlib.sha256(f"{salt}|{group}".encode()).hexdigest()[-8:], 16) % 10
    return "test" if n == 0 else "validation" if n == 1 else "train"


def grouped_split(examples: list[Example], salt: str = SALT) -> Split:
    rep = _merge_groups(examples)
    parts: dict[str, list[Example]] = {name: [] for name in SPLITS}
    seen: set[str] = set()
    dropped = 0
    for e in examples:
        key = normalize(e.text)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        g = rep[e.group]
        parts[bucket(g, salt)].append(Example(text=e.text, label=e.label, group=g))
    return Split(parts["train"], parts["validation"], parts["test"], dropped)


def write_split_csv(split: Split, path: Path) -> None:
    """`text,label,split` rows so anyone can re-evaluate an artifact on exactly our test set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "split"])
        for name, examples in split.parts().items():
            for e in examples:
                w.writerow([e.text, e.label, name])
