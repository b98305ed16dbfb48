"""Usable CPUs: the affinity set capped by a cgroup CPU quota, read from cgroup files laid out as
v2 and v1 kernels write them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.cpus import cgroup_quota, usable_cpus
from service.settings import Settings


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "200000 100000"}, 2.0),
        ({"cpu.max": "150000 100000"}, 1.5),
        ({"cpu.max": "max 100000"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"}, 0.5),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "300000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 3.0),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({"cpu.max": "garbage"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota_v1_and_v2_files(tmp_path: Path, files: dict[str, str], quota: float | None) -> None:
    assert cgroup_quota(_write(tmp_path, files)) == quota


def test_usable_cpus_capped_by_the_quota_rounded_up(tmp_path: Path) -> None:
    mine = len(os.sched_getaffinity(0))
    assert usable_cpus(_write(tmp_path / "none", {"cpu.max": "max 100000"})) == mine
    assert usable_cpus(_write(tmp_path / "half", {"cpu.max": "50000 100000"})) == 1
    assert usable_cpus(_write(tmp_path / "big", {"cpu.max": f"{100000 * (mine + 8)} 100000"})) == mine
    assert usable_cpus(_write(tmp_path / "frac", {"cpu.max": "150000 100000"})) == min(mine, 2)


def test_threads_per_worker_split_the_usable_cpus() -> None:
    # a 2-CPU limit on a many-core node: one onnxruntime thread per worker, not cores ÷ workers
    assert Settings(workers=2, intra_op_threads=0).threads_per_worker(cpus=2) == 1
    assert Settings(workers=4, intra_op_threads=0).threads_per_worker(cpus=2) == 1  # at least one
    assert Settings(workers=1, intra_op_threads=0).threads_per_worker(cpus=8) == 8
    assert Settings(workers=2, intra_op_threads=3).threads_per_worker(cpus=2) == 3  # set: as set


def test_cgroup_quota_v2_of_the_process_own_cgroup_or_an_ancestor(tmp_path: Path) -> None:
    # Seen with the host's cgroup namespace, or under a systemd CPUQuota=: the limit is not at the root.
    root = _write(
        tmp_path / "fs", {"cpu.max": "max 100000", "system.slice/cpu.max": "150000 100000", "system.slice/app.scope/cpu.max": "max 100000"}
    )
    proc = tmp_path / "cgroup"
    proc.write_text("0::/system.slice/app.scope\n")
    assert cgroup_quota(root, proc) == 1.5  # the parent's limit holds for its child
    (root / "system.slice/app.scope/cpu.max").write_text("50000 100000\n")
    assert cgroup_quota(root, proc) == 0.5  # the smallest on the way up
    proc.write_text("0::/\n")  # a container's own namespace: itself at the root
    assert cgroup_quota(root, proc) is None
