"""The connection share's rule, on a plain list standing in for the array the workers share; then
on a real two-worker server."""

from __future__ import annotations

import concurrent.futures as cf
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from service.conn_share import DEAD, ConnectionShare, mark_dead
from tests.service.conftest import Server

StartServer = Callable[..., Server]


class Count:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


def _live(counts: list[int], index: int, **kw: Any) -> ConnectionShare:
    share = ConnectionShare(counts, index, **kw)
    share.live()
    return share


def test_connection_share_publishes_its_count_once_listening() -> None:
    counts, gauge = [DEAD, 5], Count()
    share = ConnectionShare(counts, 0, gauge=gauge)
    share.opened()  # a connection before the worker counts as listening (uvicorn's start-up)
    assert counts == [DEAD, 5]  # the other worker does not make room for it yet
    share.live()
    assert counts == [1, 5]
    share.opened()
    share.closed()
    assert counts == [1, 5]
    assert gauge.value == 1


def test_connection_share_closes_only_above_its_fair_share() -> None:
    counts, closes = [0, 0], Count()
    share = _live(counts, 0, closes=closes)
    counts[:] = [33, 31]
    assert share.should_close(10.0)
    assert closes.value == 1
    counts[:] = [32, 32]  # the client reconnected to the other worker
    assert not share.should_close(20.0)
    counts[:] = [33, 32]  # 65 connections: 33 is this worker's fair share (rounded up)
    assert not share.should_close(30.0)


def test_connection_share_closes_at_most_once_per_cooldown() -> None:
    counts = [0, 0]
    share = _live(counts, 0, cooldown_s=0.05)
    counts[:] = [40, 24]
    assert share.should_close(1.0)
    assert not share.should_close(1.04)  # still cooling down, though still above its share
    assert share.should_close(1.051)


def test_connection_share_never_closes_when_off_alone_or_not_listening() -> None:
    counts, alone_counts = [0, 0], [0]
    off, other, alone = _live(counts, 0, rebalance=False), _live(counts, 1), _live(alone_counts, 0)
    starting = ConnectionShare(counts, 0)
    counts[:], alone_counts[:] = [40, 24], [40]
    assert not off.should_close(1.0)
    assert not other.should_close(1.0)  # below its share: the other worker's business
    assert not alone.should_close(1.0)
    assert not starting.should_close(1.0)


def test_connection_share_leaves_dead_workers_out_of_the_fair_share() -> None:
    counts = [0, 0]
    share = _live(counts, 0)
    counts[:] = [8, 4]  # the second worker is killed holding 4 connections
    assert share.should_close(1.0)  # 8 > (8 + 4) / 2: it would make room for the dead one
    mark_dead(counts, 1)
    assert not share.should_close(2.0)  # alone, all 8 are its share


def test_two_workers_keep_alive_connections_settle_evenly(start_server: StartServer) -> None:
    s = start_server(workers=2)  # ready: both workers listen
    s.client.close()  # its idle keep-alive connection would count in one worker's share
    # 16 keep-alive clients: the kernel deals their connections to the workers by a hash of the
    # addresses (an even 8/8 only 1 time in 5). A worker above its share answers one request with
    # `Connection: close`, now and then, until the clients' reconnections even out.
    clients = [httpx.Client(base_url=s.url, limits=httpx.Limits(max_connections=1)) for _ in range(16)]
    last = [0] * len(clients)
    done = threading.Event()

    def keep_asking(k: int) -> None:
        while not done.is_set():
            last[k] = int(clients[k].get("/healthz").json()["pid"])
            time.sleep(0.005)

    try:
        with cf.ThreadPoolExecutor(len(clients)) as pool:
            running = [pool.submit(keep_asking, k) for k in range(len(clients))]
            end = time.monotonic() + 15
            while time.monotonic() < end and not (all(last) and sorted(Counter(last).values()) == [8, 8]):
                time.sleep(0.1)
            done.set()
            for f in running:
                f.result()
        per_worker = sorted(Counter(last).values())
        m = clients[0].get("/metrics").text  # on a connection already counted
    finally:
        done.set()
        for c in clients:
            c.close()
    assert per_worker == [8, 8], per_worker
    gauges = re.findall(r"sentiment_open_connections\{[^}]*\} (\S+)", m)
    assert sorted(float(g) for g in gauges) == [8.0, 8.0], gauges


def test_websocket_upgrade_request_leaves_the_connection_count_right(start_server: StartServer) -> None:
    s = start_server()
    with socket.create_connection(("127.0.0.1", s.port)) as raw:
        raw.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        assert raw.recv(65536).startswith(b"HTTP/1.1 200")  # served as plain HTTP: no websocket routes
    end = time.monotonic() + 5  # until the server hears the close
    while (gauge := re.findall(r"^sentiment_open_connections (\S+)", s.client.get("/metrics").text, re.M)) != ["1.0"]:
        assert time.monotonic() < end, gauge  # our metrics client's own connection is the only one open
        time.sleep(0.05)
