"""The serving path must work where only the `serve` extra is installed: no torch, no training deps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "sklearn", "matplotlib", "safetensors", "onnx", "model"}:
            raise ImportError(f"{name} is not installed on a serving machine")
sys.meta_path.insert(0, Block())
import asyncio, json
from pathlib import Path
from service.settings import Settings
from service.app import State, build_predictor, create_app
from service.metrics import Metrics
import service.cli, service.server
artifact = Path(sys.argv[1])
create_app(Settings(artifact=artifact))
s = Settings(artifact=artifact)
async def go():
    p = build_predictor(s, State(settings=s, metrics=Metrics()))
    p.batcher.start()
    out = await p.predict(["fine"])
    await p.batcher.close(5)
    return out
print(json.loads(asyncio.run(go()))["predictions"][0]["label"])
"""


def test_serving_path_runs_without_torch_or_training_packages(tiny_artifact: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMENT_")}  # nor a .env: runs in tmp_path
    out = subprocess.run([sys.executable, "-c", PROBE, str(tiny_artifact)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() in ("negative", "positive")
