"""The /predict path without HTTP: validate → tokenize → enqueue, then await → respond.

Tokenising happens here, in the request, so the queue knows each text's token count.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson

from service.answer import as_json, renderer
from service.batcher import Batcher, Result
from service.errors import ClientClosed, DeadlineExceeded, InvalidInput
from service.model_files import Metadata
from service.text_tokenizer import Encoded, TextTokenizer


@dataclass(frozen=True)
class RequestLimits:
    max_texts: int = 64
    max_chars: int = 10_000
    timeout_ms: int = 10_000
    max_timeout_ms: int = 60_000


@dataclass
class Job:
    encoded: list[Encoded]
    future: asyncio.Future[list[Result]]
    attention: bool
    deadline: float

    def cancel(self) -> None:
        self.future.cancel()


class Predictor:
    def __init__(self, meta: Metadata, tokenizer: TextTokenizer, batcher: Batcher, limits: RequestLimits) -> None:
        self.meta, self.tokenizer, self.batcher, self.limits = meta, tokenizer, batcher, limits
        self.labels = list(meta.labels)
        self.render = renderer(tokenizer.native)  # in C when the tokenizer's per-token work is (SENTIMENT_NATIVE)
        self.head = b'{"model":' + orjson.dumps({"name": meta.name, "version": meta.version}) + b',"predictions":'

    def validate(self, texts: list[str], timeout_ms: int | None) -> float:
        """Returns the timeout in seconds; raises InvalidInput naming the first problem."""
        lim = self.limits
        if not texts:
            raise InvalidInput("`texts` is empty", f"send between 1 and {lim.max_texts} texts")
        if len(texts) > lim.max_texts:
            raise InvalidInput(
                f"{len(texts)} texts in one request; the limit is {lim.max_texts}",
                "split the texts over several requests",
            )
        for i, t in enumerate(texts):
            if not t.strip():
                raise InvalidInput(f"text {i} is empty or only whitespace", "remove it or send some words")
            if len(t) > lim.max_chars:
                raise InvalidInput(
                    f"text {i} has {len(t)} characters; the limit is {lim.max_chars}",
                    "shorten it or split it into several texts",
                )
        if timeout_ms is not None and timeout_ms > lim.max_timeout_ms:
            raise InvalidInput(
                f"timeout_ms={timeout_ms} exceeds the server's maximum of {lim.max_timeout_ms}",
                f"ask for at most {lim.max_timeout_ms}",
            )
        return (timeout_ms or lim.timeout_ms) / 1000.0

    def submit(self, texts: list[str], attention: bool = True, timeout_ms: int | None = None) -> Job:
        timeout = self.validate(texts, timeout_ms)
        encoded = self.tokenizer.encode(texts)
        deadline = time.monotonic() + timeout
        future = self.batcher.submit([e.ids for e in encoded], deadline)
        return Job(encoded, future, attention, deadline)

    async def results(self, job: Job) -> list[Result]:
        """Wait for every text of the job; 504 at the deadline (and its texts are dropped)."""
        left = max(0.0, job.deadline - time.monotonic())
        try:
            return await asyncio.wait_for(job.future, left)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this request itself is being cancelled
            # Our texts were cancelled under us: the client disconnected (see routes).
            raise ClientClosed("the client closed the connection before the answer was ready") from None
        except TimeoutError:
            job.cancel()
            raise DeadlineExceeded(
                "the request's deadline passed before its texts ran",
                "raise timeout_ms, send fewer texts, or add replicas",
            ) from None

    async def predict(self, texts: list[str], attention: bool = True, timeout_ms: int | None = None) -> bytes:
        job = self.submit(texts, attention, timeout_ms)
        return self.respond(job, await self.results(job))

    def respond(self, job: Job, results: list[Result]) -> bytes:
        """The answer's JSON (service/answer.py): {"model": {...}, "predictions": [...]}."""
        probs = as_json([p for p, _ in results])  # (N, C)
        attention = as_json([a for _, a in results]) if job.attention else None  # (N, L_i)
        return self.head + self.render(job.encoded, self.labels, probs, attention) + b"}"
