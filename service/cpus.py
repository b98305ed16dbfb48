"""How many CPUs this process may really use: its affinity set, capped by a cgroup CPU quota.

`os.cpu_count()` is the machine's count. In a container with a CPU limit (Docker's `cpus:`, a
Kubernetes `limits.cpu`) on a 64-core node it still says 64, and onnxruntime threads sized by it
(32 per worker for two workers) would be throttled to the quota, in bursts, with latency spikes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath

CGROUP = Path("/sys/fs/cgroup")


def _v2_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """This process's cgroup v2 folder and its ancestors up to the root. A container with its own
    cgroup namespace sees itself at the root ("0::/"); with the host's (or under a systemd
    `CPUQuota=`) the limit sits on a folder further down."""
    try:
        own = next((line[3:] for line in proc_cgroup.read_text().splitlines() if line.startswith("0::")), "/")
    except OSError:
        own = "/"
    parts = PurePosixPath(own).parts[1:]
    return [root.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]


def cgroup_quota(root: Path = CGROUP, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs' worth of time per period the cgroup may use, or None without a limit.
    cgroup v2: `cpu.max` ("max 100000" or "200000 100000") of this process's cgroup or any
    ancestor, the smallest; v1: `cpu.cfs_quota_us` (-1: none) over `cpu.cfs_period_us`."""
    found, quotas = False, []
    for folder in _v2_dirs(root, proc_cgroup):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            found = True
            if quota != "max":
                quotas.append(int(quota) / int(period))
        except (OSError, ValueError):
            continue
    if found:
        return min(quotas, default=None)
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
            period_us = int((v1 / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None


def usable_cpus(root: Path = CGROUP, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """The CPUs this process may run on, at most the cgroup quota rounded up (at least 1)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_quota(root, proc_cgroup)
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)
