"""The supervisor of several workers, on real two-worker servers: signals at start-up, a worker
killed while serving, a worker that cannot start."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from service.server import METRICS_DIR_PREFIX, remove_stale_metrics_dirs
from tests.service.conftest import Server

StartServer = Callable[..., Server]


def test_two_workers_killed_worker_is_replaced_and_connections_even_out(start_server: StartServer) -> None:
    s = start_server(workers=2)
    s.client.close()
    clients = [httpx.Client(base_url=s.url, limits=httpx.Limits(max_connections=1)) for _ in range(8)]

    def pid_of(c: httpx.Client) -> int:
        for _ in range(100):
            try:
                return int(c.get("/healthz").json()["pid"])
            except httpx.TransportError:  # its worker was killed: the pool reconnects on the next try
                time.sleep(0.05)  # (a connection made while the dead worker's socket closes is reset)
        raise AssertionError("no worker answered")

    def settled(pids: set[int] | None, timeout: float) -> list[int]:
        """The clients' workers once they are 4/4 over two live workers (not in `pids`, if given)."""
        end = time.monotonic() + timeout
        while True:
            now = [pid_of(c) for c in clients]
            if sorted(Counter(now).values()) == [4, 4] and (pids is None or pids.isdisjoint(now)):
                return now
            assert time.monotonic() < end, now
            time.sleep(0.01)

    try:
        before = settled(None, 10)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)  # it dies holding 4 connections
        after = settled({victim}, 30)
        assert victim not in after and len(set(after) & set(before)) == 1  # the survivor and a new worker
        end = time.monotonic() + 10
        while clients[0].get("/readyz").status_code != 200:  # until the new one has warmed up too
            assert time.monotonic() < end
            time.sleep(0.05)
        m = clients[0].get("/metrics").text
    finally:
        for c in clients:
            c.close()
    assert re.search(rf"worker \d \(pid {victim}\) exited with code -9; starting a new one", s.logs())
    # The dead worker's live gauges went with it: two workers report, not three.
    assert set(re.findall(r'sentiment_model_info\{[^}]*pid="(\d+)"', m)) == {str(p) for p in after}
    assert s.stop() == 0  # replaced, then drained: a clean exit


