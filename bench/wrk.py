"""Driving wrk: a Lua script that cycles through request bodies, and its report read back."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def lua_script(bodies: list[str], path: Path) -> None:
    quoted = ",\n".join(f"[==[{b}]==]" for b in bodies)
    path.write_text(
        f"local bodies = {{\n{quoted}\n}}\nlocal i = 0\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        'request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, "/predict", nil, bodies[i])\nend\n'
    )


def to_ms(v: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", v)
    assert m, v
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def wrk(url: str, script: Path, conc: int, seconds: int) -> tuple[float, float, float, int]:
    """→ answered (2xx) requests per second, p50 ms, p99 ms, errors (non-2xx and socket errors)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conc}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse(out)


def parse(out: str) -> tuple[float, float, float, int]:
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = int(non2xx.group(1)) if non2xx else 0
    errors = failed + (sum(int(x) for x in sock.groups()) if sock else 0)
    # Answered requests per second: wrk's own Requests/sec counts error answers (429, 503, 504) too.
    assert done is not None, out
    elapsed = float(done.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    return (int(done.group(1)) - failed) / elapsed, p50, p99, errors
