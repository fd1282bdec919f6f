"""The production stack (docker-compose.yml, Dockerfile, deploy/) agrees with the code.

No Docker engine runs here, so the stack is checked, not started: every name, port and
address one service uses for another must be the one that service has, the app's
environment must be settings the app reads, and the set-up scripts that can run without
Docker (the namespace set-up, against a Temporal dev server) are run.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from infra.settings import Settings
from infra.temporal.search_attributes import ALL as SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = ("migrate", "worker", "web")
PREFIX = "SECURE_EMAIL_"
BIN_DIR = Path(sys.executable).parent

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    """What Compose makes of ``value`` with ``env`` as the .env file."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in env and (env[name] or not (op or "").startswith(":")):
            return env[name]
        if op in (":-", "-"):
            return str(arg)
        raise AssertionError(f"${{{name}}} has no value in .env.example")

    return VARIABLE.sub(substitute, value)


def environment(service: str) -> dict[str, str]:
    """A service's environment as the container sees it, with .env.example's values."""
    raw = services()[service].get("environment") or {}
    assert isinstance(raw, dict), f"{service}: write environment as a mapping"
    return {name: interpolate(str(value), env_example()) for name, value in raw.items()}


def app_settings(service: str) -> Settings:
    """The settings the app would read in ``service``'s container."""
    values = {
        name.removeprefix(PREFIX).lower(): value for name, value in environment(service).items()
    }
    return Settings.model_validate(values)


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def published(service: str) -> list[tuple[str, int, int]]:
    """``(host ip, host port, container port)`` for each port ``service`` publishes."""
    ports = []
    for entry in services()[service].get("ports", []):
        parts = str(entry).split(":")
        assert len(parts) == 3, f"{service}: publish as ip:host:container, got {entry}"
        ports.append((parts[0], int(parts[1]), int(parts[2])))
    return ports


def dependencies(service: str) -> dict[str, str]:
    depends = services()[service].get("depends_on", {})
    assert isinstance(depends, dict), f"{service}: depends_on needs conditions"
    return {name: spec["condition"] for name, spec in depends.items()}


# The compose file on its own ---------------------------------------------------------------


def test_every_service_has_an_image_or_build() -> None:
    for name, service in services().items():
        assert "image" in service or "build" in service, name


def test_every_image_is_pinned_to_a_release() -> None:
    # An untagged or :latest image is whatever was newest when the host pulled it.
    for name, service in services().items():
        if "build" in service:
            continue  # this project's own image, built from the checkout
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag not in ("latest", "stable", "edge"), f"{name}: {image} is not a release"


