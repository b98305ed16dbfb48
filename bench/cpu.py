"""Where a server's CPU goes, from /proc (Linux): per-thread CPU time of its worker processes.

Each service worker has an event-loop thread (its main thread: HTTP, validation, tokenising,
batching, answers) and an engine thread (onnxruntime); anything else is small. Reading the
kernel's accounting before and after a load run splits the CPU per request between them without
instrumenting the server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def workers_of(parent: int) -> list[int]:
    """The parent's child processes (the workers), or the parent itself when it has none."""
    kids = []
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:  # field 4 of stat: ppid
            kids.append(int(stat.parent.name))
    return sorted(kids) or [parent]


def thread_seconds(pids: list[int]) -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) of every thread of these processes, by (pid, tid)."""
    out = {}
    for pid in pids:
        for task in (PROC / str(pid) / "task").glob("[0-9]*"):
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[(pid, int(task.name))] = (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime
    return out


@dataclass
class CpuSplit:
    loop_s: float  # the workers' main threads
    engine_s: float  # each worker's busiest other thread
    other_s: float

    @classmethod
    def between(cls, before: dict[tuple[int, int], float], after: dict[tuple[int, int], float]) -> CpuSplit:
        used = {k: v - before.get(k, 0.0) for k, v in after.items()}
        loop = sum(v for (pid, tid), v in used.items() if pid == tid)
        busiest: dict[int, float] = {}
        for (pid, tid), v in used.items():
            if pid != tid:
                busiest[pid] = max(busiest.get(pid, 0.0), v)
        engine = sum(busiest.values())
        return cls(loop, engine, sum(used.values()) - loop - engine)
