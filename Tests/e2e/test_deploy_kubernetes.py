"""The Kubernetes manifests (deploy/kubernetes), checked offline: rendered with
kustomize (`kubectl kustomize`), the built-in kinds validated against the Kubernetes
schemas (kubernetes-validate, strict), the custom resources Parley uses (KEDA's
ScaledObject and TriggerAuthentication, the RabbitMQ operator's RabbitmqCluster, the
Prometheus operator's ServiceMonitor) checked field by field as their published CRD
documentation describes them, and the whole consistent with the code: ports, probe
paths, every environment variable a setting the code reads, grace periods longer than
the drains, the dashboard the repository's. Needs no stack."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"
BUILT_IN = {"Namespace", "Secret", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Job", "HorizontalPodAutoscaler"}


def render(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed (scripts/lib/deps.sh installs it): kustomize renders the manifests")
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kustomize failed for {path}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return render(DEPLOY / "base")


@pytest.fixture(scope="module")
def hpa() -> list[dict]:
    return render(DEPLOY / "overlays" / "hpa")


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(docs: list[dict], deployment: dict) -> dict[str, str]:
    """The container's environment: its ConfigMap, its Secret, then its own entries."""
    values: dict[str, str] = {}
    spec = container(deployment)
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            values.update(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            values.update(one(docs, "Secret", source["secretRef"]["name"])["stringData"])
    for entry in spec.get("env", []):
        values[entry["name"]] = entry.get("value", "<from " + ",".join(entry.get("valueFrom", {})) + ">")
    return values


def test_every_overlay_renders_and_its_built_in_kinds_pass_the_kubernetes_schemas(base, hpa):
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="scripts/test.sh installs kubernetes-validate")
    for docs in (base, hpa):
        for doc in docs:
            if doc["kind"] in BUILT_IN:
                try:
                    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
                except kubernetes_validate.ValidationError as error:
                    pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {error.message} at {list(error.path)}")
    assert {d["kind"] for d in base} >= BUILT_IN - {"HorizontalPodAutoscaler"} | {"ScaledObject", "RabbitmqCluster", "ServiceMonitor"}
    kinds = {d["kind"] for d in hpa}
    assert "HorizontalPodAutoscaler" in kinds and "ScaledObject" not in kinds and "TriggerAuthentication" not in kinds
    assert all(d["metadata"].get("namespace") == "parley" for d in base if d["kind"] != "Namespace")


