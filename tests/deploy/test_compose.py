"""docker-compose.yml, checked by docker-compose 1.29's own `config` (offline, no engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.server import DRAIN_GRACE_S
from tests.conftest import ROOT

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose not installed (make test installs it)")


def _config(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    return subprocess.run([COMPOSE, "-f", str(path), *args, "config"], cwd=path.parent, capture_output=True, text=True)


def _rendered(*profiles: str) -> dict[str, Any]:
    args = [a for p in profiles for a in ("--profile", p)]
    out = _config(ROOT / "docker-compose.yml", *args)
    assert out.returncode == 0, out.stderr
    return dict(yaml.safe_load(out.stdout))


def test_compose_file_valid_with_every_profile() -> None:
    services = _rendered("gpu", "monitoring")["services"]
    assert set(services) == {"api", "api-gpu", "prometheus"}


def test_compose_default_up_is_the_api_alone_and_profiles_gate_the_rest() -> None:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "profiles" not in raw["api"]
    assert raw["api-gpu"]["profiles"] == ["gpu"] and raw["prometheus"]["profiles"] == ["monitoring"]


def test_compose_api_healthcheck_ports_and_grace_period() -> None:
    api = _rendered()["services"]["api"]
    assert api["ports"][0]["target"] == 8000 and int(api["ports"][0]["published"]) == 8000
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["restart"] == "unless-stopped"
    env = api["environment"]
    grace = float(api["stop_grace_period"].rstrip("s"))
    assert grace > float(env["SENTIMENT_SHUTDOWN_DELAY_S"]) + float(env["SENTIMENT_DRAIN_TIMEOUT_S"]) + DRAIN_GRACE_S
    assert api["build"]["target"] == "runtime"


def test_compose_gpu_profile_reserves_an_nvidia_gpu() -> None:
    gpu = _rendered("gpu")["services"]["api-gpu"]
    (dev,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert dev["driver"] == "nvidia" and dev["count"] == 1 and dev["capabilities"] == ["gpu"]
    assert gpu["build"]["target"] == "runtime-gpu"


def test_compose_settings_overridable_from_environment() -> None:
    out = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SENTIMENT_WORKERS": "4", "SENTIMENT_API_KEY": "k"},
    )
    env = yaml.safe_load(out.stdout)["services"]["api"]["environment"]
    assert env["SENTIMENT_WORKERS"] == "4" and env["SENTIMENT_API_KEY"] == "k"


def test_compose_prometheus_scrapes_the_api_metrics() -> None:
    prom = _rendered("monitoring")["services"]["prometheus"]
    conf = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = conf["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["api:8000"]
    assert any("prometheus.yml" in str(v) for v in prom["volumes"])


def test_compose_config_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: x\n    ports: 8000\n    stop_grace_period: [1]\n")
    out = _config(broken)
    assert out.returncode != 0 and "ports" in out.stderr
