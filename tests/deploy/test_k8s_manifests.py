"""The Kubernetes overlays render, validate against the Kubernetes schemas, and hang together."""

from __future__ import annotations

import base64
import copy
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.rendering import DEPLOY, OVERLAYS, kustomize

# The oldest Kubernetes the manifests support (preStop sleep hooks are on by default since
# 1.30) and the newest schema the validator bundles.
KUBERNETES_VERSIONS = ("1.30", "1.37")
PLACEHOLDER = "set-by-the-versions-component"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# Secrets an operator creates in production overlays; the dev overlay generates them.
PRODUCTION_OVERLAYS = {"gpu", "cpu"}
VAR_REFERENCE = re.compile(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def get(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_template(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def selects(selector: dict, labels: dict) -> bool:
    """matchLabels semantics (the only form these manifests use)."""
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def runbook_secrets() -> dict[str, set[str]]:
    """Secrets (name → keys) that deploy/README.md tells operators to create."""
    text = (DEPLOY / "README.md").read_text().replace("\\\n", " ")
    secrets: dict[str, set[str]] = {}
    for match in re.finditer(r"create secret generic (\S+)([^\n]*)", text):
        secrets[match.group(1)] = set(re.findall(r"--from-literal=(\w+)=", match.group(2)))
    return secrets


def secret_keys(docs: list[dict], overlay: str) -> dict[str, set[str]]:
    rendered = {
        s["metadata"]["name"]: set(s.get("data", {})) | set(s.get("stringData", {}))
        for s in by_kind(docs, "Secret")
    }
    if overlay in PRODUCTION_OVERLAYS:
        return runbook_secrets() | rendered
    return rendered


def config_map_keys(docs: list[dict]) -> dict[str, set[str]]:
    return {c["metadata"]["name"]: set(c.get("data", {})) for c in by_kind(docs, "ConfigMap")}


def container_environment(docs: list[dict], workload: dict, name: str) -> dict[str, str]:
    """The environment Kubernetes gives a container, from the rendered ConfigMaps and Secrets
    (Secrets that are not rendered, i.e. created by the operator, are left out)."""
    maps = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind(docs, "ConfigMap")}
    secrets = {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}
        for s in by_kind(docs, "Secret")
    }
    (container,) = [c for c in containers(pod_template(workload)["spec"]) if c["name"] == name]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]])
        if "secretRef" in source:
            env.update(secrets.get(source["secretRef"]["name"], {}))
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {})
        if "value" in variable:
            env[variable["name"]] = VAR_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), variable["value"])
        elif "configMapKeyRef" in ref:
            env[variable["name"]] = maps[ref["configMapKeyRef"]["name"]][ref["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in ref and ref["secretKeyRef"]["name"] in secrets:
            env[variable["name"]] = secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]]
    return env


def triton_s3_location(url: str) -> tuple[str | None, str, str]:
    """(host:port or None, bucket, prefix) of a Triton repository path (s3://[https://]host:port/…)."""
    assert url.startswith("s3://"), url
    rest = url.removeprefix("s3://")
    scheme_given = rest.startswith(("http://", "https://"))
    if scheme_given:
        rest = rest.split("://", 1)[1]
    first, _, path = rest.partition("/")
    if scheme_given or ":" in first:
        bucket, _, prefix = path.partition("/")
        return first, bucket, prefix.strip("/")
    return None, first, path.strip("/")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_kubernetes_schemas_strictly(rendered, overlay):
    for doc in rendered[overlay]:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(
                    f"{overlay}: {doc['kind']}/{doc['metadata']['name']} invalid for "
                    f"Kubernetes {version} at {list(error.path)}: {error.message}"
                )


