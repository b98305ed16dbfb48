"""`python -m bench.run`: the service vs a naive endpoint vs the in-process ceiling, in one run.

Starts both servers on the same artifact with the same number of worker processes, drives each
with wrk (a Lua script cycling through real test-split texts) at several concurrencies, for
single-text and 32-text requests, and right before and right after each service point measures
the onnxruntime ceiling at the batch size the service formed (this machine's speed drifts by ±15%
over minutes, so each ratio compares numbers taken seconds apart, on both sides of the point).
Prints the table and writes docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.ceiling import ceiling
from bench.cpu import CpuSplit, thread_seconds, workers_of
from bench.wrk import lua_script, wrk
from service.settings import Settings

BATCHING = ("max_batch_size", "max_run_size", "max_batch_tokens", "max_wait_ms", "split_cost_tokens")

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    server: str
    scenario: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    texts_per_request: int
    mean_batch: float | None = None
    ceilings: tuple[float, float] | None = None  # in-process texts/s at the mean batch, (before, after)
    cpu: CpuSplit | None = None  # the service's CPU during the run

    @property
    def ceiling(self) -> float | None:
        """The mean of the ceiling measured before and after the point."""
        return sum(self.ceilings) / 2 if self.ceilings else None

    @property
    def texts_per_s(self) -> float:
        return self.rps * self.texts_per_request


def test_texts(n: int) -> list[str]:
    from model.data import load_rotten_tomatoes
    from model.split import grouped_split

    return [e.text for e in grouped_split(load_rotten_tomatoes(ROOT / ".cache")).test][:n]


def batch_counts(url: str) -> tuple[float, float]:
    text = httpx.get(url + "/metrics").text
    s = re.search(r"^sentiment_batch_size_texts_sum (\S+)", text, re.M)
    c = re.search(r"^sentiment_batch_size_texts_count (\S+)", text, re.M)
    return (float(s.group(1)) if s else 0.0), (float(c.group(1)) if c else 0.0)


def mean_batch(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Texts per engine call between two batch_counts readings."""
    return (after[0] - before[0]) / max(1.0, after[1] - before[1])


def whole_batch(mean: float) -> int:
    """The batch size the ceiling runs at for a service's mean batch size."""
    return max(1, round(mean))