def test_two_workers_worker_dying_before_it_serves_stops_the_server(start_server: StartServer, tiny_artifact: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_artifact, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    s = start_server(ready=False, workers=2, artifact=broken)
    assert s.proc.wait(60) == 1, s.logs()  # no restart loop: a new worker would die the same way
    assert "could not start serving; stopping the server" in s.logs()


def _bad_pad_artifact(tiny_artifact: Path, tmp_path: Path) -> Path:
    """An artifact that loads, but whose warm-up input (pad id + 1) lies outside the vocabulary."""
    bad = tmp_path / "bad-pad"
    shutil.copytree(tiny_artifact, bad)
    meta = json.loads((bad / "metadata.json").read_text())
    meta["model_config"]["pad_id"] = meta["model_config"]["vocab_size"] - 1
    (bad / "metadata.json").write_text(json.dumps(meta))
    return bad


def test_two_workers_warm_up_failure_stops_the_server(start_server: StartServer, tiny_artifact: Path, tmp_path: Path) -> None:
    s = start_server(ready=False, workers=2, artifact=_bad_pad_artifact(tiny_artifact, tmp_path))
    assert s.proc.wait(60) == 1, s.logs()  # not a worker left up, unready for good, nor a restart loop
    assert "warm-up failed" in s.logs()
    assert "could not start serving; stopping the server" in s.logs()
    assert "starting a new one" not in s.logs()


def test_one_worker_warm_up_failure_exits_as_a_failed_start(start_server: StartServer, tiny_artifact: Path, tmp_path: Path) -> None:
    s = start_server(ready=False, workers=1, artifact=_bad_pad_artifact(tiny_artifact, tmp_path))
    assert s.proc.wait(60) == 3, s.logs()  # uvicorn's start-up failure code


def test_two_workers_second_ctrl_c_stops_without_replacing_workers(start_server: StartServer) -> None:
    s = start_server(own_group=True, workers=2, shutdown_delay_s=5)
    os.killpg(s.proc.pid, signal.SIGINT)  # Ctrl+C: the workers stop being ready, serve 5 s more
    time.sleep(1.5)  # past the second in which a repeat counts as the same signal
    os.killpg(s.proc.pid, signal.SIGINT)  # Ctrl+C again: stop now
    again = time.monotonic()
    s.proc.wait(30)
    assert time.monotonic() - again < 3, s.logs()  # not at the end of the 5 s delay
    # The second Ctrl+C ends the delay, not the drain: its forwarded copy is not a third signal.
    assert s.logs().count('"msg":"stopped"') == 2, s.logs()
    assert "starting a new one" not in s.logs()
    assert s.logs().count("Started server process") == 2  # no replacement worker came up


def test_two_workers_port_in_use_by_another_server_is_refused(start_server: StartServer) -> None:
    first = start_server(workers=2)
    # Its workers' sockets share the port (SO_REUSEPORT): another server's must not join them.
    second = start_server(ready=False, workers=2, port=first.port)
    assert second.proc.wait(60) == 2, second.logs()
    assert f"cannot listen on 127.0.0.1:{first.port}: Address already in use" in second.logs()
    assert first.client.get("/readyz").status_code == 200


def test_two_workers_sigterm_during_start_up_exits_cleanly(start_server: StartServer) -> None:
    s = start_server(ready=False, workers=2)
    end = time.monotonic() + 30
    while "started 2 workers" not in s.logs():  # the workers are being spawned, still importing
        assert time.monotonic() < end, s.logs()
        time.sleep(0.01)
    assert s.stop() == 0, s.logs()


def test_two_workers_ctrl_c_during_warm_up_exits_without_finishing_it(start_server: StartServer) -> None:
    # ~40 minutes of warm-up on the tiny model: the exit must not wait for it (the thread that runs
    # it cannot be cancelled; the interpreter waits for it at exit unless it stops on its own).
    s = start_server(ready=False, own_group=True, workers=2, warmup_runs=250_000)
    end = time.monotonic() + 30
    while s.logs().count("Application startup complete") < 2:  # both workers listen and warm up
        assert time.monotonic() < end, s.logs()
        time.sleep(0.01)
    assert s.client.get("/readyz").status_code == 503  # still warming up
    os.killpg(s.proc.pid, signal.SIGINT)  # what Ctrl+C in a terminal does: the whole group
    assert s.proc.wait(30) == 0, s.logs()
    assert '"ready"' not in s.logs()  # stopped during the warm-up, not after it


def _signal_group_as_workers_start(s: Server, sig: int) -> None:
    """`sig` to the server's whole process group the moment its workers are spawned, while they
    are still importing (before any handler of theirs is in place)."""
    end = time.monotonic() + 30
    while "started 2 workers" not in s.logs():
        assert time.monotonic() < end, s.logs()
        time.sleep(0.002)
    os.killpg(s.proc.pid, sig)


def test_two_workers_group_sigterm_as_they_start_exits_cleanly(start_server: StartServer) -> None:
    s = start_server(ready=False, own_group=True, workers=2)
    _signal_group_as_workers_start(s, signal.SIGTERM)  # e.g. systemd stopping a unit just started
    assert s.proc.wait(30) == 0, s.logs()  # no worker killed by it (-15)
    assert "exited with code -15" not in s.logs()


def test_two_workers_ctrl_c_as_they_start_stops_them(start_server: StartServer) -> None:
    s = start_server(ready=False, own_group=True, workers=2)
    _signal_group_as_workers_start(s, signal.SIGINT)
    assert s.proc.wait(30) == 0, s.logs()  # not lost: the workers do not come up and serve
    assert '"ready"' not in s.logs()


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet (its parent is gone too)."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_two_workers_exit_when_the_supervisor_is_killed(start_server: StartServer) -> None:
    s = start_server(workers=2)
    kids = [int(p) for p in Path(f"/proc/{s.proc.pid}/task/{s.proc.pid}/children").read_text().split()]
    workers = [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]  # not the resource tracker
    assert len(workers) == 2
    s.proc.kill()  # SIGKILL: the supervisor cannot pass anything on
    s.proc.wait()
    end = time.monotonic() + 30
    while not all(_gone(w) for w in workers):  # each drains and exits on the kernel's SIGTERM
        assert time.monotonic() < end, s.logs()
        time.sleep(0.05)
    assert s.logs().count("Finished server process") == 2, s.logs()  # a drain, not a kill
    leftover = list(Path(tempfile.gettempdir()).glob(f"{METRICS_DIR_PREFIX}{s.proc.pid}-*"))
    assert len(leftover) == 1  # the killed launcher could not remove its metrics folder...
    remove_stale_metrics_dirs()  # ...the next start does
    assert not leftover[0].exists()
