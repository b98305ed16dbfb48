"""docker-compose.yml, checked by docker-compose 1.29's own `config` (offline, no engine needed).

Every rendering runs with a clean environment and an empty `--env-file` (1.29 refuses /dev/null),
so neither the caller's SENTIMENT_* / *_PUBLISH_PORT variables nor a developer's ./.env change
what is checked."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from starlette.requests import Request

from service.errors import Unauthorized
from service.routes import check_key
from service.server import DRAIN_GRACE_S
from tests.conftest import ROOT
from tests.deploy.settings_names import check_settings

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "deploy" / "prometheus"
KEY_IN_PROMETHEUS = "/etc/prometheus/api-key"
Render = Callable[..., dict[str, Any]]


def compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose not installed: run `make tools` (Debian's docker-compose 1.29 checks docker-compose.yml offline)")
    return exe


def _config(path: Path, *args: str, env_file: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [compose(), "-f", str(path), "--env-file", str(env_file), *args, "config"]
    return subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **(env or {})})


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    f = tmp_path_factory.mktemp("compose") / "empty.env"
    f.write_text("")
    return f


@pytest.fixture(scope="module")
def render(empty_env_file: Path) -> Render:
    """`docker-compose config` of docker-compose.yml with these profiles, parsed."""

    def _render(*profiles: str, env: dict[str, str] | None = None, env_file: Path = empty_env_file) -> dict[str, Any]:
        args = [a for p in profiles for a in ("--profile", p)]
        out = _config(COMPOSE_FILE, *args, env_file=env_file, env=env)
        assert out.returncode == 0, out.stderr
        return dict(yaml.safe_load(out.stdout))

    return _render


def test_compose_file_valid_with_every_profile(render: Render) -> None:
    services = render("gpu", "monitoring")["services"]
    assert set(services) == {"api", "api-gpu", "prometheus"}


def test_compose_default_up_is_the_api_alone_and_profiles_gate_the_rest() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    assert "profiles" not in raw["api"]
    assert raw["api-gpu"]["profiles"] == ["gpu"] and raw["prometheus"]["profiles"] == ["monitoring"]


def test_compose_api_healthcheck_ports_and_grace_period(render: Render) -> None:
    api = render()["services"]["api"]
    assert api["ports"][0]["target"] == 8000 and int(api["ports"][0]["published"]) == 8000
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["restart"] == "unless-stopped"
    env = api["environment"]
    grace = float(api["stop_grace_period"].rstrip("s"))
    assert grace > float(env["SENTIMENT_SHUTDOWN_DELAY_S"]) + float(env["SENTIMENT_DRAIN_TIMEOUT_S"]) + DRAIN_GRACE_S
    assert api["build"]["target"] == "runtime"


def test_compose_gpu_profile_reserves_an_nvidia_gpu(render: Render) -> None:
    gpu = render("gpu")["services"]["api-gpu"]
    (dev,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert dev["driver"] == "nvidia" and dev["count"] == 1 and dev["capabilities"] == ["gpu"]
    assert gpu["build"]["target"] == "runtime-gpu"


def test_compose_gpu_device_defaults_to_cuda_not_auto(render: Render) -> None:
    # auto would fall back to the CPU with only a warning; cuda fails start-up without a GPU.
    assert render("gpu")["services"]["api-gpu"]["environment"]["SENTIMENT_DEVICE"] == "cuda"
    overridden = render("gpu", env={"SENTIMENT_GPU_DEVICE": "tensorrt", "SENTIMENT_DEVICE": "cpu"})
    assert overridden["services"]["api-gpu"]["environment"]["SENTIMENT_DEVICE"] == "tensorrt"


def test_compose_settings_overridable_from_environment(render: Render) -> None:
    env = render(env={"SENTIMENT_WORKERS": "4", "SENTIMENT_API_KEY": "k"})["services"]["api"]["environment"]
    assert env["SENTIMENT_WORKERS"] == "4" and env["SENTIMENT_API_KEY"] == "k"


def test_compose_render_ignores_caller_environment_and_dotenv(
    render: Render, empty_env_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTIMENT_WORKERS", "7")
    monkeypatch.setenv("SENTIMENT_PUBLISH_PORT", "9999")
    assert render()["services"]["api"]["environment"]["SENTIMENT_WORKERS"] == "2"
    assert render()["services"]["api"]["ports"][0]["published"] == 8000
    # A developer's .env beside the compose file is not read either.
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("SENTIMENT_WORKERS=9\n")
    out = _config(tmp_path / "docker-compose.yml", env_file=empty_env_file)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["services"]["api"]["environment"]["SENTIMENT_WORKERS"] == "2"


@pytest.mark.parametrize("env_file", ["defaults", ".env.example"])
def test_compose_container_settings_are_real_settings_and_parse(render: Render, env_file: str) -> None:
    services = render("gpu", "monitoring", **({} if env_file == "defaults" else {"env_file": ENV_EXAMPLE}))["services"]
    for name in ("api", "api-gpu"):
        check_settings(services[name]["environment"], f"docker-compose.yml {name} ({env_file})")


def test_env_example_names_exactly_the_compose_variables() -> None:
    lines = [ln for ln in ENV_EXAMPLE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    example = [ln.split("=", 1)[0] for ln in lines]
    assert len(example) == len(set(example)), "a variable twice in .env.example"
    used = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    assert set(example) == used, f"only in .env.example: {set(example) - used}; not in it: {used - set(example)}"


def test_compose_prometheus_scrapes_the_api_metrics(render: Render) -> None:
    prom = render("monitoring")["services"]["prometheus"]
    conf = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = conf["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["api:8000"]
    assert any("prometheus.yml" in str(v) for v in prom["volumes"])


def _key_mount(prom: dict[str, Any]) -> Path:
    (source,) = [v.split(":")[0] for v in prom["volumes"] if v.split(":")[1] == KEY_IN_PROMETHEUS and v.endswith(":ro")]
    return Path(source)


def test_compose_prometheus_sends_the_api_key_from_the_mounted_file(render: Render) -> None:
    (job,) = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": KEY_IN_PROMETHEUS}
    # No key (the default): an empty file, which Prometheus reads at each scrape without error.
    default = _key_mount(render("monitoring")["services"]["prometheus"])
    assert default.is_file() and default.read_text() == ""
    chosen = render("monitoring", env={"PROMETHEUS_API_KEY_FILE": "/run/keys/sentiment"})["services"]["prometheus"]
    assert _key_mount(chosen) == Path("/run/keys/sentiment")


def test_service_without_key_accepts_the_empty_bearer_prometheus_sends() -> None:
    def request(auth: bytes) -> Request:
        return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": [(b"authorization", auth)]})

    def state(key: str | None) -> Any:
        return cast(Any, SimpleNamespace(settings=SimpleNamespace(api_key=key and SimpleNamespace(get_secret_value=lambda: key))))

    check_key(request(b"Bearer "), state(None))  # the no-key default: Prometheus sends "Bearer "
    check_key(request(b"Bearer k"), state("k"))
    with pytest.raises(Unauthorized):
        check_key(request(b"Bearer "), state("k"))


def test_compose_config_rejects_a_broken_file(tmp_path: Path, empty_env_file: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: x\n    ports: 8000\n    stop_grace_period: [1]\n")
    out = _config(broken, env_file=empty_env_file)
    assert out.returncode != 0 and "ports" in out.stderr
