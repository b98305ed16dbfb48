"""The connection share's rule, on a plain list standing in for the array the workers share; then
on a real two-worker server."""

from __future__ import annotations

import concurrent.futures as cf
import re
import time
from collections import Counter
from collections.abc import Callable

import httpx

from service.conn_share import ConnectionShare, mark_dead
from tests.service.conftest import Server

StartServer = Callable[..., Server]


class Count:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


def test_connection_share_counts_its_own_slot_and_gauge() -> None:
    counts, gauge = [0, 5], Count()
    share = ConnectionShare(counts, 0, gauge=gauge)
    share.opened()
    share.opened()
    share.closed()
    assert counts == [1, 5]
    assert gauge.value == 1


def test_connection_share_closes_only_above_its_fair_share() -> None:
    counts, closes = [0, 0], Count()
    share = ConnectionShare(counts, 0, closes=closes)
    counts[:] = [33, 31]
    assert share.should_close(10.0)
    assert closes.value == 1
    counts[0] = 32  # the client reconnected to the other worker
    counts[1] = 32
    assert not share.should_close(20.0)
    counts[:] = [33, 32]  # 65 connections: 33 is this worker's fair share (rounded up)
    assert not share.should_close(30.0)


def test_connection_share_closes_at_most_once_per_cooldown() -> None:
    counts = [0, 0]
    share = ConnectionShare(counts, 0, cooldown_s=0.05)
    counts[:] = [40, 24]
    assert share.should_close(1.0)
    assert not share.should_close(1.04)  # still cooling down, though still above its share
    assert share.should_close(1.051)


def test_connection_share_never_closes_when_off_or_alone() -> None:
    counts, alone_counts = [0, 0], [0]
    off, other, alone = ConnectionShare(counts, 0, rebalance=False), ConnectionShare(counts, 1), ConnectionShare(alone_counts, 0)
    counts[:], alone_counts[:] = [40, 24], [40]
    assert not off.should_close(1.0)
    assert not other.should_close(1.0)  # below its share: the other worker's business
    assert not alone.should_close(1.0)


def test_connection_share_leaves_dead_workers_out_of_the_fair_share() -> None:
    counts = [-1, 4]
    share = ConnectionShare(counts, 0)  # a replaced worker's slot: dead until its successor starts
    assert counts == [0, 4]
    counts[0] = 8  # then the second worker is killed holding 4 connections
    assert share.should_close(1.0)  # 8 > (8 + 4) / 2, so it would make room for the dead one
    mark_dead(counts, 1)
    assert not share.should_close(2.0)  # alone, all 8 are its share


def test_two_workers_keep_alive_connections_settle_evenly(start_server: StartServer) -> None:
    s = start_server(workers=2)
    s.client.close()  # its idle keep-alive connection would count in one worker's share
    # 16 keep-alive clients: the kernel deals their connections to the workers by a hash of the
    # addresses (an even 8/8 only 1 time in 5). A worker above its share answers one request with
    # `Connection: close`, now and then, until the clients' reconnections even out.
    clients = [httpx.Client(base_url=s.url, limits=httpx.Limits(max_connections=1)) for _ in range(16)]
    end = time.monotonic() + 3.0

    def keep_asking(c: httpx.Client) -> int:
        pid = 0
        while time.monotonic() < end:
            pid = c.get("/healthz").json()["pid"]
            time.sleep(0.005)
        return int(pid)

    try:
        with cf.ThreadPoolExecutor(len(clients)) as pool:
            last_pids = list(pool.map(keep_asking, clients))
        per_worker = sorted(Counter(last_pids).values())
        m = clients[0].get("/metrics").text  # on a connection already counted
    finally:
        for c in clients:
            c.close()
    assert per_worker == [8, 8], per_worker
    gauges = re.findall(r"sentiment_open_connections\{[^}]*\} (\S+)", m)
    assert sorted(float(g) for g in gauges) == [8.0, 8.0], gauges
