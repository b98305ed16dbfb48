"""service/server.py's pure parts and its signal handler; the process behaviour is in
test_server_behaviour.py."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from service.app import State
from service.cpus import usable_cpus
from service.metrics import Metrics
from service.server import DUPLICATE_SIGNAL_S, METRICS_DIR_PREFIX, DrainingServer, cpu_shares, remove_stale_metrics_dirs, with_threads
from service.settings import Settings


def test_cpu_shares_one_contiguous_share_per_worker() -> None:
    assert cpu_shares({0, 1}, 2) == [{0}, {1}]
    assert cpu_shares({4, 5, 6}, 2) == [{4, 5}, {6}]
    assert cpu_shares(set(range(16)), 4) == [set(range(i, i + 4)) for i in (0, 4, 8, 12)]


def test_with_threads_fixes_the_count_in_the_launcher() -> None:
    s = with_threads(Settings(workers=2, intra_op_threads=0))
    assert s.intra_op_threads == max(1, usable_cpus() // 2)
    # A worker pinned to its share (one CPU here, say) keeps that count: it does not divide its
    # own share by the number of workers again.
    assert s.threads_per_worker(cpus=1) == s.intra_op_threads
    assert with_threads(Settings(workers=2, intra_op_threads=3)).intra_op_threads == 3


def test_cpu_shares_none_when_pinning_cannot_help() -> None:
    assert cpu_shares({0}, 2) is None  # more workers than CPUs
    assert cpu_shares({0, 1, 2, 3}, 1) is None  # one worker keeps every CPU


async def no_app(scope: object, receive: object, send: object) -> None:  # never loaded: these tests serve nothing
    raise AssertionError("not served")


def draining_server(shutdown_delay_s: float) -> tuple[DrainingServer, State]:
    settings = Settings(shutdown_delay_s=shutdown_delay_s)
    state = State(settings=settings, metrics=Metrics())
    return DrainingServer(uvicorn.Config(app=no_app), settings, state.start_draining), state


def test_draining_server_signal_during_a_metric_update_drains_without_deadlock() -> None:
    """A signal handler runs in the main thread between two bytecodes, here while the thread
    holds the `ready` gauge's lock (prometheus-client's locks are not reentrant; in multiprocess
    mode one lock guards every metric, held for each update under load). Setting the gauge
    inside the handler waited for a lock its own thread held: the worker hung for good."""
    server, state = draining_server(0.0)
    lock = state.metrics.ready._value._lock  # type: ignore[attr-defined]

    async def scenario() -> float:
        lock.acquire()  # the main thread is inside a metric update...
        valve = threading.Timer(3.0, lock.release)  # (so that a regression fails instead of hanging)
        valve.start()
        start = time.monotonic()
        server.handle_exit(signal.SIGTERM, None)  # ...when the signal lands
        took = time.monotonic() - start
        valve.cancel()
        if lock.locked():
            lock.release()  # the update finishes
        for _ in range(100):
            if server.should_exit:
                break
            await asyncio.sleep(0.01)
        return took

    took = asyncio.run(scenario())
    assert took < 1.0, f"the signal handler waited {took:.1f}s for a lock its own thread held"
    assert state.draining and state.metrics.ready._value.get() == 0  # type: ignore[attr-defined]
    assert server.should_exit  # after shutdown_delay_s (0 here)


def test_draining_server_second_signal_exits_now() -> None:
    server, state = draining_server(60.0)

    async def scenario() -> None:
        server.handle_exit(signal.SIGTERM, None)
        await asyncio.sleep(0.05)
        assert state.draining and not server.should_exit  # still serving for shutdown_delay_s
        server.signalled_at -= DUPLICATE_SIGNAL_S  # a second later
        server.handle_exit(signal.SIGTERM, None)

    asyncio.run(scenario())
    assert server.should_exit


def test_draining_server_same_signal_twice_within_a_second_is_one_stop() -> None:
    # A kill of the whole process group: the worker gets SIGTERM directly and, at once, again
    # from the launcher. That must not cut the shutdown delay short.
    server, state = draining_server(60.0)

    async def scenario() -> None:
        server.handle_exit(signal.SIGTERM, None)
        server.handle_exit(signal.SIGTERM, None)
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert state.draining and not server.should_exit


def test_draining_server_signal_without_a_running_loop_just_exits() -> None:
    server, state = draining_server(60.0)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit and not state.draining


def test_remove_stale_metrics_dirs_only_those_of_dead_launchers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead, live = int(done.stdout), os.getpid()  # a pid that has exited (reuse within the test: unlikely)
    stale = tmp_path / f"{METRICS_DIR_PREFIX}{dead}-abc"
    mine = tmp_path / f"{METRICS_DIR_PREFIX}{live}-def"
    other = tmp_path / "sentiment-metrics-xyz"  # not ours to judge: no pid in the name
    for d in (stale, mine, other):
        d.mkdir()
    remove_stale_metrics_dirs()
    assert not stale.exists() and mine.exists() and other.exists()
