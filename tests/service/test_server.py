"""service/server.py's pure parts; the process behaviour is in test_server_behaviour.py."""

from __future__ import annotations

from service.server import cpu_shares


def test_cpu_shares_one_contiguous_share_per_worker() -> None:
    assert cpu_shares({0, 1}, 2) == [{0}, {1}]
    assert cpu_shares({4, 5, 6}, 2) == [{4, 5}, {6}]
    assert cpu_shares(set(range(16)), 4) == [set(range(i, i + 4)) for i in (0, 4, 8, 12)]


def test_cpu_shares_none_when_pinning_cannot_help() -> None:
    assert cpu_shares({0}, 2) is None  # more workers than CPUs
    assert cpu_shares({0, 1, 2, 3}, 1) is None  # one worker keeps every CPU
