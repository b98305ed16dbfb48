"""deploy/: every overlay rendered and validated against the Kubernetes OpenAPI schemas, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.routes import protected, public
from service.server import DRAIN_GRACE_S
from tests.conftest import ROOT
from tests.deploy.kustomize import build
from tests.deploy.settings_names import check_settings
from tests.deploy.test_dockerfile import stage_env

K8S_VERSION = "1.33.0"
DEPLOY = ROOT / "deploy"
KSERVE = DEPLOY / "kserve" / "inferenceservice.yaml"
DEFAULT_GRACE_S = 30  # a pod's terminationGracePeriodSeconds when it sets none
OVERLAYS = [DEPLOY / "base", DEPLOY / "overlays" / "cpu", DEPLOY / "overlays" / "gpu"]
ROUTES = {r.path for router in (public, protected) for r in router.routes if hasattr(r, "path")}


def _one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (r,) = [r for r in resources if r["kind"] == kind]
    return r


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_manifests_valid_against_kubernetes_schemas(folder: Path) -> None:
    resources = build(folder)
    assert {r["kind"] for r in resources} == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for r in resources:
        kubernetes_validate.validate(r, K8S_VERSION, strict=True)


def test_schema_validation_catches_a_broken_manifest() -> None:
    dep = _one(build(DEPLOY / "base"), "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_probes_point_at_real_routes_and_the_container_port(folder: Path) -> None:
    resources = build(folder)
    (c,) = _one(resources, "Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000}
    probes = {k: c[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for p in probes.values():
        assert p["path"] in ROUTES and p["port"] in ("http", 8000)
    svc = _one(resources, "Service")
    assert svc["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_grace_period_exceeds_prestop_plus_delay_plus_drain(folder: Path) -> None:
    resources = build(folder)
    pod = _one(resources, "Deployment")["spec"]["template"]["spec"]
    settings = _one(resources, "ConfigMap")["data"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    sleep = float(pre_stop[-1].rsplit("sleep(", 1)[1].rstrip(")"))
    budget = sleep + float(settings["SENTIMENT_SHUTDOWN_DELAY_S"]) + float(settings["SENTIMENT_DRAIN_TIMEOUT_S"]) + DRAIN_GRACE_S
    assert pod["terminationGracePeriodSeconds"] > budget


def test_pod_runs_unprivileged_with_read_only_root() -> None:
    pod = _one(build(DEPLOY / "base"), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = pod["containers"][0]["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "/tmp" in {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}


def test_gpu_overlay_asks_for_a_gpu_and_the_gpu_image() -> None:
    resources = build(DEPLOY / "overlays" / "gpu")
    (c,) = _one(resources, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["image"].endswith("-gpu")
    assert _one(resources, "ConfigMap")["data"]["SENTIMENT_DEVICE"] == "cuda"
    assert {r["metadata"]["namespace"] for r in resources} == {"sentiment-gpu"}


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_deployment_leaves_the_replica_count_to_the_hpa(folder: Path) -> None:
    resources = build(folder)
    dep, hpa = _one(resources, "Deployment"), _one(resources, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert "replicas" not in dep["spec"], "kubectl apply would reset the HPA's count"


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_probes_tolerate_one_slow_answer(folder: Path) -> None:
    (c,) = _one(build(folder), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert c["readinessProbe"].get("failureThreshold", 3) >= 3
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe].get("timeoutSeconds", 1) >= 3, probe


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_configmap_keys_are_real_settings(folder: Path) -> None:
    check_settings(_one(build(folder), "ConfigMap")["data"], f"{folder.name} ConfigMap")


def _kserve() -> tuple[dict[str, Any], dict[str, Any]]:
    """The InferenceService's predictor and its one container."""
    predictor = yaml.safe_load(KSERVE.read_text())["spec"]["predictor"]
    (c,) = predictor["containers"]
    return predictor, c


def test_kserve_settings_are_real_settings_and_parse() -> None:
    _, c = _kserve()
    check_settings({e["name"]: e["value"] for e in c["env"]}, "KServe container env")


def test_kserve_shutdown_fits_the_termination_grace_period() -> None:
    predictor, c = _kserve()
    # What the container starts with: the image's ENV, then the InferenceService's env.
    env = {**stage_env("runtime"), **{e["name"]: e["value"] for e in c["env"]}}
    assert "lifecycle" not in c, "a preStop hook would also count against the grace period"
    budget = float(env["SENTIMENT_SHUTDOWN_DELAY_S"]) + float(env["SENTIMENT_DRAIN_TIMEOUT_S"]) + DRAIN_GRACE_S
    assert budget <= predictor.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)


def test_kserve_inference_service_uses_the_container_contract() -> None:
    isvc = yaml.safe_load(KSERVE.read_text())
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    _, c = _kserve()
    assert c["ports"][0]["containerPort"] == 8000
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The container part is a core/v1 Container: validate it as one, inside a Pod.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [c]}}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
