"""The runtime image without an engine: a fresh virtualenv gets exactly what the runtime stage
installs (the same requirements file, the same pip flags), a folder laid out like /app gets the
same files (with service/_fastpath*.c compiled by the native stages' own script), and the stage's
ENTRYPOINT runs with the stage's ENV. Only the port is changed, to a free one. Then /readyz and one
/predict."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.deploy.test_dockerfile import instruction, stage, stage_env
from tests.service.conftest import free_port


def test_runtime_stage_equivalent_serves(tiny_artifact: Path, tmp_path: Path) -> None:
    s = stage("runtime")
    env_pairs = stage_env("runtime")
    (pip_line,) = [r for r in instruction(s, "RUN") if "pip install" in r]
    pip_args = shlex.split(pip_line.split("&&")[0])[1:]  # e.g. install --no-deps -r /tmp/requirements.txt
    assert pip_args[:3] == ["install", "--no-deps", "-r"]
    (entry,) = instruction(s, "ENTRYPOINT")
    cmd = __import__("json").loads(entry)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    req = ROOT / "requirements" / "serve.txt"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pip_args[:-1], str(req)], check=True)

    app = tmp_path / "app"
    shutil.copytree(ROOT / "service", app / "service", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    # The native stages: deploy/build-native.sh, for this venv's python3.
    for name in ("native", "native-gpu"):
        assert "RUN sh build-native.sh" in stage(name), name
    build = tmp_path / "native"
    build.mkdir()
    script = ROOT / "deploy" / "build-native.sh"
    subprocess.run(["sh", str(script), str(ROOT / "service")], cwd=build, env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin"}, check=True)
    (built,) = build.glob("_fastpath*.so")  # COPY --from=native /src/_fastpath*.so ./service/
    shutil.copy(built, app / "service")
    shutil.copytree(tiny_artifact, app / "artifacts" / "default")
    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), **env_pairs, "SENTIMENT_PORT": str(port)}
    env = {k: v.replace("$PATH", os.environ.get("PATH", "")) for k, v in env.items()}
    assert env["SENTIMENT_ARTIFACT"] == "/app/artifacts/default"
    env["SENTIMENT_ARTIFACT"] = str(app / "artifacts" / "default")  # /app is tmp_path/app here
    assert cmd[0] == "python"
    proc = subprocess.Popen([str(py), *cmd[1:]], cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < end, "not ready within 60 s"
            time.sleep(0.2)
        r = httpx.post(url + "/predict", json={"text": "A fine, warm film."})
        assert r.status_code == 200 and r.json()["predictions"][0]["label"] in ("negative", "positive")
        # torch is not in the image, and the server did not need it.
        assert subprocess.run([str(py), "-c", "import torch"], capture_output=True).returncode != 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:  # not left holding the port for the tests after this one
            proc.kill()
            proc.wait()
            raise
    log = proc.stdout.read().decode() if proc.stdout else ""
    assert code == 0, log[-4000:]
    assert "is not built" not in log, "the runtime stage runs without its native module"
