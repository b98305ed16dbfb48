"""How many CPUs this process may really use: its affinity set, capped by a cgroup CPU quota.

`os.cpu_count()` is the machine's count. In a container with a CPU limit (Docker's `cpus:`, a
Kubernetes `limits.cpu`) on a 64-core node it still says 64, and onnxruntime threads sized by it
(32 per worker for two workers) would be throttled to the quota, in bursts, with latency spikes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cgroup_quota(root: Path = CGROUP) -> float | None:
    """CPUs' worth of time per period the cgroup may use, or None without a limit.
    cgroup v2: `cpu.max` ("max 100000" or "200000 100000"); v1: `cpu.cfs_quota_us` (-1: none)
    over `cpu.cfs_period_us`."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
            period_us = int((v1 / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None


def usable_cpus(root: Path = CGROUP) -> int:
    """The CPUs this process may run on, at most the cgroup quota rounded up (at least 1)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_quota(root)
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)