def test_the_schema_check_rejects_unknown_fields(rendered):
    deployment = copy.deepcopy(get(rendered["gpu"], "Deployment", "pastiche-triton"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_every_overlay_is_rendered():
    assert {"gpu", "cpu", "dev"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_versions_come_from_versions_env(rendered, versions, overlay):
    docs = rendered[overlay]
    assert PLACEHOLDER not in yaml.safe_dump_all(docs), f"{overlay}: a placeholder survived"
    triton = get(docs, "ConfigMap", next(
        c["metadata"]["name"] for c in by_kind(docs, "ConfigMap")
        if c["metadata"]["name"].startswith("pastiche-triton-")
    ))
    assert triton["data"]["PASTICHE_TRITON_TAG"] == versions["TRITON_TAG"]
    for workload in workloads(docs):
        for container in containers(pod_template(workload)["spec"]):
            image = container["image"]
            assert re.fullmatch(r"[\w./-]+(:\d+)?[\w./-]*:[\w.-]+", image), f"{image} has no tag"
            assert not image.endswith(":latest"), image
            if image.startswith("chrislusf/seaweedfs:"):
                assert image == f"chrislusf/seaweedfs:{versions['SEAWEEDFS_TAG']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_maps_and_secrets_referenced_exist(rendered, overlay):
    docs = rendered[overlay]
    maps, secrets = config_map_keys(docs), secret_keys(docs, overlay)
    for workload in workloads(docs):
        for container in containers(pod_template(workload)["spec"]):
            where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in maps, where
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, where
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    name, key = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
                    assert key in maps.get(name, set()), f"{where}: ConfigMap {name} has no {key}"
                if "secretKeyRef" in ref:
                    name, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
                    assert key in secrets.get(name, set()), f"{where}: Secret {name} has no {key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_variable_references_are_defined_before_use(rendered, overlay):
    """$(VAR) in env values needs VAR from envFrom or earlier in env; in args, from anywhere."""
    docs = rendered[overlay]
    maps, secrets = config_map_keys(docs), secret_keys(docs, overlay)
    for workload in workloads(docs):
        for container in containers(pod_template(workload)["spec"]):
            where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
            defined: set[str] = set()
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    defined |= maps[source["configMapRef"]["name"]]
                if "secretRef" in source:
                    defined |= secrets[source["secretRef"]["name"]]
            for variable in container.get("env", []):
                for name in VAR_REFERENCE.findall(variable.get("value", "")):
                    assert name in defined, f"{where}: {variable['name']} uses $({name}) before it is defined"
                defined.add(variable["name"])
            for word in container.get("command", []) + container.get("args", []):
                for name in VAR_REFERENCE.findall(word):
                    assert name in defined, f"{where}: argument {word!r} uses undefined $({name})"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_repository_spellings_name_the_same_place(rendered, overlay):
    """Triton's s3:// repository root and the boto3 one agree on endpoint, bucket and prefix."""
    storage = next(
        c["data"] for c in by_kind(rendered[overlay], "ConfigMap")
        if c["metadata"]["name"].startswith("pastiche-storage-")
    )
    host, bucket, prefix = triton_s3_location(storage["PASTICHE_TRITON_REPOSITORY_ROOT"])
    boto = urlsplit(storage["PASTICHE_REPOSITORY_ROOT"])
    assert boto.scheme == "s3"
    assert (bucket, prefix) == (boto.netloc, boto.path.strip("/"))
    assert bucket == storage["PASTICHE_S3_BUCKET"]
    endpoint = urlsplit(storage["PASTICHE_S3_ENDPOINT_URL"])
    default_port = {"http": 80, "https": 443}[endpoint.scheme]
    assert host == f"{endpoint.hostname}:{endpoint.port or default_port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton_serves_with_explicit_control_probes_and_shared_memory(rendered, overlay):
    deployment = get(rendered[overlay], "Deployment", "pastiche-triton")
    spec = deployment["spec"]["template"]["spec"]
    (triton,) = [c for c in spec["containers"] if c["name"] == "triton"]
    args = triton["args"]
    assert args[0] == "tritonserver" and "command" not in triton  # NVIDIA's entrypoint runs it
    assert "--model-control-mode=explicit" in args
    assert "--model-repository=$(PASTICHE_MODEL_REPOSITORY)" in args
    assert "--metrics-config=summary_latencies=true" in args
    probes = {k: triton[k]["httpGet"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["startupProbe"]["path"] == "/v2/health/ready"
    assert probes["readinessProbe"]["path"] == "/v2/health/ready"
    assert probes["livenessProbe"]["path"] == "/v2/health/live"
    assert {p["port"] for p in probes.values()} == {"http"}
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in triton["volumeMounts"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_limits_and_runs_unprivileged(rendered, overlay):
    for workload in workloads(rendered[overlay]):
        spec = pod_template(workload)["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec.get("automountServiceAccountToken") is False
        for container in containers(spec):
            where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{where}: {kind}"
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], where


def test_gpu_engine_step_runs_in_the_serving_image(rendered):
    docs = rendered["gpu"]
    spec = get(docs, "Deployment", "pastiche-triton")["spec"]["template"]["spec"]
    (engines,) = spec["initContainers"]
    (triton,) = spec["containers"]
    assert engines["image"] == triton["image"]
    assert engines["args"] == ["pastiche-engines", "build"]
    for container in (engines, triton):
        for kind in ("requests", "limits"):
            assert container["resources"][kind]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e.get("value") for e in engines["env"]}
    assert env["PASTICHE_ENGINE_REPOSITORY"] == "$(PASTICHE_REPOSITORY_ROOT)/gpu/$(PASTICHE_TRITON_TAG)"
    assert env["PASTICHE_ONNX_REPOSITORY"] == "$(PASTICHE_REPOSITORY_ROOT)/onnx"
    served = {e["name"]: e.get("value") for e in triton["env"]}
    assert served["PASTICHE_MODEL_REPOSITORY"] == "$(PASTICHE_TRITON_REPOSITORY_ROOT)/gpu/$(PASTICHE_TRITON_TAG)"
    cronjob = get(docs, "CronJob", "pastiche-engines")
    assert cronjob["spec"]["suspend"] is True
    (job_container,) = pod_template(cronjob)["spec"]["containers"]
    assert job_container == engines, "the CronJob's container drifted from the init container"


@pytest.mark.parametrize("overlay", ["cpu", "dev"])
def test_cpu_overlays_serve_the_onnx_target_without_gpus(rendered, overlay):
    docs = rendered[overlay]
    spec = get(docs, "Deployment", "pastiche-triton")["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    (triton,) = spec["containers"]
    served = {e["name"]: e.get("value") for e in triton["env"]}
    assert served["PASTICHE_MODEL_REPOSITORY"] == "$(PASTICHE_TRITON_REPOSITORY_ROOT)/onnx"
    assert "nvidia.com/gpu" not in yaml.safe_dump_all(workloads(docs))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_and_named_ports_resolve(rendered, overlay):
    docs = rendered[overlay]
    pods = [
        (pod_template(w)["metadata"]["labels"], {
            p["name"] for c in containers(pod_template(w)["spec"]) for p in c.get("ports", [])
        })
        for w in workloads(docs)
    ]

    def selected(selector: dict) -> list[set[str]]:
        return [ports for labels, ports in pods if selects(selector, labels)]

    for service in by_kind(docs, "Service"):
        targets = selected({"matchLabels": service["spec"]["selector"]})
        assert targets, f"{overlay}: Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            assert all(port["targetPort"] in ports for ports in targets), port
    for budget in by_kind(docs, "PodDisruptionBudget"):
        assert len(selected(budget["spec"]["selector"])) == 1, budget["metadata"]["name"]
    for policy in by_kind(docs, "NetworkPolicy"):
        if not policy["spec"]["podSelector"]:
            continue
        targets = selected(policy["spec"]["podSelector"])
        assert targets, f"{overlay}: NetworkPolicy {policy['metadata']['name']} selects no pod"
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    assert selected(peer["podSelector"]), peer
            for port in rule.get("ports", []):
                assert all(port["port"] in ports for ports in targets), port
    names = {(w["kind"], w["metadata"]["name"]) for w in workloads(docs)}
    for autoscaler in by_kind(docs, "HorizontalPodAutoscaler"):
        target = autoscaler["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) in names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton_is_reachable_only_by_the_gateway_declared_namespaces_and_prometheus(rendered, overlay):
    docs = rendered[overlay]
    deny = get(docs, "NetworkPolicy", "pastiche-default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    rules = get(docs, "NetworkPolicy", "pastiche-triton")["spec"]["ingress"]
    serving = {tuple(sorted(p["port"] for p in r["ports"])): r["from"] for r in rules}
    assert serving.keys() == {("grpc", "http"), ("metrics",)}
    assert serving[("grpc", "http")] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "pastiche-gateway"}}},
        {"namespaceSelector": {"matchLabels": {"pastiche.io/triton-client": "true"}}},
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton_scales_on_queue_time_and_the_gateway_on_cpu(rendered, overlay):
    docs = rendered[overlay]
    adapter = yaml.safe_load((DEPLOY / "monitoring" / "prometheus-adapter" / "config.yaml").read_text())
    exposed = {rule["name"]["as"] for rule in adapter["rules"]}
    triton = get(docs, "HorizontalPodAutoscaler", "pastiche-triton")
    assert triton["apiVersion"] == "autoscaling/v2"
    (metric,) = triton["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] in exposed
    gateway = get(docs, "HorizontalPodAutoscaler", "pastiche-gateway")
    (metric,) = gateway["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    for autoscaler in (triton, gateway):
        target = get(docs, "Deployment", autoscaler["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], "the HPA owns the replica count"


def test_production_overlays_expose_the_gateway_api_only(rendered):
    for overlay in PRODUCTION_OVERLAYS:
        ingress = get(rendered[overlay], "Ingress", "pastiche-gateway")
        paths = {(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
        assert paths == {("/v1", "Prefix"), ("/", "Exact")}, "metrics and health must stay internal"


def test_service_monitor_component_scrapes_named_ports(tmp_path: Path):
    """The gpu overlay with the component added, as deploy/README.md tells operators to."""
    overlay = tmp_path / "monitored"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "pastiche",
        # kustomize wants relative paths.
        "resources": [os.path.relpath(DEPLOY / "k8s" / "overlays" / "gpu", overlay)],
        "components": [os.path.relpath(DEPLOY / "k8s" / "components" / "service-monitor", overlay)],
    }))
    docs = kustomize(overlay)
    monitors = by_kind(docs, "ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {"pastiche-triton", "pastiche-gateway"}
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["namespace"] == "pastiche"
        services = [
            s for s in by_kind(docs, "Service")
            if selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
        ]
        for endpoint in monitor["spec"]["endpoints"]:
            assert any(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in services)
    for doc in docs:
        if doc["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)


def test_monitoring_objects_render_for_the_monitoring_namespace():
    docs = kustomize(DEPLOY / "monitoring")
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
        assert doc["metadata"]["namespace"] == "monitoring"
    dashboard = get(docs, "ConfigMap", "pastiche-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    adapter = get(docs, "ConfigMap", "pastiche-adapter-config")
    assert yaml.safe_load(adapter["data"]["config.yaml"])["rules"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_settings_accept_the_rendered_environment(rendered, overlay, monkeypatch):
    from gateway.settings import GatewaySettings

    docs = rendered[overlay]
    env = container_environment(docs, get(docs, "Deployment", "pastiche-gateway"), "gateway")
    for name in [n for n in os.environ if n.startswith(("PASTICHE_", "AWS_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = GatewaySettings()
    assert settings.triton_grpc_url == "pastiche-triton:8001"
    assert settings.s3_endpoint_url == env["PASTICHE_S3_ENDPOINT_URL"]
    assert settings.s3_bucket == env["PASTICHE_S3_BUCKET"]
    if "PASTICHE_API_KEYS" in env:
        auth = pytest.importorskip("gateway.auth", reason="the gateway's API key parser is not on this branch yet")
        assert auth.parse_entries(env["PASTICHE_API_KEYS"].split(","))


def test_dev_engine_and_triton_paths_expand_to_the_dev_store(rendered):
    docs = rendered["dev"]
    env = container_environment(docs, get(docs, "Deployment", "pastiche-triton"), "triton")
    assert env["PASTICHE_MODEL_REPOSITORY"] == "s3://pastiche-s3:8333/pastiche/models/onnx"
