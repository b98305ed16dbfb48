"""Reading wrk's report: error answers are not throughput (wrk's own Requests/sec counts them)."""

from __future__ import annotations

import pytest

from bench.wrk import parse

# Real wrk 4.1 output (POSTs to a server that answers 501): every request an error answer.
ALL_ERRORS = """Running 1s test @ http://127.0.0.1:18777/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.17ms  300.76us   3.44ms   72.92%
    Req/Sec     3.31k   127.12     3.41k    90.91%
  Latency Distribution
     50%    1.14ms
     75%    1.33ms
     90%    1.54ms
     99%    2.07ms
  3614 requests in 1.10s, 1.91MB read
  Non-2xx or 3xx responses: 3614
Requests/sec:   3285.94
Transfer/sec:      1.74MB
"""


def test_parse_error_answers_do_not_count_as_throughput() -> None:
    rps, p50, p99, errors = parse(ALL_ERRORS)
    assert rps == 0 and errors == 3614
    assert (p50, p99) == (1.14, 2.07)


def test_parse_answered_requests_and_socket_errors() -> None:
    out = ALL_ERRORS.replace(
        "Non-2xx or 3xx responses: 3614", "Socket errors: connect 0, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 14"
    )
    rps, _, _, errors = parse(out.replace("99%    2.07ms", "99%    1.20s"))
    assert rps == pytest.approx(3600 / 1.10) and errors == 14 + 5
    assert parse(out.replace("99%    2.07ms", "99%    1.20s"))[2] == 1200.0
