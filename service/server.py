"""Running the app: one uvicorn server per worker process, each on its own SO_REUSEPORT socket.

Shutdown, on SIGTERM or SIGINT: the worker reports not-ready at once (/readyz 503) but keeps
serving for `shutdown_delay_s` (time for a load balancer to notice), then stops accepting
connections, lets every accepted request finish (up to `drain_timeout_s`) and drains the batcher.
A second signal (more than a second later: a kill of the whole process group delivers the same
one twice) ends the delay at once; the drain still runs. With several workers the parent
(service/supervisor.py) forwards SIGTERM to each: a worker signalled while it is still starting
(the signal waits, blocked, for its handler) exits at once, cleanly. It replaces a worker that
dies after it started serving.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, MutableSequence
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from service.conn_share import DEAD, ConnectionShare
from service.http_protocol import CoalescingHttpToolsProtocol
from service.listen import listen_socket, port_guard
from service.settings import Settings
from service.supervisor import STOP_SIGNALS, Supervisor

log = logging.getLogger(__name__)

DUPLICATE_SIGNAL_S = 1.0  # a stop signal this soon after the last one taken is the same, delivered twice
DRAIN_GRACE_S = 2  # uvicorn's own shutdown timeout: the drain timeout plus this


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        settings: Settings,
        on_signal: Callable[[], None],
        on_started: Callable[[], None] | None = None,
        on_shutdown: Callable[[float], None] | None = None,  # given the drain timeout
    ) -> None:
        super().__init__(config)
        self.settings, self.on_signal, self.on_started, self.on_shutdown = settings, on_signal, on_started, on_shutdown
        self.signalled, self.signalled_at = False, 0.0
        self.failed = False

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        super().run(sockets=sockets)
        if self.failed:
            sys.exit(STARTUP_FAILURE)

    def fail(self) -> None:
        """The app cannot serve after all (its warm-up failed): stop, and exit as a failed start."""
        self.failed = self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # The listener closes now. Texts still queued at the drain timeout get a 503 from the app
        # (uvicorn's own timeout, later, would cancel their requests: a 500).
        if self.on_shutdown is not None:
            self.on_shutdown(self.settings.drain_timeout_s)
        await super().shutdown(sockets=sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:  # listening (uvicorn's lifespan ran)
            self.on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.signalled:
            # The same signal twice within a second of the last one taken: a process-group kill
            # (systemd, `kill -- -PGID`) or Ctrl+C reaches a worker directly and again through the
            # launcher. Counted twice, a second Ctrl+C would be a third: exit without draining.
            now = time.monotonic()
            if now - self.signalled_at < DUPLICATE_SIGNAL_S:
                return
            self.signalled_at = now
            super().handle_exit(sig, frame)  # a second signal: uvicorn stops waiting
            return
        self.signalled, self.signalled_at = True, time.monotonic()
        # uvicorn installs this with signal.signal: it runs between two bytecodes of whatever the
        # main thread was doing, possibly inside prometheus-client's non-reentrant lock (held for
        # every metric update; start_draining sets a gauge). Doing the work here deadlocked a
        # worker under load for good; the loop runs it at its next turn instead.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving yet or any more: nothing to drain
            super().handle_exit(sig, frame)
            return
        loop.call_soon_threadsafe(self.begin_drain, sig)

    def begin_drain(self, sig: int) -> None:
        self.on_signal()
        log.info(
            "signal %s: not ready; serving %.1fs more, then draining",
            signal.Signals(sig).name,
            self.settings.shutdown_delay_s,
        )
        asyncio.get_running_loop().call_later(self.settings.shutdown_delay_s, setattr, self, "should_exit", True)


def make_server(
    settings: Settings,
    metrics_dir: str | None,
    counts: MutableSequence[int] | None = None,
    index: int = 0,
    on_started: Callable[[], None] | None = None,
) -> DrainingServer:
    """`counts`: every worker's open connections, shared between the workers (one slot each;
    this worker's is `index`); None for a single worker. `on_started`: called once listening."""
    from service.app import create_app

    app = create_app(settings, metrics_dir)
    metrics = app.state.svc.metrics
    share = ConnectionShare(
        [0] if counts is None else counts,
        index,
        rebalance=settings.rebalance_connections,
        gauge=metrics.connections,
        closes=metrics.rebalanced,
    )

    def started() -> None:
        share.live()
        if on_started is not None:
            on_started()

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our JSON logging is configured already
        access_log=False,
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout_s) + DRAIN_GRACE_S,  # after the app's 503s (shutdown)
        lifespan="on",
        # httptools, with a response's head and body in one send, and connections counted
        http=CoalescingHttpToolsProtocol.with_share(share),
        loop="uvloop",
        # No websocket routes. With the default ("auto"), an `Upgrade: websocket` request hands the
        # connection to uvicorn's websocket protocol, and ours never hears it close.
        ws="none",
    )
    state = app.state.svc
    server = DrainingServer(config, settings, state.start_draining, started, state.answer_queued_after)
    state.on_fatal = server.fail
    return server


