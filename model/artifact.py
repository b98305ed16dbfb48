"""Reading an exported artifact back with onnxruntime alone (no torch): used by evaluation and by
anyone who wants to re-check an artifact's numbers on the split CSV. Also how a build publishes
an artifact folder: staged next to its destination and swapped in only once it is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from service.padding import right_pad

FORMAT_VERSION = 1
MODEL_FILE, TOKENIZER_FILE, METADATA_FILE = "model.onnx", "tokenizer.json", "metadata.json"


class ArtifactError(RuntimeError):
    """An artifact folder cannot be read, written or shipped; the message says why and what to do."""


def read_metadata(artifact: Path) -> dict[str, Any]:
    path = artifact / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{artifact}: no {METADATA_FILE}, so not an artifact folder; build one with `python -m model train`")
    return dict(json.loads(path.read_text()))


def write_metadata(artifact: Path, meta: dict[str, Any]) -> None:
    (artifact / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")


def check_replaceable(dest: Path) -> None:
    """Raise unless a build may replace `dest`: absent, empty, or an artifact (has metadata.json).

    Checked before training, so that a typo in --out costs nothing and never deletes a folder of
    other files (`--out .` would otherwise have replaced the working directory).
    """
    dest = dest.resolve()
    if Path.cwd().resolve().is_relative_to(dest):
        raise ArtifactError(f"--out {dest} is (or contains) the current directory; choose a new folder such as artifacts/<name>")
    if dest.exists() and not dest.is_dir():
        raise ArtifactError(f"--out {dest} is a file, not a folder; choose another --out")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / METADATA_FILE).is_file():
        raise ArtifactError(
            f"--out {dest} holds other files and no {METADATA_FILE}, so it is not an artifact and will not be "
            "replaced; choose another --out, or empty that folder yourself"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale(dest: Path) -> list[Path]:
    """Clear what builds of `dest` left when they were killed (their process is gone): staging
    folders (`.<name>.tmp-PID`) are removed; a previous artifact moved aside (`.<name>.old-PID`)
    is put back when `dest` is missing (the build died between moving it aside and moving its
    own in), else removed. Returns what was removed."""
    dest = dest.resolve()
    prefix = glob.escape(f".{dest.name}")
    removed = []
    olds = sorted(dest.parent.glob(prefix + ".old-*"), key=lambda p: p.stat().st_mtime, reverse=True)  # the newest first
    for p in [*olds, *dest.parent.glob(prefix + ".tmp-*")]:
        pid = p.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if p in olds and not dest.exists():
            p.rename(dest)
        else:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def build_lock(dests: list[Path]) -> Iterator[None]:
    """Hold an exclusive lock on each destination for a whole build (`.<name>.lock` beside it,
    released when the process ends, however it ends): a second build to the same --out fails at
    once, rather than both publishing over each other. Sweeps what killed builds left."""
    with contextlib.ExitStack() as stack:
        for dest in dests:
            dest = dest.resolve()
            dest.parent.mkdir(parents=True, exist_ok=True)
            f = stack.enter_context((dest.parent / f".{dest.name}.lock").open("a+"))
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise ArtifactError(f"another build ({holder}) is writing {dest}; wait for it to finish or choose another --out") from None
            f.truncate(0)
            f.write(f"pid {os.getpid()}\n")
            f.flush()
            sweep_stale(dest)
        yield


def staging_dir(dest: Path) -> Path:
    """An empty hidden sibling of `dest` to build into (same filesystem, so the final rename is atomic)."""
    dest = dest.resolve()
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    if tmp.exists():  # left by an earlier, killed run that had the same process id
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def publish(pairs: list[tuple[Path, Path]]) -> None:
    """Replace each `dest` by its complete `staged` folder, all of them or none (a float artifact
    and its int8 sibling must not come from different builds); the old artifacts go only once
    every new one is in place."""
    for _, dest in pairs:
        check_replaceable(dest)
    moved: list[tuple[Path, Path]] = []  # (dest, where its old artifact waits)
    placed: list[Path] = []
    try:
        for _, dest in pairs:
            dest = dest.resolve()
            if dest.exists():
                old = dest.parent / f".{dest.name}.old-{os.getpid()}"
                dest.rename(old)
                moved.append((dest, old))
        for staged, dest in pairs:
            staged.rename(dest.resolve())
            placed.append(dest.resolve())
    except OSError as e:  # e.g. another build published meanwhile: put the previous artifacts back
        for dest in placed:
            shutil.rmtree(dest, ignore_errors=True)
        for dest, old in moved:
            old.rename(dest)
        raise ArtifactError(f"could not move the new artifact into place ({e}); the previous one is back, build again") from e
    for _, old in moved:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class Outputs:
    probabilities: np.ndarray  # (N, C)
    attention: list[np.ndarray]  # N arrays, one weight per token of that text
    tokens: list[list[str]]


class OnnxClassifier:
    """Tokenise, pad per length-sorted batch, run; results in input order.

    `meta` (optional) is used instead of the folder's metadata.json, so an artifact can be
    measured before its final metadata, with the measurements, is written.
    """

    def __init__(self, artifact: Path, threads: int = 2, meta: dict[str, Any] | None = None) -> None:
        self.meta = meta if meta is not None else read_metadata(artifact)
        version = self.meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{artifact}: metadata format_version {version!r}, this code reads {FORMAT_VERSION}; "
                "rebuild the artifact with `python -m model train`, or use the code version that built it"
            )
        self.labels: list[str] = list(self.meta["labels"])
        self.tok = Tokenizer.from_file(str(artifact / TOKENIZER_FILE))
        # The metadata's max_length is the contract; the tokenizer file's own setting may differ.
        self.tok.enable_truncation(max_length=int(self.meta["max_length"]))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(str(artifact / MODEL_FILE), opts, providers=["CPUExecutionProvider"])
        outputs = {o.name: o.shape for o in self.sess.get_outputs()}
        if set(outputs) != {"probabilities", "attention"}:
            raise ArtifactError(f"{artifact}: {MODEL_FILE} has outputs {sorted(outputs)}, expected probabilities and attention; rebuild it")
        classes = outputs["probabilities"][-1]
        if isinstance(classes, int) and classes != len(self.labels):
            raise ArtifactError(
                f"{artifact}: {MODEL_FILE} gives {classes} class probabilities but metadata lists {len(self.labels)} "
                f"labels {self.labels}; the files come from different builds, rebuild the artifact"
            )
        self.pad_id = int(self.meta["model_config"]["pad_id"])
        self.unk_id = self.tok.token_to_id("[UNK]") or 0

    def __call__(self, texts: list[str], batch_size: int = 64) -> Outputs:
        encs = self.tok.encode_batch(texts)
        ids = [e.ids or [self.unk_id] for e in encs]
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        attn: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(texts)
        order = np.argsort([len(s) for s in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, m = right_pad([ids[i] for i in idx], self.pad_id)  # (B, T) each
            p, a = self.sess.run(["probabilities", "attention"], {"input_ids": x, "attention_mask": m})
            probs[idx] = p
            for r, i in enumerate(idx):
                attn[i] = a[r, : len(ids[i])]
        return Outputs(probs, attn, [e.tokens or ["[UNK]"] for e in encs])
