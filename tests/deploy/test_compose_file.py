"""The one-host compose file is valid Compose, pinned through versions.env, and self-consistent."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from compose_spec import PyCompose

from tests.deploy.rendering import DEPLOY, read_env_file

COMPOSE = DEPLOY / "compose" / "compose.yaml"
# Credentials the operator exports (deploy/README.md); everything else has a pin or a default.
SECRETS = {
    "PASTICHE_S3_ACCESS_KEY": "test-access",
    "PASTICHE_S3_SECRET_KEY": "test-secret",
    "PASTICHE_API_KEYS": "test-key",
    "GRAFANA_ADMIN_PASSWORD": "test-password",
}
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1) or match.group(4), match.group(2), match.group(3)
        value = env.get(name)
        if operator == ":-":
            return value if value else argument
        if operator == "-":
            return argument if value is None else value
        if operator in (":?", "?") and (value is None or (operator == ":?" and not value)):
            raise KeyError(f"{name}: {argument}")
        return value or ""

    return _VARIABLE.sub(substitute, value)


def interpolated(document: object, env: dict[str, str]) -> object:
    if isinstance(document, dict):
        return {key: interpolated(value, env) for key, value in document.items()}
    if isinstance(document, list):
        return [interpolated(value, env) for value in document]
    if isinstance(document, str):
        return interpolate(document, env)
    return document


def project_env() -> dict[str, str]:
    """What compose sees: the project's .env plus the exported credentials."""
    return read_env_file(COMPOSE.parent / ".env") | SECRETS


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolated(yaml.safe_load(COMPOSE.read_text()), project_env())


def variables_used(text: str) -> set[str]:
    return {m.group(1) or m.group(4) for m in _VARIABLE.finditer(text) if m.group(0) != "$$"}


def test_compose_file_validates_against_the_compose_specification(compose):
    parsed = PyCompose.from_yaml(yaml.safe_dump(compose, sort_keys=False))
    assert set(parsed.to_dict()["services"]) == {
        "seaweedfs", "engines", "triton-gpu", "triton-cpu", "gateway", "prometheus", "grafana"
    }


def test_the_specification_check_rejects_unknown_keys(compose):
    broken = yaml.safe_load(yaml.safe_dump(compose))
    broken["services"]["gateway"]["healthcheks"] = {}
    with pytest.raises(ValueError, match="healthcheks"):
        PyCompose.from_yaml(yaml.safe_dump(broken))


def test_missing_credentials_stop_compose_with_a_pointer_to_the_runbook():
    env = project_env()
    del env["PASTICHE_API_KEYS"]
    with pytest.raises(KeyError, match="deploy/README.md"):
        interpolated(yaml.safe_load(COMPOSE.read_text()), env)


def test_every_variable_is_pinned_defaulted_or_a_documented_credential(versions):
    text = COMPOSE.read_text()
    runbook = (DEPLOY / "README.md").read_text()
    defaulted = {m.group(1) for m in re.finditer(r"\$\{(\w+):?-", text)}
    for name in variables_used(text):
        if name in versions or name in defaulted:
            continue
        assert name in SECRETS, f"${name} is neither pinned in versions.env nor defaulted"
        assert f"export {name}=" in runbook, f"deploy/README.md does not say how to set {name}"


def test_dot_env_is_versions_env():
    link = COMPOSE.parent / ".env"
    assert link.is_symlink(), "deploy/compose/.env must link to deploy/versions/versions.env"
    assert link.resolve() == (DEPLOY / "versions" / "versions.env").resolve()


def test_images_are_pinned_by_versions_env(compose, versions):
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert images["seaweedfs"] == f"chrislusf/seaweedfs:{versions['SEAWEEDFS_TAG']}"
    assert images["prometheus"] == f"prom/prometheus:{versions['PROMETHEUS_TAG']}"
    assert images["grafana"] == f"grafana/grafana:{versions['GRAFANA_TAG']}"
    for name, service in compose["services"].items():
        if "build" in service:
            arguments = service["build"]["args"]
            assert arguments and all(arguments[key] == versions[key] for key in arguments), name


def test_referenced_files_exist(compose):
    base = COMPOSE.parent
    for name, service in compose["services"].items():
        if "build" in service:
            context = (base / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (base / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_triton_profiles_serve_the_targets_the_engine_step_writes(compose, versions):
    services = compose["services"]
    assert services["triton-gpu"]["profiles"] == ["gpu"] == services["engines"]["profiles"]
    assert services["triton-cpu"]["profiles"] == ["cpu"]
    for name in ("triton-gpu", "triton-cpu"):
        assert services[name]["networks"]["default"]["aliases"] == ["triton"]
        assert "--model-control-mode=explicit" in services[name]["command"]
    engines = services["engines"]["environment"]
    assert engines["PASTICHE_ENGINE_REPOSITORY"].endswith(f"/gpu/{versions['TRITON_TAG']}")
    gpu_repository = next(a for a in services["triton-gpu"]["command"] if a.startswith("--model-repository="))
    cpu_repository = next(a for a in services["triton-cpu"]["command"] if a.startswith("--model-repository="))
    host = "s3://seaweedfs:8333/"
    assert gpu_repository == "--model-repository=" + engines["PASTICHE_ENGINE_REPOSITORY"].replace("s3://", host)
    assert cpu_repository == "--model-repository=" + engines["PASTICHE_ONNX_REPOSITORY"].replace("s3://", host)
    assert services["triton-gpu"]["depends_on"]["engines"]["condition"] == "service_completed_successfully"
    assert services["gateway"]["environment"]["PASTICHE_TRITON_GRPC_URL"] == "triton:8001"


def test_prometheus_scrapes_services_of_the_stack(compose):
    config = yaml.safe_load((DEPLOY / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    names = set(compose["services"]) | {"triton"}
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"triton:8002", "gateway:8080"}
    assert all(t.split(":")[0] in names for t in targets)
    mounted = {v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"]}
    assert all(Path(rule).parent.as_posix() in mounted for rule in config["rule_files"])


def test_gateway_settings_accept_the_compose_environment(compose, monkeypatch):
    from gateway.settings import GatewaySettings

    for name in [n for n in os.environ if n.startswith(("PASTICHE_", "AWS_"))]:
        monkeypatch.delenv(name)
    for name, value in compose["services"]["gateway"]["environment"].items():
        monkeypatch.setenv(name, str(value))
    settings = GatewaySettings()
    assert (settings.triton_grpc_url, settings.s3_endpoint_url) == ("triton:8001", "http://seaweedfs:8333")