def test_docker_compose_config_is_valid_with_env_example() -> None:
    # What `make test` runs too; Debian's docker-compose validates without an engine.
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (`make test` installs it)")
    subprocess.run(
        ["docker-compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE), "config", "-q"],
        check=True,
        cwd=ROOT,
    )


def test_every_dependency_exists_with_a_condition_it_can_meet() -> None:
    all_services = services()
    for name in all_services:
        for target, condition in dependencies(name).items():
            assert target in all_services, f"{name} depends on unknown {target}"
            if condition == "service_healthy":
                assert "healthcheck" in all_services[target], f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                # A one-shot: restarted forever, it would never have completed.
                restart = all_services[target].get("restart", "no")
                assert restart == "no" or restart.startswith("on-failure"), target
            else:
                assert condition == "service_started", f"{name} -> {target}: {condition}"


def test_app_services_start_after_their_set_up() -> None:
    for name in ("worker", "web"):
        assert dependencies(name) == {
            "migrate": "service_completed_successfully",
            "temporal-create-namespace": "service_completed_successfully",
            "minio-create-bucket": "service_completed_successfully",
        }
    assert dependencies("migrate") == {"postgresql": "service_healthy"}
    assert dependencies("temporal") == {"temporal-admin-tools": "service_completed_successfully"}
    assert dependencies("temporal-admin-tools") == {"postgresql": "service_healthy"}


def test_app_services_run_the_one_image_with_their_command() -> None:
    commands = {name: services()[name]["command"] for name in APP_SERVICES}
    assert commands == {
        "migrate": ["securemail", "migrate"],
        "worker": ["securemail", "worker"],
        "web": ["securemail", "web"],
    }
    images = {services()[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    assert all(services()[name]["build"] == "." for name in APP_SERVICES)


def test_app_environment_is_real_settings() -> None:
    for service in APP_SERVICES:
        for name in environment(service):
            assert name.startswith(PREFIX), f"{service}: {name} is not a setting"
            field = name.removeprefix(PREFIX).lower()
            assert field in Settings.model_fields, f"{service}: {name} is no setting"


def test_app_environment_covers_production_needs() -> None:
    needed = {
        "environment",
        "database_url",
        "temporal_address",
        "temporal_namespace",
        "task_queue",
        "s3_endpoint",
        "s3_access_key",
        "s3_secret_key",
        "s3_bucket",
        "mail_transport",
        "sendgrid_api_key",
        "sendgrid_verified_senders",
        "encryption_keyset",
        "object_keyset",
        "portal_keyset",
        "public_url",
        "temporal_ui_origin",
    }
    for service in APP_SERVICES:
        given = {name.removeprefix(PREFIX).lower() for name in environment(service)}
        assert needed <= given, f"{service} lacks {sorted(needed - given)}"
        settings = app_settings(service)
        assert settings.environment == "production"
        assert settings.mail_transport == "sendgrid"
        assert settings.log_format == "json"


def test_app_services_agree_on_every_shared_setting() -> None:
    # The owner's URL is migrate's alone (tests/security/test_audit_log.py).
    shared = environment("migrate")
    shared.pop(PREFIX + "MIGRATION_DATABASE_URL")
    for service in ("worker", "web"):
        assert {k: environment(service)[k] for k in shared} == shared, service


def test_web_listens_where_it_is_published() -> None:
    settings = app_settings("web")
    assert settings.web_host == "0.0.0.0"
    assert [(ip, port) for ip, _, port in published("web")] == [("127.0.0.1", settings.web_port)]
    # uvicorn's own grace is shorter than Docker's, so requests finish before a kill.
    grace = int(services()["web"]["stop_grace_period"].removesuffix("s"))
    assert settings.web_shutdown_grace_seconds < grace


def test_worker_finishes_activities_before_docker_kills_it() -> None:
    settings = app_settings("worker")
    grace = int(services()["worker"]["stop_grace_period"].removesuffix("s"))
    assert settings.worker_shutdown_grace_seconds < grace
    _host, port = host_port(settings.worker_metrics_address)
    assert str(port) in [str(p) for p in services()["worker"]["expose"]]


def test_every_published_port_is_for_this_host_only() -> None:
    # Everything outside comes in through the TLS proxy, never straight to a container.
    for name in services():
        for ip, _host_port, _container_port in published(name):
            assert ip == "127.0.0.1", f"{name} publishes on {ip}"


def test_database_url_names_the_postgres_service_and_its_init_database() -> None:
    url = make_url(app_settings("web").database_url)
    assert url.drivername == "postgresql+asyncpg"
    assert url.host in services() and url.host == "postgresql"
    assert url.port == 5432
    mounts = services()["postgresql"]["volumes"]
    init = [m for m in mounts if m.split(":")[1].startswith("/docker-entrypoint-initdb.d/")]
    assert len(init) == 1
    script = (ROOT / init[0].split(":")[0]).read_text()
    assert f"CREATE ROLE {url.username} LOGIN PASSWORD" in script
    # The database and its tables belong to the role migrations run as, not the app's.
    owner = make_url(app_settings("migrate").migration_database_url)
    assert (owner.host, owner.port, owner.database) == (url.host, url.port, url.database)
    assert owner.username != url.username
    assert f"CREATE ROLE {owner.username} LOGIN PASSWORD" in script
    assert f"CREATE DATABASE {url.database} OWNER {owner.username};" in script
    temporal = environment("temporal")
    for database in (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]):
        assert f"CREATE DATABASE {database} OWNER {temporal['POSTGRES_USER']};" in script
    assert temporal["POSTGRES_SEEDS"] == url.host
    assert environment("temporal-admin-tools")["SQL_HOST"] == url.host
    # The password each role is created with is the one its users connect with.
    postgres = services()["postgresql"]["environment"]
    assert url.password == interpolate(postgres["SECUREMAIL_DB_PASSWORD"], env_example())
    assert owner.password == interpolate(postgres["SECUREMAIL_OWNER_DB_PASSWORD"], env_example())
    assert temporal["POSTGRES_PWD"] == environment("temporal-admin-tools")["SQL_PASSWORD"]


def test_temporal_address_is_the_temporal_service() -> None:
    settings = app_settings("worker")
    host, port = host_port(settings.temporal_address)
    assert host == "temporal" and host in services()
    assert environment("temporal-ui")["TEMPORAL_ADDRESS"] == settings.temporal_address
    assert environment("temporal-create-namespace")["TEMPORAL_ADDRESS"] == (
        settings.temporal_address
    )
    assert [container for _ip, _host, container in published("temporal")] == [port]


def test_namespace_is_created_where_the_app_looks_for_it() -> None:
    settings = app_settings("worker")
    assert environment("temporal-create-namespace")["NAMESPACE"] == settings.temporal_namespace
    assert environment("temporal-ui")["TEMPORAL_DEFAULT_NAMESPACE"] == (settings.temporal_namespace)


def test_namespace_set_up_registers_exactly_the_search_attributes() -> None:
    registered = environment("temporal-create-namespace")["SEARCH_ATTRIBUTES"].split()
    expected = [f"{key.name}={key.indexed_value_type.name.title()}" for key in SEARCH_ATTRIBUTES]
    assert sorted(registered) == sorted(expected)


def test_s3_endpoint_is_minio() -> None:
    settings = app_settings("worker")
    host, port = host_port(settings.s3_endpoint)
    assert host == "minio" and host in services()
    command = services()["minio"]["command"]
    api_port = int(command[command.index("--address") + 1].rpartition(":")[2])
    console_port = int(command[command.index("--console-address") + 1].rpartition(":")[2])
    assert port == api_port
    assert {container for _ip, _host, container in published("minio")} <= {
        api_port,
        console_port,
    }
    bucket = environment("minio-create-bucket")
    assert bucket["S3_BUCKET"] == settings.s3_bucket
    assert bucket["S3_ACCESS_KEY"] == settings.s3_access_key
    assert bucket["S3_SECRET_KEY"] == settings.s3_secret_key.get_secret_value()


def test_temporal_ui_decodes_through_the_apps_codec_endpoint() -> None:
    settings = app_settings("web")
    ui = environment("temporal-ui")
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == settings.public_url + "/codec"
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == settings.codec_endpoint
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert ui["TEMPORAL_CORS_ORIGINS"] == settings.temporal_ui_origin
    # Read-only for everyone: no start, signal or reset that bypasses the app (R12).
    assert ui["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    assert [container for _ip, _host, container in published("temporal-ui")] == [
        int(ui["TEMPORAL_UI_PORT"])
    ]


def test_every_variable_is_in_env_example_with_a_comment() -> None:
    used = {match["name"] for match in VARIABLE.finditer(COMPOSE_FILE.read_text())}
    documented = env_example()
    assert used <= set(documented), f"missing from .env.example: {sorted(used - set(documented))}"
    assert set(documented) <= used, f"unused in compose: {sorted(set(documented) - used)}"
    # Each variable sits in a block of lines (between blank lines) that has a comment.
    for block in ENV_EXAMPLE.read_text().split("\n\n"):
        lines = block.strip().splitlines()
        if any(not line.startswith("#") for line in lines):
            assert any(line.startswith("#") for line in lines), block


def test_every_mounted_file_exists() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_secrets_stay_out_of_git_and_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".data/", ".git/", "tests/"} <= set(ignored)


# The image ----------------------------------------------------------------------------------


def test_dockerfile_builds_every_package_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim AS build" in dockerfile
    # The production set from the lock `make` installs from: no extras, nothing editable.
    assert "COPY pyproject.toml uv.lock " in dockerfile
    installs = re.findall(r"uv sync [^\n]*", dockerfile)
    assert installs and all("--locked" in line and "--extra" not in line for line in installs)
    assert "pip install ." not in dockerfile
    copied = set(re.findall(r"^COPY (\w+) ", dockerfile, re.MULTILINE))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    user = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert dockerfile.rstrip().endswith('CMD ["securemail", "web"]')


def test_package_data_names_files_that_exist() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package, patterns in pyproject["tool"]["setuptools"]["package-data"].items():
        for pattern in patterns:
            assert any((ROOT / package).glob(pattern)), f"{package}: nothing matches {pattern}"


def test_lock_file_is_committed_beside_pyproject() -> None:
    lock = (ROOT / "uv.lock").read_text()
    assert 'name = "securemail"' in lock
    makefile = (ROOT / "Makefile").read_text()
    assert "uv.lock" in makefile and "--locked" in makefile


# Running what can run without Docker ---------------------------------------------------------


async def test_create_namespace_script_registers_search_attributes() -> None:
    """The namespace set-up, run twice (as every `up` does) against a fresh dev server."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        dev_server_extra_args=["--log-level", "error"],
        ui=False,
    )
    try:
        service = environment("temporal-create-namespace")
        script_env = {
            **os.environ,
            **service,
            # The admin-tools image has the same temporal CLI on its PATH.
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}",
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        }
        script = ROOT / "deploy" / "temporal" / "create-namespace.sh"
        for _ in range(2):
            process = await asyncio.create_subprocess_exec(
                "sh",
                str(script),
                env=script_env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode == 0, output.decode()
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=service["NAMESPACE"])
        )
        assert set(listed.custom_attributes) == {key.name for key in SEARCH_ATTRIBUTES}
        for key in SEARCH_ATTRIBUTES:
            assert listed.custom_attributes[key.name] == int(key.indexed_value_type)
    finally:
        await env.shutdown()


def test_deploy_scripts_are_valid_sh() -> None:
    for script in sorted((ROOT / "deploy").rglob("*.sh")):
        checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{script}: {checked.stderr}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_settings_validate_in_production(service: str) -> None:
    # Production refuses development secrets; the compose environment must pass.
    settings = app_settings(service)
    assert settings.s3_secret_key.get_secret_value() != "securemail-dev-secret"
    assert settings.sendgrid_api_key.get_secret_value()