def start(cmd: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    """Only the settings given here: none from the caller's SENTIMENT_* variables, and none from a
    .env file in the repository (the server runs in the log's folder, which has none)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMENT_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH", "")]))  # bench.naive_app
    proc = subprocess.Popen(cmd, cwd=log.parent, env={**clean, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            if httpx.get(url + ("/readyz" if "service" in cmd else "/docs")).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{cmd} did not become ready; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifact", type=Path, default=ROOT / "artifacts/default")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per worker")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/BENCHMARKS.md")
    a = ap.parse_args()
    a.artifact = a.artifact.resolve()  # the servers run in a temporary folder
    concs = [int(c) for c in a.concurrency.split(",")]
    texts = test_texts(1000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    scenarios = {"single": 1, "batch32": 32}
    # Each scenario's texts, which its ceiling runs on too.
    sent = {"single": texts[:400], "batch32": texts[: 32 * 30]}
    lua_script([json.dumps({"text": t}) for t in sent["single"]], tmp / "single.lua")
    lua_script([json.dumps({"texts": sent["batch32"][i : i + 32]}) for i in range(0, 32 * 30, 32)], tmp / "batch32.lua")

    def ceiling_at(scenario: str, mean: float) -> float:
        return ceiling(a.artifact, sent[scenario], whole_batch(mean), a.workers, a.threads)

    runs: list[Run] = []
    svc_env = {
        "SENTIMENT_ARTIFACT": str(a.artifact),
        "SENTIMENT_PORT": "18080",
        "SENTIMENT_WORKERS": str(a.workers),
        "SENTIMENT_INTRA_OP_THREADS": str(a.threads),
        "SENTIMENT_LOG_LEVEL": "warning",
    }
    naive_env = {"NAIVE_ARTIFACT": str(a.artifact), "NAIVE_THREADS": str(a.threads)}
    servers = {
        "service": ([sys.executable, "-m", "service", "serve"], svc_env, "http://127.0.0.1:18080"),
        "naive": (
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bench.naive_app:create",
                "--port",
                "18081",
                "--workers",
                str(a.workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            naive_env,
            "http://127.0.0.1:18081",
        ),
    }
    # Both servers up at once (the idle one costs nothing), each point measured on one right after
    # the other: this machine's speed drifts by ±15% over minutes, and "vs naive" is a ratio.
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (cmd, env, url) in servers.items():
            procs[name] = start(cmd, env, url, tmp / f"{name}.log")
        for scen, n in scenarios.items():
            for c in concs:
                for name, (_, _, url) in servers.items():
                    proc = procs[name]
                    warm = batch_counts(url) if name == "service" else (0.0, 0.0)
                    wrk(url, tmp / f"{scen}.lua", c, 2)  # warm-up, discarded
                    before = batch_counts(url) if name == "service" else (0.0, 0.0)
                    if name == "service":  # the ceiling before, at the warm-up's batch size
                        first = ceiling_at(scen, mean_batch(warm, before))
                    cpu_before = thread_seconds(workers_of(proc.pid))
                    rps, p50, p99, err = wrk(url, tmp / f"{scen}.lua", c, a.seconds)
                    r = Run(name, scen, c, rps, p50, p99, err, n)
                    if name == "service":
                        r.cpu = CpuSplit.between(cpu_before, thread_seconds(workers_of(proc.pid)))
                        after = batch_counts(url)
                        r.mean_batch = mean_batch(before, after)
                        r.ceilings = (first, ceiling_at(scen, r.mean_batch))
                    runs.append(r)
                    line = f"{name:8} {scen:8} c={c:<3} {rps:9.1f} req/s {r.texts_per_s:9.1f} texts/s"
                    top = f" ceiling {r.ceiling:.0f} texts/s (before/after {r.ceilings[0]:.0f}/{r.ceilings[1]:.0f})" if r.ceilings else ""
                    print(f"{line} p50 {p50:7.2f} ms p99 {p99:7.2f} ms errors {err}{top}", flush=True)
    finally:
        for proc in procs.values():
            stop(proc)

    report = render(runs, a)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(report)
    print(report)


def _failed(r: Run) -> str:
    return f", but {r.errors} requests failed: not a valid point" if r.errors else ""


def render(runs: list[Run], a: argparse.Namespace) -> str:
    import onnxruntime as ort

    naive = {(r.scenario, r.concurrency): r for r in runs if r.server == "naive"}
    meta = json.loads((a.artifact / "metadata.json").read_text())
    lines = [
        "# Benchmarks",
        "",
        "Regenerate with `make bench` (runs `python -m bench.run`); every number below comes from one run.",
        "",
        f"- Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), {platform.system()} {platform.release()}; "
        "wrk runs on the same machine and takes CPU from the servers.",
        f"- Versions: Python {platform.python_version()}, onnxruntime {ort.__version__}, model {meta['name']} {meta['version']} "
        f"({meta['model_config']['cell']}, hidden {meta['model_config']['hidden_size']}).",
        f"- Settings: {a.workers} worker processes × {a.threads} onnxruntime thread(s) for both servers; {a.seconds} s per point "
        "after a 2 s warm-up; texts from the test split (mean ≈ 25 tokens): 400 single texts, 30 requests of 32; "
        "req/s counts answered (2xx) requests only. The service's batching at its defaults: "
        + ", ".join(f"{k} {Settings.model_fields[k].default}" for k in BATCHING)
        + " (max_run_size 0: 16 texts per onnxruntime run on a CPU).",
        "- naive: a FastAPI endpoint that runs the model once per request (no batching), `bench/naive_app.py`; each of its "
        "points is measured right after the service's same point (both servers up, the idle one costs nothing).",
        "- ceiling: onnxruntime called in-process in the same topology on the point's own texts, length-sorted batches at the "
        "service's mean batch size, measured for 5 s right before the point (at the warm-up's batch size) and 5 s right "
        "after it; the mean of both (the machine's speed drifts by ±15% over minutes).",
        "- CPU µs per text: the service workers' CPU time during the point (from /proc, `bench/cpu.py`) per text answered, "
        "split into the event-loop threads (HTTP, validation, tokenising, batching, answers) and the engine threads (onnxruntime).",
        "",
        "| requests | c | server | req/s | texts/s | p50 ms | p99 ms | errors | mean batch | vs naive | % of ceiling "
        "| CPU µs/text: loop + engine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        base = naive.get((r.scenario, r.concurrency))
        ratio = f"{r.texts_per_s / base.texts_per_s:.2f}×" if base and r.server == "service" else ""
        ceil = r.ceiling
        pct = f"{100 * r.texts_per_s / ceil:.0f}% of {ceil:.0f}" if ceil and r.server == "service" else ""
        mb = f"{r.mean_batch:.1f}" if r.mean_batch is not None else ""
        texts = r.texts_per_s * a.seconds
        cpu = f"{1e6 * r.cpu.loop_s / texts:.0f} + {1e6 * r.cpu.engine_s / texts:.0f}" if r.cpu and texts else ""
        cells = [r.scenario, r.concurrency, r.server, f"{r.rps:.1f}", f"{r.texts_per_s:.1f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}"]
        lines.append("| " + " | ".join(str(c) for c in [*cells, r.errors, mb, ratio, pct, cpu]) + " |")
    lines += ["", "## Against the targets (computed from the table above)", ""]
    svc = {(r.scenario, r.concurrency): r for r in runs if r.server == "service"}
    s64, n64 = svc.get(("single", 64)), naive.get(("single", 64))
    if s64 and n64:
        x = s64.texts_per_s / n64.texts_per_s
        met = "met" if x >= 1.5 else "NOT met"
        lines.append(f"- single text, c=64: {x:.3f}× the naive endpoint (target ≥ 1.5×: {met}), ")
        lines[-1] += f"p99 {s64.p99_ms:.1f} ms (target ≤ 50 ms: {'met' if s64.p99_ms <= 50 else 'NOT met'})" + _failed(s64) + "."
    for c in (16, 64):
        b32 = svc.get(("batch32", c))
        top = b32.ceiling if b32 else None
        if b32 and top:
            share = 100 * b32.texts_per_s / top
            met = "met" if share >= 80 else "NOT met"
            lines.append(f"- 32-text requests, c={c}: {share:.1f}% of the in-process ceiling (target ≥ 80%: {met}){_failed(b32)}.")
    for r in runs:
        if r.ceiling and r.ceilings and r.mean_batch:
            per_text = 1e6 * a.workers / r.ceiling
            where = f"around {r.scenario} c={r.concurrency}, batch {whole_batch(r.mean_batch)}"
            spread = f"before {r.ceilings[0]:.0f}, after {r.ceilings[1]:.0f}"
            lines.append(f"- ceiling {where}: {r.ceiling:.0f} texts/s ({spread}) = {per_text:.0f} µs of CPU per text.")
    lines += ["", "Where the time goes is in docs/PERFORMANCE.md."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