def cpu_shares(allowed: set[int], workers: int) -> list[set[int]] | None:
    """Split the CPUs into one contiguous, near-equal share per worker; None when there are fewer
    CPUs than workers (or one worker), where pinning could only hurt.

    Why pin: each worker has two busy threads (the event loop and the engine). Left to float, four
    threads on two cores migrate between them and evict each other's caches; one worker per core
    served 11-16% more single-text requests with p99 64 → 50 ms at c=64 (docs/SERVING.md).
    """
    cpus = sorted(allowed)
    if workers < 2 or len(cpus) < workers:
        return None
    size, extra = divmod(len(cpus), workers)
    shares, start = [], 0
    for i in range(workers):
        end = start + size + (1 if i < extra else 0)
        shares.append(set(cpus[start:end]))
        start = end
    return shares


METRICS_DIR_PREFIX = "sentiment-metrics-"  # then the launcher's pid


def remove_stale_metrics_dirs() -> None:
    """Remove the metrics folders of launchers that died without removing their own (SIGKILL,
    OOM: their `finally` never ran). Live servers' folders stay: their pid is still in use."""
    for path in Path(tempfile.gettempdir()).glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = path.name.removeprefix(METRICS_DIR_PREFIX).split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # exists, someone else's
            pass


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Linux: have the kernel send this process SIGTERM when the supervisor dies, even of SIGKILL
    (no handler of its own can run then): a worker left behind would go on serving on the port,
    with nobody to stop or replace it, and a new server started there would share its
    connections with it (SO_REUSEPORT). The SIGTERM drains it like any other."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: no such call
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        return
    if os.getppid() != parent:  # it died before the call could take effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(
    settings: Settings,
    metrics_dir: str | None,
    cpus: set[int] | None,
    serving: Event,
    counts: MutableSequence[int],
    index: int,
) -> None:
    from service import logs

    # Until uvicorn installs its own handlers (after imports, app creation and socket setup), a
    # SIGTERM would kill this worker outright and the parent would report a failure: nothing has
    # been accepted yet, so exit cleanly instead. uvicorn restores this handler when it stops and
    # re-raises a second, forcing signal through it: that exit is not clean.
    server: DrainingServer | None = None

    def early_exit(sig: int, _: FrameType | None) -> None:
        if server is not None and server.started:
            raise SystemExit(128 + sig)
        # os._exit, not SystemExit: a handler runs wherever the main thread is, and a SystemExit
        # raised while `import onnxruntime` initialised its C extension came out as "ImportError:
        # initialization failed", exit code 1 (1 in 40 runs of a start-up stress test).
        os._exit(0)

    signal.signal(signal.SIGTERM, early_exit)
    # Ctrl+C too: uvicorn installs its own handler only once serving, and Python's default one
    # (KeyboardInterrupt) could land in the middle of an import.
    signal.signal(signal.SIGINT, early_exit)
    # The supervisor started this process with both blocked: one sent meanwhile arrives now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    parent = mp.parent_process()
    if parent is not None and parent.pid is not None:
        die_with_parent(parent.pid)
    logs.configure(settings.log_level)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)  # before onnxruntime starts its threads: they inherit it
        log.info("worker pinned to CPUs %s", sorted(cpus))
    server = make_server(settings, metrics_dir, counts, index, serving.set)
    server.run(sockets=[listen_socket(settings.host, settings.port)])


def with_threads(settings: Settings) -> Settings:
    """The settings with onnxruntime's thread count fixed, here in the launcher: a pinned worker
    sees only its own share of the CPUs, and would split that share between the workers again."""
    return settings.model_copy(update={"intra_op_threads": settings.threads_per_worker()})


def serve(settings: Settings) -> None:
    """Serve until signalled. Prometheus multiprocess mode is on whenever workers > 1. Several
    workers need a fixed port (each binds it with SO_REUSEPORT); service/supervisor.py runs them."""
    settings = with_threads(settings)
    if settings.workers == 1:
        make_server(settings, None).run()
        return
    guard = port_guard(settings.host, settings.port)  # fails here, once, if the port is taken
    remove_stale_metrics_dirs()
    metrics_dir = tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-")
    # prometheus-client reads this when its modules are imported in each (spawned) worker.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    ctx = mp.get_context("spawn")
    can_pin = settings.pin_workers and hasattr(os, "sched_setaffinity")
    shares = cpu_shares(os.sched_getaffinity(0), settings.workers) if can_pin else None
    # Each worker's open connections (service/conn_share.py), dead until the worker listens.
    counts = ctx.RawArray("i", [DEAD] * settings.workers)

    def args(i: int, serving: Event) -> tuple[Any, ...]:
        return settings, metrics_dir, shares[i] if shares else None, serving, counts, i

    workers = Supervisor(ctx, settings.workers, _worker, args, counts, metrics_dir)
    try:
        workers.start()
        log.info("started %d workers on %s:%d", settings.workers, settings.host, settings.port)
        codes = workers.wait()
    except BaseException:
        workers.stop_now()  # no orphans: the launcher is going away (e.g. a replacement failed to start)
        raise
    finally:
        guard.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)  # each start makes a new one
    log.info("all workers stopped", extra={"exit_codes": codes})
    if workers.failed:
        raise SystemExit(1)
