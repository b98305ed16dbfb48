"""Request and response compression: the codec on its own, then tritonclient's and httpx's
compression options against real servers."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from service.compression import MIN_BYTES, encode, inflate, negotiate
from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from tests.service.conftest import Server

BODY = b'{"texts": ["A gorgeous, heartfelt film!", "Dull and far too long."]}'


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "GZIP"])
def test_inflate_gzip_and_deflate_give_the_body_back(encoding: str) -> None:
    packed = gzip.compress(BODY) if "gzip" in encoding.lower() else zlib.compress(BODY)
    assert inflate(packed, encoding, 1000) == BODY


def test_inflate_identity_or_none_is_the_body_itself() -> None:
    assert inflate(BODY, None, 10) is BODY  # the limit is read_body's for a plain body
    assert inflate(BODY, "identity", 10) is BODY


def test_inflate_gzip_of_several_members_gives_them_all() -> None:
    assert inflate(gzip.compress(BODY[:10]) + gzip.compress(BODY[10:]), "gzip", 1000) == BODY
    with pytest.raises(PayloadTooLarge):  # the limit counts every member
        inflate(gzip.compress(BODY) + gzip.compress(BODY), "gzip", len(BODY) + 1)


def test_inflate_exactly_the_limit_passes() -> None:
    assert inflate(gzip.compress(BODY), "gzip", len(BODY)) == BODY
    with pytest.raises(PayloadTooLarge):
        inflate(gzip.compress(BODY), "gzip", len(BODY) - 1)


def test_inflate_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"0" * 50_000_000)  # 50 MB in ~50 kB
    with pytest.raises(PayloadTooLarge, match="inflates to more than 1048576 bytes"):
        inflate(bomb, "gzip", 1_048_576)


@pytest.mark.parametrize(
    ("body", "encoding", "error", "needle"),
    [
        (BODY, "br", UnsupportedMediaType, "'br' is not supported"),
        (BODY, "gzip", BadRequest, "not valid gzip data"),
        (gzip.compress(BODY)[:-12], "gzip", BadRequest, "truncated"),
        (gzip.compress(BODY) + b"junk", "gzip", BadRequest, "not valid gzip data"),
        (zlib.compress(BODY) + b"junk", "deflate", BadRequest, "4 bytes follow the end of the deflate data"),
    ],
    ids=["unsupported", "not-gzip", "truncated", "gzip-then-junk", "deflate-then-junk"],
)
def test_inflate_bad_body_says_what_is_wrong(body: bytes, encoding: str, error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle) as e:
        inflate(body, encoding, 1000)
    if isinstance(e.value, UnsupportedMediaType):  # and says what would do
        assert e.value.headers == {"Accept-Encoding": "gzip, deflate"}


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        ("gzip, deflate", "gzip"),
        ("deflate", "deflate"),
        ("gzip;q=0, deflate;q=0.5", "deflate"),
        ("*", "gzip"),
        ("br, zstd", None),
        ("gzip;q=0.1, deflate", "deflate"),
        ("gzip;q=0, *", "deflate"),
        ("*;q=0", None),
        ("x-gzip", "gzip"),
    ],
)
def test_negotiate_picks_what_the_client_accepts(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


def test_encode_small_answer_stays_plain_large_one_is_compressed() -> None:
    headers: dict[str, str] = {}
    small = b"x" * (MIN_BYTES - 1)
    assert encode(small, "gzip", headers) is small and headers == {}
    large = BODY * 100
    packed = encode(large, "gzip, deflate", headers)
    assert gzip.decompress(packed) == large and len(packed) < len(large) // 10
    assert headers == {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_request_compression_is_understood(server: Server, algorithm: str) -> None:
    c = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        i = triton.InferInput("TEXT", [2, 1], "BYTES")
        i.set_data_from_numpy(np.array([[b"A gorgeous, heartfelt film!"], [b"Dull and far too long."]], dtype=object))
        plain = c.infer("tiny", [i]).as_numpy("PROBS")
        packed = c.infer("tiny", [i], request_compression_algorithm=algorithm).as_numpy("PROBS")
    finally:
        c.close()
    assert plain is not None and packed is not None and np.array_equal(plain, packed)


def test_predict_compressed_body_over_the_limit_after_inflating_is_413(server: Server) -> None:
    # The module's server takes bodies up to 20,000 bytes; this one is ~200 bytes compressed.
    body = gzip.compress(b'{"text": "' + b"a" * 30_000 + b'"}')
    r = server.client.post("/predict", content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 413, r.text
    assert "inflates to more than 20000 bytes" in r.json()["error"]["message"]


def test_answers_compressed_only_when_turned_on_and_asked(start_server: Callable[..., Server], server: Server) -> None:
    texts = {"texts": ["A gorgeous, heartfelt film!", "Dull and far too long.", "ok"] * 2}
    off = server.client.post("/predict", json=texts, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in off.headers  # off by default, whatever the client asks
    s = start_server(compress_responses=True)
    on = s.client.post("/predict", json=texts, headers={"Accept-Encoding": "gzip"})
    assert on.headers["content-encoding"] == "gzip" and on.headers["vary"] == "Accept-Encoding"
    assert int(on.headers["content-length"]) < len(on.content) // 2  # httpx inflated it
    assert on.json()["predictions"] == off.json()["predictions"]
    plain = httpx.post(s.url + "/predict", json=texts, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == on.json()
    # The Triton client's response compression, binary tensors and all: the whole body is
    # compressed, and Inference-Header-Content-Length counts the JSON header before compression.
    many = [b"A gorgeous, heartfelt film with a cast that never once lets it down!"] * 16
    raw = httpx.post(
        s.url + "/v2/models/tiny/infer",
        json={"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [16, 1], "data": [t.decode() for t in many]}]},
        headers={"Accept-Encoding": "deflate"},
    )
    assert raw.status_code == 200 and raw.headers["content-encoding"] == "deflate"
    c = triton.InferenceServerClient(s.url.removeprefix("http://"))
    try:
        i = triton.InferInput("TEXT", [16, 1], "BYTES")
        i.set_data_from_numpy(np.array([[t] for t in many], dtype=object))
        res = c.infer("tiny", [i], response_compression_algorithm="gzip")
        ref = c.infer("tiny", [i])
    finally:
        c.close()
    for name in ("PROBS", "ATTN", "TOKENS", "LENGTHS"):
        assert np.array_equal(res.as_numpy(name), ref.as_numpy(name)), name
