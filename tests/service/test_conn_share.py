"""The connection share's rule, on a plain list standing in for the array the workers share."""

from __future__ import annotations

from service.conn_share import ConnectionShare, mark_dead


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
