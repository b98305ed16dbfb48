"""bench/cpu.py against a real child process whose second thread burns CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.cpu import CpuSplit, thread_seconds, workers_of

BURN = """
import threading, time
def burn():
    end = time.monotonic() + 30
    while time.monotonic() < end:
        pass
threading.Thread(target=burn, daemon=True).start()
time.sleep(30)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_cpu_split_puts_a_busy_worker_thread_on_the_engine_side() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        time.sleep(0.3)
        assert child.pid in workers_of(os.getpid())
        before = thread_seconds([child.pid])
        time.sleep(2.0)
        split = CpuSplit.between(before, thread_seconds([child.pid]))
        assert split.engine_s > 0.3  # the burning thread: 2 s of it, however loaded the machine is
        assert split.loop_s < 0.1 < split.engine_s  # the sleeping main thread used almost nothing
    finally:
        child.kill()
        child.wait()


def test_workers_of_a_process_without_children_is_itself() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert workers_of(child.pid) == [child.pid]
    finally:
        child.kill()
        child.wait()
