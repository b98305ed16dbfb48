"""A real server: `python -m service serve` in a subprocess on a free port, over the tiny artifact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, artifact: Path, log_path: Path, own_group: bool = False, **settings: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMENT_")}
        env.update({"SENTIMENT_ARTIFACT": str(artifact), "SENTIMENT_PORT": str(self.port), "SENTIMENT_INTRA_OP_THREADS": "1"})
        env.update({f"SENTIMENT_{k.upper()}": str(v) for k, v in settings.items()})
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            cwd=log_path.parent,  # not the repository: a developer's .env there would change the settings
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,  # a process group of its own, as a terminal gives (Ctrl+C)
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_live(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not live after {timeout}s: {self.log_path.read_text()[-3000:]}")

    def wait_ready(self, timeout: float = 30) -> None:
        self.wait_live(timeout)
        end = time.monotonic() + timeout
        while self.client.get("/readyz").status_code != 200:
            if time.monotonic() > end:
                raise TimeoutError("server not ready")
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()
        self.log.close()
        return self.proc.returncode

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()


@pytest.fixture
def start_server(tiny_artifact: Path, tmp_path: Path) -> Iterator[object]:
    """start_server(**settings) → a ready Server; all are stopped at the end of the test."""
    servers: list[Server] = []

    def start(ready: bool = True, artifact: Path | None = None, own_group: bool = False, **settings: object) -> Server:
        s = Server(artifact or tiny_artifact, tmp_path / f"server-{len(servers)}.log", own_group, **settings)
        servers.append(s)
        s.wait_ready() if ready else None
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def server(tiny_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with default settings, shared by the read-only tests of a module."""
    s = Server(
        tiny_artifact,
        tmp_path_factory.mktemp("logs") / "server.log",
        max_texts_per_request=8,
        max_text_chars=2000,
        max_body_bytes=20000,
    )
    s.wait_ready()
    yield s
    s.stop()
