"""service/metrics.py in multiprocess mode, with real processes writing the shared files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.metrics import Metrics

WORKER = """
import sys, time
from service.metrics import Metrics
Metrics(sys.argv[1]).ready.set(int(sys.argv[2]))
print("set", flush=True)
time.sleep(30)
"""


def _worker(metrics_dir: Path, ready: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    p = subprocess.Popen([sys.executable, "-c", WORKER, str(metrics_dir), str(ready)], env=env, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "set"
    return p


def test_ready_workers_counts_live_processes_that_report_ready(tmp_path: Path) -> None:
    reader = Metrics(str(tmp_path))
    procs = [_worker(tmp_path, 1), _worker(tmp_path, 0)]
    try:
        assert reader.ready_workers() == 1  # one warmed up, one still warming
        procs.append(three := _worker(tmp_path, 1))
        assert reader.ready_workers() == 2
        three.kill()
        three.wait()
        reader.mark_process_dead(three.pid)  # what each worker does when it stops
        assert reader.ready_workers() == 1
    finally:
        for p in procs:  # none left sleeping behind a failed assertion
            p.kill()
            p.wait()


def test_ready_workers_is_none_with_one_process() -> None:
    assert Metrics(None).ready_workers() is None
