"""HTTP compression of request and response bodies: gzip and deflate, as Triton's HTTP endpoint
and its clients speak them (`tritonclient.http` `request_compression_algorithm` and
`response_compression_algorithm`; curl `--compressed`).

A request body with `Content-Encoding: gzip` or `deflate` is always inflated, and the inflated
size is held to the same byte limit as a plain body (a few kB of gzip can inflate to gigabytes).

Answers are compressed only when the operator turns it on (`SENTIMENT_COMPRESS_RESPONSES`) and
the client's `Accept-Encoding` asks for gzip or deflate: httpx and requests ask by default, and a
32-text /predict answer (62 kB → 16 kB at level 1) costs ~280 µs of event-loop CPU to compress,
as much as the rest of the loop's work for ten of its texts. Across a slow link that is worth it;
next to the caller in a cluster it is not.
"""

from __future__ import annotations

import zlib

from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# zlib's window bits: 16 + 15 reads and writes gzip framing, 15 zlib ("deflate" in HTTP).
WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
# Level 1 on a 32-text answer of 62 kB: 16.1 kB in 277 µs; level 6: 13.4 kB in 981 µs.
LEVEL = 1
# Below this, compressing costs more CPU than the bytes it saves are worth on any real network.
MIN_BYTES = 1024


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent before its Content-Encoding; at most `limit` bytes of it. A gzip body may
    hold several members one after the other (RFC 1952), each inflated in turn."""
    if encoding is None:  # nearly every request: nothing to do
        return body
    name = encoding.strip().lower()
    if name == "identity":
        return body
    wbits = WBITS.get(name)
    if wbits is None:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported",
            "send the body uncompressed, or compressed with gzip or deflate",
            {"Accept-Encoding": "gzip, deflate"},  # what this server reads (RFC 7694)
        )
    parts: list[bytes] = []
    left, rest = limit + 1, body
    while True:
        d = zlib.decompressobj(wbits)
        try:
            part = d.decompress(rest, left)
        except zlib.error as e:
            fix = f"compress the body with {name}, or drop the Content-Encoding header"
            raise BadRequest(f"the body is not valid {name} data ({e})", fix) from None
        parts.append(part)
        left -= len(part)
        if left <= 0:
            raise PayloadTooLarge(f"the body inflates to more than {limit} bytes", "send fewer or shorter texts per request")
        if not d.eof:
            raise BadRequest(f"the {name} body is truncated", "send the whole compressed body")
        rest = d.unused_data
        if not rest:
            return b"".join(parts)
        if wbits != WBITS["gzip"]:  # one zlib stream, then something else
            raise BadRequest(f"{len(rest)} bytes follow the end of the {name} data", "send only the compressed body")


def negotiate(accept: str | None) -> str | None:
    """The encoding `Accept-Encoding` ranks highest among gzip and deflate (gzip on a tie), or
    None when it allows neither."""
    if not accept:
        return None
    allowed: dict[str, float] = {}
    for part in accept.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        name = name.strip()
        allowed["gzip" if name == "x-gzip" else name] = q
    ranked = [(allowed.get(name, allowed.get("*", 0.0)), name) for name in ("gzip", "deflate")]
    q, best = max(ranked, key=lambda r: r[0])  # max keeps the first (gzip) on a tie
    return best if q > 0 else None


def deflate(payload: bytes, encoding: str) -> bytes:
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, WBITS[encoding])
    return c.compress(payload) + c.flush()


def encode(payload: bytes, accept: str | None, headers: dict[str, str]) -> bytes:
    """The answer's body for a client that sent `accept` as Accept-Encoding; Content-Encoding and
    Vary are added to `headers` when it is compressed (an uncompressed answer suits every client,
    so a cache may hand it to anyone)."""
    if not accept or len(payload) < MIN_BYTES:
        return payload
    encoding = negotiate(accept)
    if encoding is None:
        return payload
    headers["Content-Encoding"] = encoding
    headers["Vary"] = "Accept-Encoding"
    return deflate(payload, encoding)