def test_the_probes_and_ports_are_the_ones_the_processes_serve(base):
    gateway, worker = one(base, "Deployment", "parley-gateway"), one(base, "Deployment", "parley-worker")
    gateway_env, worker_env = env_of(base, gateway), env_of(base, worker)
    ports = {p["name"]: p["containerPort"] for p in container(gateway)["ports"]}
    assert ports == {"http": int(gateway_env["GATEWAY_PORT"]), "grpc": int(gateway_env["GRPC_PORT"]), "metrics": int(gateway_env["GATEWAY_INTERNAL_PORT"])}
    assert gateway_env["GATEWAY_HOST"] == gateway_env["GATEWAY_INTERNAL_HOST"] == "0.0.0.0"
    assert container(gateway)["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert {p["name"]: p["containerPort"] for p in container(worker)["ports"]} == {"metrics": int(worker_env["WORKER_PORT"])}
    assert worker_env["WORKER_HOST"] == "0.0.0.0"
    assert container(worker)["readinessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    for deployment in (gateway, worker):
        assert "livenessProbe" in container(deployment)
        resources = container(deployment)["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
    # The Services point at ports the pods have.
    for service_name, deployment in (("parley-gateway", gateway), ("parley-worker", worker)):
        service = one(base, "Service", service_name)
        names = {p["name"] for p in container(deployment)["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
        assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    # Every PodDisruptionBudget selects pods of a Deployment.
    for pdb in (d for d in base if d["kind"] == "PodDisruptionBudget"):
        selected = pdb["spec"]["selector"]["matchLabels"]
        assert any(selected.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in base if d["kind"] == "Deployment"), pdb


def test_the_grace_periods_outlast_the_drains(base):
    gateway, worker = one(base, "Deployment", "parley-gateway"), one(base, "Deployment", "parley-worker")
    pre_stop = container(gateway)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    rest_wait = 30  # REST_WAIT_SECONDS' default: the longest a REST turn is waited for at shutdown
    assert gateway["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > int(pre_stop[1]) + rest_wait
    shutdown = int(env_of(base, worker)["SHUTDOWN_TIMEOUT_SECONDS"])
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > shutdown + 5


def test_every_environment_variable_is_one_the_code_reads(base):
    sources = "\n".join(p.read_text() for p in (REPO / "Sources").rglob("*.swift"))
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', sources))
    # Set only to build AMQP_URL from (Kubernetes expands $(NAME) in env values).
    helpers = {"RABBITMQ_USER", "RABBITMQ_PASSWORD"}
    for docs in (base,):
        for name in ("parley-gateway", "parley-worker"):
            unknown = sorted(set(env_of(docs, one(docs, "Deployment", name))) - read - helpers)
            assert not unknown, f"{name} sets variables no setting reads: {unknown}"
    job = one(base, "Job", "parley-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["parley-worker", "migrate"]


def test_the_custom_resources_have_the_fields_their_operators_read(base):
    settings = one(base, "ConfigMap", next(d["metadata"]["name"] for d in base if d["kind"] == "ConfigMap" and "AMQP_PREFIX" in d.get("data", {})))
    worker = one(base, "Deployment", "parley-worker")
    # KEDA ScaledObject (keda.sh/v1alpha1): scaleTargetRef.name a Deployment of this
    # namespace, replica bounds, a rabbitmq trigger on the turn queue with QueueLength
    # or MessageRate and a numeric value, its authenticationRef a TriggerAuthentication.
    scaled = one(base, "ScaledObject", "parley-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert isinstance(spec["pollingInterval"], int) and isinstance(spec["cooldownPeriod"], int)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "rabbitmq"
    meta = trigger["metadata"]
    assert meta["queueName"] == f"{settings['data']['AMQP_PREFIX']}.turns"
    assert meta["mode"] in {"QueueLength", "MessageRate"} and float(meta["value"]) > 0
    assert meta["protocol"] in {"amqp", "http", "auto"}
    assert all(isinstance(v, str) for v in meta.values()), "KEDA's trigger metadata are strings"
    auth = one(base, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["parameter"] == "host"
        secret = one(base, "Secret", ref["name"])
        assert ref["key"] in secret["stringData"]
        assert secret["stringData"][ref["key"]].startswith("http://") == (meta["protocol"] == "http")
    # RabbitmqCluster (rabbitmq.com/v1beta1): an odd number of nodes of at least 3 for
    # quorum queues, the prometheus plugin, and the Service name the pods connect to.
    cluster = one(base, "RabbitmqCluster", "parley-rabbitmq")
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"
    assert cluster["spec"]["replicas"] >= 3 and cluster["spec"]["replicas"] % 2 == 1
    assert "rabbitmq_prometheus" in cluster["spec"]["rabbitmq"]["additionalPlugins"]
    assert f"@{cluster['metadata']['name']}:5672/" in env_of(base, worker)["AMQP_URL"]
    default_user = f"{cluster['metadata']['name']}-default-user"
    refs = [e["valueFrom"]["secretKeyRef"] for e in container(worker)["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert refs and all(r["name"] == default_user and r["key"] in {"username", "password"} for r in refs)
    # ServiceMonitor (monitoring.coreos.com/v1): its selector finds the Services, and
    # every endpoint port is a named port of each.
    monitor = one(base, "ServiceMonitor", "parley")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selected = [s for s in base if s["kind"] == "Service" and monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in selected} == {"parley-gateway", "parley-worker"}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["path"] == "/metrics"
        assert all(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in selected)


def test_the_dashboard_configmap_is_the_repositorys_dashboard(base):
    dashboard = one(base, "ConfigMap", "parley-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["parley-overview.json"] == (REPO / "grafana" / "dashboards" / "parley-overview.json").read_text()
