"""Behaviour under load and over the process's life, each on its own real server."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.server import cpu_shares
from tests.service.conftest import Server

StartServer = Callable[..., Server]


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _fire(url: str, n: int, body: dict[str, Any], workers: int | None = None) -> list[httpx.Response | Exception]:
    def one(_: int) -> httpx.Response | Exception:
        try:
            return httpx.post(url + "/predict", json=body, timeout=30)
        except Exception as e:  # a refused connection is an outcome to count, not a test error
            return e

    with cf.ThreadPoolExecutor(workers or n) as pool:
        return list(pool.map(one, range(n)))


def test_api_key_required_except_health(start_server: StartServer) -> None:
    s = start_server(api_key="s3cret")
    assert s.client.get("/healthz").status_code == 200
    assert s.client.get("/readyz").status_code == 200
    r = s.client.post("/predict", json={"text": "hi"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["error"]["fix"]
    assert s.client.post("/predict", json={"text": "hi"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert s.client.get("/metrics").status_code == 401
    ok = s.client.post("/predict", json={"text": "hi"}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert s.client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_concurrent_requests_are_batched_together(start_server: StartServer) -> None:
    s = start_server(max_wait_ms=50)
    # Each client connects first, then all send at once: thread start-up alone can spread plain
    # "concurrent" requests so far apart on a busy machine that each one finds an empty queue.
    ready = threading.Barrier(24)

    def one(_: int) -> int:
        with httpx.Client(base_url=s.url, timeout=30) as c:
            c.get("/healthz")
            ready.wait(10)
            return c.post("/predict", json={"text": "a decent little film"}).status_code

    with cf.ThreadPoolExecutor(24) as pool:
        assert list(pool.map(one, range(24))) == [200] * 24
    m = s.client.get("/metrics").text
    texts, calls = _metric(m, "sentiment_batch_size_texts_sum"), _metric(m, "sentiment_batch_size_texts_count")
    assert texts == 24
    assert calls < 24 / 2, f"{calls} engine calls for 24 concurrent texts: not batched"


def test_full_queue_answers_429_at_once(start_server: StartServer) -> None:
    # The batcher waits up to 3 s for a batch of 64: a 3-text queue fills up and stays full.
    s = start_server(max_queue=3, max_wait_ms=3000)
    with cf.ThreadPoolExecutor(1) as pool:
        first = pool.submit(s.client.post, "/predict", json={"texts": ["one", "two", "three"]})
        end = time.monotonic() + 10
        while _metric(s.client.get("/metrics").text, "sentiment_queue_depth") < 3:  # the three are queued
            assert time.monotonic() < end
            time.sleep(0.02)
        t = time.monotonic()
        r = s.client.post("/predict", json={"text": "four"})
        took = time.monotonic() - t
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "1"
        assert took < 1.5  # at once, not after the 3 s the queue stays full
        assert first.result().status_code == 200
    assert _metric(s.client.get("/metrics").text, "sentiment_queue_depth") == 0  # and it empties


def test_deadline_passed_in_queue_answers_504(start_server: StartServer) -> None:
    s = start_server(max_wait_ms=1000)
    t = time.monotonic()
    # Two texts, so the batcher waits for company (a lone text would run at once).
    r = s.client.post("/predict", json={"texts": ["slow", "slower"], "timeout_ms": 100})
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "deadline_exceeded"
    assert time.monotonic() - t < 0.9
    end = time.monotonic() + 10
    while _metric(m := s.client.get("/metrics").text, "sentiment_texts_total", outcome="deadline") < 2:
        assert time.monotonic() < end, m  # the batcher drops the expired texts when it reaches them
        time.sleep(0.05)
    assert _metric(m, "sentiment_texts_total", outcome="ok") == 0  # instead of running them
    assert _metric(m, "sentiment_queue_depth") == 0


def test_default_request_timeout_is_the_deadline_of_a_request_without_one(start_server: StartServer) -> None:
    s = start_server(max_wait_ms=1000, request_timeout_ms=150)
    t = time.monotonic()
    r = s.client.post("/predict", json={"texts": ["slow", "slower"]})  # no timeout_ms: the setting's
    assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded", r.text
    assert time.monotonic() - t < 0.9  # not the 1 s the texts wait for company


def test_readiness_503_while_warming_up_then_200(start_server: StartServer) -> None:
    s = start_server(ready=False, warmup_runs=300, max_batch_size=64)
    s.wait_live()
    r = s.client.get("/readyz")
    assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready" and r.headers["retry-after"] == "1"
    assert s.client.get("/healthz").json()["ready"] is False
    for path in ("/v2/health/ready", "/v2/models/tiny/ready"):  # the Open Inference Protocol's, alike
        r = s.client.get(path)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", path
    s.wait_ready(timeout=60)
    assert s.client.get("/healthz").json()["ready"] is True


def test_sigterm_during_warm_up_exits_without_finishing_it(start_server: StartServer) -> None:
    s = start_server(ready=False, warmup_runs=250_000)  # ~20 minutes of warm-up on the tiny model
    s.wait_live()
    assert s.client.get("/readyz").status_code == 503
    s.proc.send_signal(signal.SIGTERM)  # e.g. the pod is deleted while it starts
    assert s.proc.wait(30) == 0, s.logs()[-2000:]
    assert '"ready"' not in s.logs()


def test_sigterm_under_load_answers_every_accepted_request(start_server: StartServer) -> None:
    # Texts wait up to 1.5 s for company, so requests are still queued when the listener closes.
    s = start_server(shutdown_delay_s=2.0, max_wait_ms=1500)
    body = {"texts": ["a fine film", "awful"]}
    with cf.ThreadPoolExecutor(4) as pool:
        steady = pool.submit(_fire, s.url, 32, body, 16)  # in flight while the signal arrives
        time.sleep(0.2)
        s.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.2)
        # During the shutdown delay: not ready, alive, and still serving.
        assert s.client.get("/readyz").status_code == 503
        assert s.client.get("/healthz").json()["draining"] is True
        still = pool.submit(_fire, s.url, 1, {"text": "still here"})
        # Requests sent 1.2 s before the listener closes (at 2 s) are still queued when it does.
        time.sleep(max(0.0, signalled + 0.8 - time.monotonic()))
        late = pool.submit(_fire, s.url, 16, body, 16)
        results = steady.result() + still.result() + late.result()
    assert s.proc.wait(30) == 0, s.logs()[-2000:]
    bad = [
        r if isinstance(r, Exception) else r.status_code for r in results if not (isinstance(r, httpx.Response) and r.status_code == 200)
    ]
    assert not bad, bad
    assert len(results) == 49, [r if isinstance(r, Exception) else r.status_code for r in results]
    assert "stopped" in s.logs()


def test_two_workers_metrics_report_all_processes(start_server: StartServer) -> None:
    s = start_server(workers=2)
    pids, ready = set(), set()
    for _ in range(40):
        with httpx.Client(base_url=s.url) as c:  # new connections spread over the workers
            health = c.get("/healthz").json()
            pids.add(health["pid"])
            ready.add(health["ready"])
            assert c.post("/predict", json={"text": "good"}).status_code == 200
    m = s.client.get("/metrics").text
    assert _metric(m, "sentiment_requests_total", route="/predict", status="200") == 40
    assert len(set(re.findall(r'sentiment_model_info\{[^}]*pid="(\d+)"', m))) == 2
    assert len(pids) == 2, "both workers served"
    assert ready == {True}, "every worker reports ready"
    # Each worker is pinned to its own share of the CPUs (when there are enough of them).
    shares = cpu_shares(os.sched_getaffinity(0), 2)
    affinities = sorted((os.sched_getaffinity(p) for p in pids), key=min)
    assert affinities == (shares or [os.sched_getaffinity(0)] * 2)
    environ = Path(f"/proc/{min(pids)}/environ").read_bytes().decode().split("\0")
    metrics_dir = next(v.split("=", 1)[1] for v in environ if v.startswith("PROMETHEUS_MULTIPROC_DIR="))
    assert os.listdir(metrics_dir)  # the workers' metric files
    # SIGTERM to the parent (as docker stop sends it) drains both workers and exits 0.
    assert s.stop() == 0
    assert s.logs().count('"msg":"stopped"') == 2
    assert not os.path.exists(metrics_dir)  # removed: every start makes a new one


V2_TWO_TEXTS = {"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [2, 1], "data": ["never", "mind"]}]}


@pytest.mark.parametrize(
    ("path", "body"),
    [("/predict", {"texts": ["never", "mind"]}), ("/v2/models/tiny/infer", V2_TWO_TEXTS)],
    ids=["predict", "v2"],
)
def test_client_disconnect_drops_its_queued_texts(start_server: StartServer, path: str, body: dict[str, object]) -> None:
    s = start_server(max_wait_ms=1500)
    # The client gives up and closes its connection while the texts are queued.
    with httpx.Client(base_url=s.url, timeout=0.3) as impatient, contextlib.suppress(httpx.ReadTimeout):
        impatient.post(path, json=body)
    end = time.monotonic() + 10  # the next batch forms after 1.5 s and finds the texts cancelled
    while _metric(m := s.client.get("/metrics").text, "sentiment_texts_total", outcome="cancelled") < 2:
        assert time.monotonic() < end, m
        time.sleep(0.05)
    assert _metric(m, "sentiment_texts_total", outcome="cancelled") == 2
    assert _metric(m, "sentiment_texts_total", outcome="ok") == 0


@pytest.mark.parametrize(
    ("path", "route"), [("/predict", "/predict"), ("/v2/models/tiny/infer", "/v2/models/{model}/infer")], ids=["predict", "v2"]
)
def test_client_gone_before_its_body_arrived_is_not_a_server_error(start_server: StartServer, path: str, route: str) -> None:
    s = start_server()
    host, port = s.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:  # announces 1,000 bytes, sends 10
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode())
        sock.sendall(b'{"text": "')
        time.sleep(0.2)  # the route is reading the body
    end = time.monotonic() + 5
    while not _metric(m := s.client.get("/metrics").text, "sentiment_requests_total", route=route, status="499"):
        assert time.monotonic() < end, m  # counted as the client's doing (nginx's 499)
        time.sleep(0.05)
    assert _metric(m, "sentiment_requests_total", route=route, status="500") == 0
    assert "unhandled error" not in s.logs() and "Exception in ASGI application" not in s.logs()


def test_inference_failure_answers_500_with_the_reason_and_keeps_serving(
    start_server: StartServer, tiny_artifact: Path, tmp_path: Path
) -> None:
    # A tokenizer that gives one word an id past the model's embedding table: onnxruntime fails
    # on any batch holding it (warm-up, which uses the first ids only, passes).
    bad = tmp_path / "mismatched"
    shutil.copytree(tiny_artifact, bad)
    config = json.loads((bad / "tokenizer.json").read_text())
    config["model"]["vocab"]["zzqx"] = 10**6
    (bad / "tokenizer.json").write_text(json.dumps(config))
    s = start_server(artifact=bad)
    r = s.client.post("/predict", json={"text": "zzqx"}, headers={"X-Request-ID": "fail-1"})
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    assert err["code"] == "inference_failed" and "the model failed on a batch" in err["message"]
    assert err["request_id"] == "fail-1" and r.headers["x-request-id"] == "fail-1"
    v2 = s.client.post("/v2/models/tiny/infer", json={"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": ["zzqx"]}]})
    assert v2.status_code == 500 and "the model failed on a batch" in v2.json()["error"]
    assert s.client.post("/predict", json={"text": "a fine film"}).status_code == 200  # the batcher keeps serving
    m = s.client.get("/metrics").text
    assert _metric(m, "sentiment_texts_total", outcome="error") == 2


def test_texts_still_queued_at_the_drain_timeout_get_503_not_500(start_server: StartServer) -> None:
    s = start_server(drain_timeout_s=1, max_wait_ms=8000)  # two texts wait 8 s for company
    with cf.ThreadPoolExecutor(1) as pool:
        queued = pool.submit(s.client.post, "/predict", json={"texts": ["a", "b"]})
        end = time.monotonic() + 10
        while _metric(s.client.get("/metrics").text, "sentiment_queue_depth") < 2:
            assert time.monotonic() < end
            time.sleep(0.02)
        s.proc.send_signal(signal.SIGTERM)
        r = queued.result()
    # Answered by the app (retry elsewhere), not a task uvicorn cancels at its own timeout (a 500).
    assert r.status_code == 503, r.text
    assert r.json()["error"]["message"] == "the server stopped before this text ran" and r.headers["retry-after"] == "1"
    assert s.proc.wait(30) == 0, s.logs()[-2000:]
    assert "Exception in ASGI application" not in s.logs()
