"""Several worker processes: start them, pass signals on, replace one that dies while serving.

- Workers start with SIGTERM and SIGINT blocked and unblock them once their own handlers are in:
  a signal in a worker's first moments (a kill of the whole process group right after start, or
  one passed on from here) waits for the handler instead of killing the worker (-15) or being
  lost. A worker still starting then exits at once, cleanly, having accepted nothing.
- SIGTERM (docker stop, Kubernetes) and SIGINT reach this process; the handler only takes note
  and the loop, which waits on the workers and on a wake-up socket at once, passes the signal on
  to each worker. Done in the handler itself, it could run in the middle of starting a
  replacement worker and miss it. Ctrl+C and a kill of the whole process group reach the workers
  directly as well: a worker takes a copy that arrives within a second as the same stop. Either
  way the launcher now knows the server is stopping, so a worker that a second Ctrl+C makes exit
  at once (code 130) is not taken for a crash and replaced.
- A worker that exits with a non-zero code while the server is not stopping is replaced if it had
  got as far as serving (killed, out of memory). If it had not (bad artifact, missing provider),
  a new one would die the same way: the others are stopped and the server exits 1.
- If this process dies without a chance to stop them (SIGKILL, OOM), the kernel sends each worker
  SIGTERM (service/server.py, `die_with_parent`), so none is left serving on the port.
- An exited worker's connection-share slot is marked dead and its live Prometheus gauges are
  removed (`metrics.forget_process`), so the others stop counting it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any, cast

from uvicorn.config import STARTUP_FAILURE

from service.conn_share import mark_dead
from service.metrics import forget_process

log = logging.getLogger(__name__)

# Blocked in a worker from its start until its handlers are installed (service/server.py).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
# What a worker process is started with, given its index and its `serving` event.
WorkerArgs = Callable[[int, Event], tuple[Any, ...]]


@dataclass
class Slot:
    process: BaseProcess
    serving: Event  # it got as far as listening: if it dies later, a new one is started


class Supervisor:
    def __init__(
        self,
        ctx: SpawnContext,
        workers: int,
        target: Callable[..., None],
        args: WorkerArgs,
        counts: MutableSequence[int],
        metrics_dir: str,
    ) -> None:
        self.ctx, self.target, self.args, self.counts, self.metrics_dir = ctx, target, args, counts, metrics_dir
        self.slots = [self._new(i) for i in range(workers)]
        self.signals: list[int] = []  # received, not yet passed on
        self.stopping = False
        self.failed = False  # a worker failed: the server exits 1
        self._wake_r, self._wake_w = socket.socketpair()

    def _new(self, i: int) -> Slot:
        serving = self.ctx.Event()
        return Slot(self.ctx.Process(target=self.target, args=self.args(i, serving), name=f"worker-{i}"), serving)

    @staticmethod
    def _start(slot: Slot) -> None:
        # The signal mask is inherited through fork and exec: the worker starts with these blocked.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            slot.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _on_signal(self, sig: int, _: FrameType | None) -> None:
        self.stopping = True  # workers not started yet are not started at all
        self.signals.append(sig)  # signal.set_wakeup_fd wakes the loop

    def start(self) -> None:
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno())
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in self.slots:
            if not self.stopping:
                self._start(slot)

    def wait(self) -> list[int | None]:
        """Until every worker has exited; their (last) exit codes."""
        waiting = {slot.process.sentinel: i for i, slot in enumerate(self.slots) if slot.process.pid is not None}
        while waiting:
            ready = wait([*waiting, self._wake_r])
            self._pass_on_signals()
            for obj in ready:
                if obj is self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(64)
                    continue
                i = waiting.pop(cast(int, obj))  # a sentinel: an int file descriptor
                replacement = self._exited(i)
                if replacement is not None:
                    waiting[replacement.process.sentinel] = i
        signal.set_wakeup_fd(-1)
        self._wake_r.close()
        self._wake_w.close()
        return [slot.process.exitcode for slot in self.slots if slot.process.pid is not None]

    def stop_now(self) -> None:
        """SIGTERM to every live worker, then SIGKILL to any still alive after 10 s."""
        live = [slot.process for slot in self.slots if slot.process.pid is not None and slot.process.is_alive()]
        for p in live:
            p.terminate()
        for p in live:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()

    def _pass_on_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            for slot in self.slots:
                p = slot.process
                if p.pid is not None and p.is_alive():  # started; one still importing holds it blocked
                    os.kill(p.pid, sig)

    def _exited(self, i: int) -> Slot | None:
        """Worker i has exited: clean up after it; its replacement, if it gets one."""
        dead = self.slots[i]
        dead.process.join()
        code, pid = dead.process.exitcode, dead.process.pid
        mark_dead(self.counts, i)  # the others stop making room for its connections
        if pid is not None:
            forget_process(pid, self.metrics_dir)
        if self.stopping or not code:  # drained on a signal
            self.failed = self.failed or bool(code)
            if not self.stopping:  # signalled on its own (`kill <worker pid>`), it drained
                log.info("worker %d (pid %s) exited with code 0 (stopped on its own); not replaced", i, pid)
            return None
        # Serving, then died (killed, out of memory); not a worker that found it cannot serve
        # after listening (its warm-up failed), which exits as a failed start.
        if dead.serving.is_set() and code != STARTUP_FAILURE:
            log.error("worker %d (pid %s) exited with code %s; starting a new one", i, pid, code)
            self.slots[i] = self._new(i)
            self._start(self.slots[i])
            return self.slots[i]
        log.error("worker %d exited with code %s: it could not start serving; stopping the server", i, code)
        self.failed = self.stopping = True
        self.signals.append(signal.SIGTERM)
        self._pass_on_signals()
        return None
