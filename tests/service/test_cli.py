from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_cli_predict_prints_label_score_and_top_tokens(tiny_artifact: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "service",
            "predict",
            "--artifact",
            str(tiny_artifact),
            "--device",
            "cpu",
            "A lovely film.",
            "Awful.",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(out) == 2
    assert out[0].split()[0] in ("positive", "negative")
    assert "'A lovely film.'" in out[0] and "attention:" in out[0]


def test_cli_missing_artifact_exits_2_with_a_fix(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "service", "predict", "--artifact", str(tmp_path), "hi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2
    assert "no metadata.json" in p.stderr and "python -m model train" in p.stderr
