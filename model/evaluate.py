"""Metrics and the evaluation report (JSON + Markdown + PNG figures)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE over equal-width confidence bins. probs: (N, C), y: (N,)"""
    conf = probs.max(axis=1)  # (N,)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)  # (N,)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def confusion(pred: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)  # rows: true label, columns: predicted
    np.add.at(m, (y, pred), 1)
    return m


def metrics(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    pred = probs.argmax(axis=1)
    cm = confusion(pred, y, len(labels))
    f1s = []
    for k in range(len(labels)):
        tp, fp, fn = cm[k, k], cm[:, k].sum() - cm[k, k], cm[k, :].sum() - cm[k, k]
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {
        "n": len(y),
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(np.mean(f1s)),
        "ece": expected_calibration_error(probs, y),
        "confusion_matrix": cm.tolist(),
    }


def _plot_history(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(ep, [h["loss"] for h in history], marker="o")
    a.set(title="training loss", xlabel="epoch")
    b.plot(ep, [h["train_accuracy"] for h in history], marker="o", label="train")
    b.plot(ep, [h["val_accuracy"] for h in history], marker="o", label="validation")
    b.set(title="accuracy", xlabel="epoch")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_confusion(cm: list[list[int]], labels: list[str], path: Path) -> None:
    import matplotlib.pyplot as plt

    m = np.array(cm)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title="test confusion matrix")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="black" if m[i, j] < m.max() / 2 else "white")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_attention(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(samples), 1, figsize=(10, 1.3 * len(samples) + 0.4))
    for ax, s in zip(np.atleast_1d(axes), samples, strict=True):
        w = np.array(s["attention"])[None, :]  # (1, T)
        ax.imshow(w, cmap="Reds", aspect="auto", vmin=0, vmax=max(w.max(), 1e-6))
        ax.set_xticks(range(len(s["tokens"])), s["tokens"], rotation=60, fontsize=7)
        ax.set_yticks([])
        ax.set_title(f"{s['label']} → {s['predicted']} ({s['score']:.2f})", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(out: Path, report: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    """report.json, report.md and three figures into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    labels = report["labels"]
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot_history(report["history"], out / "training_curves.png")
    _plot_confusion(report["test"]["confusion_matrix"], labels, out / "confusion_matrix.png")
    _plot_attention(samples, out / "attention_examples.png")
    t, b = report["test"], report["baseline"]["test"]
    q = report.get("int8")
    rows = [("model (ONNX)", t)] + ([("model int8 (ONNX)", q["test"])] if q else []) + [("TF-IDF + LR baseline", b)]
    lines = [
        f"# Evaluation: {report['name']} {report['version']}",
        "",
        f"Test split: {t['n']} texts, grouped by movie (no movie in two splits). Labels: {', '.join(labels)}.",
        "",
        "| model | accuracy | macro-F1 | ECE |",
        "| --- | --- | --- | --- |",
        *[f"| {n} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['ece']:.4f} |" for n, m in rows],
        "",
        f"Majority-class accuracy: {report['majority_accuracy']:.4f}. "
        f"Training: {report['training_seconds']:.0f} s, best epoch {report['best_epoch']}. "
        f"ONNX parity (max abs diff): {report['parity']}.",
        "",
        "![training curves](training_curves.png)",
        "![confusion matrix](confusion_matrix.png)",
        "![attention](attention_examples.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
