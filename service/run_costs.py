"""What one onnxruntime run costs by shape, and the cheapest way to cut an engine call's texts into runs.

A run of b texts padded to T tokens costs about `fixed + step[b] × T`: a fixed part (onnxruntime's
own work per run, ~45 µs for the default model on this project's 2-vCPU host, plus the serving
process's, SERVICE_RUN_US) and a part per padded step that is not proportional to b for small runs
(on that host 7.5-8.3 µs per text and step for a run of 1, 5.3-5.8 from 5 texts on). The worker
measures both for every b up to its run size during warm-up, on its own model and CPU (`measure`,
about 0.3 s); until then, and without a warm-up, `default_costs` stands in.

`cut_runs` then cuts a call's texts, sorted by length, into the runs of least total cost (dynamic
programming over the cut points): a token of padding for every text of a run is worth a run of its
own only when the run is large enough to pay the fixed part, which no fixed padding threshold
expresses (docs/PERFORMANCE.md, session 13).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from service.native import fastpath

RunFn = Callable[[np.ndarray, np.ndarray], object]

# Without a measurement: onnxruntime's CPU time per padded token in a run of 1-4 texts against runs
# of 5 or more, and a run's fixed part with SERVICE_RUN_US in padded tokens (≈ 106 µs at 5.2 µs a
# token: the default model on this project's host).
SMALL_RUN_COST = {1: 1.77, 2: 1.28, 3: 1.13, 4: 1.06}
FIXED_TOKENS = 20.0
# What one more run costs the serving process beyond onnxruntime's own work, which `measure` times
# alone: the event loop pads its input, records its metrics and splits its outputs, and the engine
# thread hands each run to onnxruntime between the loop's turns on the core. Under 32-text load at
# c=64, cutting calls by onnxruntime's time alone made 2.2× the runs and cost 4 µs more CPU per
# text, ≈ 50 µs per extra run; with this added, the cut gained at c=16 and lost nothing at c=64
# (docs/PERFORMANCE.md, session 13).
SERVICE_RUN_US = 60.0
LARGE_RUN = 5  # from here on, one cost per text and step for every run size (see measure)


class RunCosts:
    """The cost of a run of b texts (1..max_run) padded to T tokens: fixed + step[b] × T."""

    def __init__(self, fixed: float, step: Sequence[float], max_length: int, measured: bool) -> None:
        self.fixed, self.step, self.measured = fixed, list(step), measured  # step[0] unused
        self.max_run = len(self.step) - 1
        self.rows = [self.row(t) for t in range(max_length + 1)]  # rows[T][b], looked up per text

    def summary(self) -> dict[str, object]:
        """For the log: the fixed part of a run, and its cost per text and padded token by run size."""
        return {"fixed": round(self.fixed), "step_per_text": [round(self.step[b] / b, 2) for b in range(1, self.max_run + 1)]}

    def row(self, t: int) -> list[float]:
        return [0.0] + [self.fixed + self.step[b] * t for b in range(1, self.max_run + 1)]


def default_costs(max_run: int, max_length: int) -> RunCosts:
    """In padded-token units: FIXED_TOKENS per run, plus b tokens per step, more for runs of 1-4."""
    step = [0.0] + [SMALL_RUN_COST.get(b, 1.0) * b for b in range(1, max_run + 1)]
    return RunCosts(FIXED_TOKENS, step, max_length, measured=False)


def measure(run: RunFn, pad_id: int, max_run: int, max_length: int, reps: int = 5) -> RunCosts:
    """Time a run of every size 1..max_run at two lengths (the least time of `reps` runs each, so that
    being preempted does not count) and fit step × T per size plus one fixed part. Falls back to
    default_costs if the timings make no sense (a step that does not cost more at the longer
    length)."""
    short, long_ = max(1, min(16, max_length // 3)), max(2, min(48, max_length))
    if long_ <= short:
        return default_costs(max_run, max_length)
    step, intercepts = [0.0], []
    for b in range(1, max_run + 1):
        t_short, t_long = (_least_time(run, b, n, pad_id, reps) for n in (short, long_))
        s = (t_long - t_short) / (long_ - short)
        if s <= 0:
            return default_costs(max_run, max_length)
        step.append(s)
        intercepts.append(t_short - s * short)
    # The fixed part is the session's own work per run, the same for every size; each size's
    # intercept carries the noise of two timings, so all sizes share their median.
    fixed = max(0.0, float(np.median(intercepts))) + SERVICE_RUN_US
    # From LARGE_RUN texts on, the cost per text and step is flat but for a few percent that move
    # from one warm-up to the next (5.3-5.8 µs on the default model): taken as measured, that
    # noise alone split runs of 16 into two of 8 of the same length in one `make bench` (c=64:
    # mean run 15 → 12.4 texts, 79% of the ceiling). They share their median instead, so only
    # padding and the fixed part decide the cut among them.
    if max_run >= LARGE_RUN:
        flat = float(np.median([step[b] / b for b in range(LARGE_RUN, max_run + 1)]))
        step[LARGE_RUN:] = [flat * b for b in range(LARGE_RUN, max_run + 1)]
    return RunCosts(fixed, step, max_length, measured=True)


def _least_time(run: RunFn, b: int, n: int, pad_id: int, reps: int) -> float:
    ids = np.full((b, n), pad_id + 1, dtype=np.int64)  # (B, T)
    mask = np.ones((b, n), dtype=np.int64)  # (B, T)
    run(ids, mask)  # the first run of a shape allocates
    best = float("inf")
    for _ in range(reps):  # wall time counts onnxruntime's intra-op threads too; the least is the least disturbed
        t = time.perf_counter()
        run(ids, mask)
        best = min(best, time.perf_counter() - t)
    return best * 1e6


def cut_runs(lengths: list[int], costs: RunCosts, max_tokens: int, native: bool = True) -> list[int]:
    """The runs of least total cost for texts of these lengths (sorted, shortest first): the index
    where each run starts, in order. A run holds at most costs.max_run texts and, when it has more
    than one, at most max_tokens padded tokens. In C (service/_fastpath_batch.c) where built; this
    is its twin."""
    if native and fastpath is not None and (not lengths or lengths[-1] < len(costs.rows)):
        return fastpath.cut_runs(lengths, costs.rows, costs.max_run, max_tokens)  # type: ignore[no-any-return]
    n, max_run, rows = len(lengths), costs.max_run, costs.rows
    best = [0.0] * (n + 1)  # best[e]: the least cost of the first e texts
    start = [0] * (n + 1)  # where the last run of that best cut starts
    for e in range(1, n + 1):
        longest = lengths[e - 1]
        row = rows[longest] if longest < len(rows) else costs.row(longest)
        first = max(0, e - max_run, e - max(1, max_tokens // longest))
        least, at = float("inf"), e - 1
        for j in range(first, e):
            c = best[j] + row[e - j]
            if c < least:
                least, at = c, j
        best[e], start[e] = least, at
    starts = []
    e = n
    while e:
        e = start[e]
        starts.append(e)
    return starts[::-1]
