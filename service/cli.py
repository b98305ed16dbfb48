"""`python -m service serve|predict`. Settings come from SENTIMENT_* variables (or .env); the
flags below override the few that are handy on a command line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from service.errors import ServiceError
from service.settings import Settings


def _settings(a: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {k: v for k in ("artifact", "host", "port", "workers", "device") if (v := getattr(a, k, None)) is not None}
    return Settings(**overrides)


def _serve(a: argparse.Namespace) -> None:
    from service import logs
    from service.model_files import Metadata
    from service.server import serve

    s = _settings(a)
    logs.configure(s.log_level)
    Metadata.load(s.artifact)  # a missing or broken artifact: a one-line error, not a traceback
    serve(s)


def _predict(a: argparse.Namespace) -> None:
    """Runs the model in this process (no server): label, score and the most-attended tokens."""
    from service.app import State, build_predictor
    from service.metrics import Metrics

    s = _settings(a).model_copy(update={"warmup_runs": 0, "workers": 1})

    async def go() -> bytes:
        p = build_predictor(s, State(settings=s, metrics=Metrics()))
        p.batcher.start()
        try:
            return await p.predict(a.texts)
        finally:
            await p.batcher.close(5.0)

    out = orjson.loads(asyncio.run(go()))  # the answer's JSON, as /predict sends it
    for text, pred in zip(a.texts, out["predictions"], strict=True):
        top = sorted(pred["tokens"], key=lambda t: -t["attention"])[: a.top]
        focus = ", ".join(f"{t['text']!r} {t['attention']:.2f}" for t in top)
        print(f"{pred['label']:>9} {pred['score']:.3f}  {text[:60]!r}  attention: {focus}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, fn, help_ in (
        ("serve", _serve, "serve HTTP"),
        ("predict", _predict, "predict texts from the command line"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--artifact", type=Path)
        p.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"])
        p.set_defaults(func=fn)
        if name == "serve":
            p.add_argument("--host")
            p.add_argument("--port", type=int)
            p.add_argument("--workers", type=int)
        else:
            p.add_argument("texts", nargs="+")
            p.add_argument("--top", type=int, default=3, help="how many most-attended tokens to show")
    a = ap.parse_args(argv)
    try:
        a.func(a)
    except ServiceError as e:
        print(f"error: {e.message}" + (f" ({e.fix})" if e.fix else ""), file=sys.stderr)
        return 2
    return 0
