"""Prometheus metrics, recorded where the events happen.

With several worker processes, prometheus-client's multiprocess mode is on: every process writes
its samples to files in PROMETHEUS_MULTIPROC_DIR (set by the launcher before this module is
imported; it passes the same folder here) and /metrics aggregates all of them, whichever process answers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZES = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 256)
TOKENS = (16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        # A registry of our own: creating a second app in one process (tests) must not collide
        # with metrics registered on the global one.
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("sentiment_requests_total", "HTTP requests by route and status", ["route", "method", "status"], registry=r)
        self.latency = Histogram("sentiment_request_duration_seconds", "HTTP request latency", ["route"], buckets=LATENCY, registry=r)
        self.texts = Counter("sentiment_texts_total", "Texts by outcome (ok, deadline, cancelled, error)", ["outcome"], registry=r)
        self.queue_wait = Histogram(
            "sentiment_queue_wait_seconds",
            "Time a request waited in the queue until the batch of its last text started",
            buckets=LATENCY,
            registry=r,
        )
        self.batch_texts = Histogram(
            "sentiment_batch_size_texts",
            "Texts per batch (one onnxruntime run; an engine call runs one or more)",
            buckets=SIZES,
            registry=r,
        )
        self.batch_tokens = Histogram("sentiment_batch_tokens", "Padded tokens (longest × texts) per batch", buckets=TOKENS, registry=r)
        self.batch_padding = Histogram(
            "sentiment_batch_padding_ratio",
            "Share of padded tokens that are padding",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
            registry=r,
        )
        self.inference = Histogram("sentiment_inference_seconds", "Duration of one batch's onnxruntime run", buckets=LATENCY, registry=r)
        self.queue_depth = Gauge("sentiment_queue_depth", "Texts waiting in the queue", multiprocess_mode="livesum", registry=r)
        self.info = Gauge(
            "sentiment_model_info",
            "The model and execution provider each worker serves",
            ["name", "version", "provider"],
            multiprocess_mode="liveall",
            registry=r,
        )
        self.connections = Gauge(
            "sentiment_open_connections", "Open HTTP connections of each worker", multiprocess_mode="liveall", registry=r
        )
        self.rebalanced = Counter(
            "sentiment_connections_rebalanced_total",
            "Keep-alive connections closed (Connection: close) because their worker held more than its share",
            registry=r,
        )
        self.ready = Gauge("sentiment_ready", "1 while the worker is ready", multiprocess_mode="livesum", registry=r)

    def _all_workers(self) -> CollectorRegistry | None:
        """A registry over every worker's files (multiprocess mode), else None."""
        if not self.multiprocess_dir:
            return None
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg, path=self.multiprocess_dir)
        return reg

    def render(self) -> bytes:
        return generate_latest(self._all_workers() or self.registry)

    def ready_workers(self) -> int | None:
        """How many live worker processes report ready (multiprocess mode only, else None)."""
        reg = self._all_workers()
        if reg is None:
            return None
        for metric in reg.collect():
            if metric.name == "sentiment_ready":
                return int(sum(s.value for s in metric.samples))
        return 0

    def mark_process_dead(self, pid: int) -> None:
        if self.multiprocess_dir:
            forget_process(pid, self.multiprocess_dir)


def forget_process(pid: int, multiprocess_dir: str) -> None:
    """Remove an exited process's live gauges (ready, model info, connections) from the
    multiprocess files: by the worker itself when it stops, by the launcher when one dies."""
    multiprocess.mark_process_dead(pid, multiprocess_dir)
