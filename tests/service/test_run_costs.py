"""The cost model of onnxruntime runs and the cut of a call into runs: C and Python alike, the
limits kept, and a measurement over a real onnxruntime session (the tiny artifact)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from service.engine import Engine, EngineConfig
from service.model_files import Metadata
from service.native import fastpath
from service.run_costs import LARGE_RUN, SERVICE_RUN_US, RunCosts, cut_runs, default_costs, measure

native = pytest.mark.skipif(fastpath is None, reason="service._fastpath not built")


def _runs(lengths: list[int], costs: RunCosts, max_tokens: int = 4096, native: bool = True) -> list[list[int]]:
    starts = cut_runs(lengths, costs, max_tokens, native)
    if not starts:
        return []
    return [lengths[a:b] for a, b in zip(starts, [*starts[1:], len(lengths)], strict=True)]


@pytest.mark.parametrize("use_c", [False, pytest.param(True, marks=native)])
def test_cut_runs_splits_where_padding_costs_more_than_a_run(use_c: bool) -> None:
    costs = RunCosts(20.0, [0.0] + [float(b) for b in range(1, 17)], 128, measured=True)
    # Eight texts of 10 and eight of 40: together, 8 × 30 = 240 padded tokens; apart, one more run (20).
    assert _runs([10] * 8 + [40] * 8, costs, native=use_c) == [[10] * 8, [40] * 8]
    # One token apart: 8 padded tokens cost less than a second run.
    assert _runs([10] * 8 + [11] * 8, costs, native=use_c) == [[10] * 8 + [11] * 8]


@pytest.mark.parametrize("use_c", [False, pytest.param(True, marks=native)])
def test_cut_runs_keeps_max_run_and_max_tokens(use_c: bool) -> None:
    costs = default_costs(4, 64)
    runs = _runs([5] * 10, costs, native=use_c)
    assert [n for r in runs for n in r] == [5] * 10 and all(len(r) <= 4 for r in runs)
    assert _runs([30, 30, 30], costs, max_tokens=59, native=use_c) == [[30], [30], [30]]  # two would be 60
    assert _runs([100], costs, max_tokens=10, native=use_c) == [[100]]  # a lone text longer than the budget still runs
    assert _runs([], costs, native=use_c) == []


@native
def test_cut_runs_c_and_python_agree() -> None:
    rnd = random.Random(7)
    costs = default_costs(16, 128)
    for _ in range(500):
        lengths = sorted(rnd.randint(1, 128) for _ in range(rnd.randint(0, 80)))
        max_tokens = rnd.choice([4096, 300, 50, 1])
        assert cut_runs(lengths, costs, max_tokens, True) == cut_runs(lengths, costs, max_tokens, False)


def test_cut_runs_beyond_the_table_computes_the_rows_it_needs() -> None:
    costs = default_costs(8, 16)  # rows up to 16 tokens; a longer text takes the Python twin
    assert _runs([20, 20, 20], costs) == [[20, 20, 20]]


@native
def test_cut_runs_c_refuses_a_bad_table() -> None:
    assert fastpath is not None
    with pytest.raises(ValueError, match="outside the cost table"):
        fastpath.cut_runs([5], [[0.0, 1.0]] * 3, 1, 100)
    with pytest.raises(ValueError, match="max_run"):
        fastpath.cut_runs([1], [[0.0, 1.0]] * 3, 4, 100)


def test_measure_fits_a_real_session(tiny_artifact: Path) -> None:
    meta = Metadata.load(tiny_artifact)
    engine = Engine(tiny_artifact / "model.onnx", EngineConfig(device="cpu"))
    costs = measure(engine.run, meta.pad_id, 8, meta.max_length, reps=2)
    assert costs.measured and costs.max_run == 8
    assert all(s > 0 for s in costs.step[1:])
    assert costs.fixed >= SERVICE_RUN_US
    per_text = {round(costs.step[b] / b, 9) for b in range(LARGE_RUN, 9)}
    assert len(per_text) == 1  # large runs: one cost per text and step, so noise cannot split them
    assert len(costs.rows) == meta.max_length + 1


def test_measure_falls_back_to_the_default_when_time_does_not_grow_with_length() -> None:
    def flat(ids: np.ndarray, mask: np.ndarray) -> None:  # as fast for 48 tokens as for 16: not a model
        return None

    costs = measure(flat, 0, 4, 64, reps=1)
    assert not costs.measured and costs.step == default_costs(4, 64).step
