"""The Dockerfile and compose.yaml operators start from: read as files, since no image can be
built or pulled here. They hold what the README promises: a non-root image that installs the
package and runs a real ``lmsauth`` command with a health check on ``/healthz``, and two
instances sharing one secret key, PostgreSQL and Redis behind one load balancer."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from lmsauth.cli import main
from lmsauth.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = {  # what an operator's .env holds
    "LMSAUTH_SECRET_KEY": "operator-secret-key-0123456789-0123456789",
    "POSTGRES_PASSWORD": "0123456789abcdef",
}


# ---------------------------------------------------------------------------- reading the files


def instructions(text: str) -> list[tuple[str, str]]:
    """A Dockerfile's ``(INSTRUCTION, arguments)``, continuation lines joined, comments dropped."""
    kept = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    joined = re.sub(r"\\\n", " ", kept)
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def exec_form(arguments: str) -> list[str]:
    """``["a", "b"]`` (exec form) as a list; the shell form is refused: signals must reach lmsauth."""
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), arguments
    return value


def final_stage(text: str) -> list[tuple[str, str]]:
    steps = instructions(text)
    start = max(index for index, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[start:]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` (a missing required
    variable fails, as ``docker compose`` does)."""

    def one(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise LookupError(f"{name}: {word}")
        return word if operator == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def serving(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The lmsauth services that serve: built from this repository, running the image's CMD."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build") == "." and "command" not in service
    }


def command_parses(args: list[str]) -> click.Context:
    """``lmsauth ARGS`` names a real command whose options all parse (nothing is run)."""
    command: click.Command = main
    rest = list(args)
    while isinstance(command, click.Group):
        name = rest.pop(0)
        found = command.get_command(click.Context(main), name)
        assert found is not None, f"lmsauth has no command {name!r}"
        command = found
    return command.make_context(command.name or "", rest)


# ---------------------------------------------------------------------------- Dockerfile


def test_the_image_is_python_3_11_slim_and_installs_the_package(dockerfile: str) -> None:
    steps = instructions(dockerfile)
    bases = [arguments.split()[0] for keyword, arguments in steps if keyword == "FROM"]
    assert bases == ["python:3.11-slim"] * 2
    runs = " ".join(arguments for keyword, arguments in steps if keyword == "RUN")
    assert "pip wheel" in runs and "pip install" in runs
    copied = " ".join(arguments for keyword, arguments in steps if keyword == "COPY")
    for needed in ("pyproject.toml", "README.md", "src"):  # pyproject names README.md as the readme
        assert needed in copied
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1 :][:3] == ["!pyproject.toml", "!README.md", "!src/"]


def test_the_image_runs_as_a_user_who_is_not_root(dockerfile: str) -> None:
    steps = final_stage(dockerfile)
    users = [arguments for keyword, arguments in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    keywords = [keyword for keyword, _ in steps]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    created = " ".join(arguments for keyword, arguments in steps if keyword == "RUN")
    assert "useradd" in created and users[-1] in created


def test_the_image_runs_a_real_lmsauth_command(dockerfile: str) -> None:
    steps = dict(final_stage(dockerfile))
    entrypoint, command = exec_form(steps["ENTRYPOINT"]), exec_form(steps["CMD"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["lmsauth"] and scripts["lmsauth"] == "lmsauth.cli:main"
    context = command_parses(command)
    assert context.command.name == "serve"
    assert context.params["host"] == "0.0.0.0"
    assert steps["EXPOSE"] == str(context.params["port"])


def test_the_health_check_asks_healthz_on_the_served_port(dockerfile: str) -> None:
    steps = dict(final_stage(dockerfile))
    port = command_parses(exec_form(steps["CMD"])).params["port"]
    options, _, probe = steps["HEALTHCHECK"].partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    assert f"http://127.0.0.1:{port}/healthz" in probe
    program = exec_form(probe)
    assert program[:2] == ["python", "-c"]
    compile(program[2], "<healthcheck>", "exec")  # the probe is valid Python


def test_the_image_logs_json(dockerfile: str) -> None:
    env = " ".join(arguments for keyword, arguments in final_stage(dockerfile) if keyword == "ENV")
    assert "LMSAUTH_LOG_FORMAT=json" in env


# ---------------------------------------------------------------------------- compose.yaml


def test_two_instances_share_the_secret_key_the_database_and_redis(compose: dict[str, Any]) -> None:
    instances = serving(compose)
    assert len(instances) == 2, list(instances)
    environments = [service["environment"] for service in instances.values()]
    for name in ("LMSAUTH_SECRET_KEY", "LMSAUTH_DATABASE_URL", "LMSAUTH_REDIS_URL", "LMSAUTH_PUBLIC_URL"):
        values = {environment[name] for environment in environments}
        assert len(values) == 1, (name, values)
    environment = environments[0]
    assert environment["LMSAUTH_SECRET_KEY"].startswith("${LMSAUTH_SECRET_KEY:?"), "no default secret key"
    database = interpolate(environment["LMSAUTH_DATABASE_URL"], ENV_FILE)
    assert database.startswith("postgresql+asyncpg://") and "@postgres:5432/" in database
    assert interpolate(environment["LMSAUTH_REDIS_URL"], ENV_FILE).startswith("redis://redis:6379/")
    with pytest.raises(LookupError, match="LMSAUTH_SECRET_KEY"):
        interpolate(environment["LMSAUTH_SECRET_KEY"], {})


def test_every_lmsauth_variable_is_a_setting_and_the_settings_load(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = {f"LMSAUTH_{name.upper()}" for name in Settings.model_fields}
    environment = next(iter(serving(compose).values()))["environment"]
    for name, value in environment.items():
        if name.startswith("LMSAUTH_"):
            assert name in known, f"{name} is not a setting"
        monkeypatch.setenv(name, interpolate(str(value), ENV_FILE))
    settings = Settings()
    assert settings.secret_key == ENV_FILE["LMSAUTH_SECRET_KEY"]
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.log_format == "json" and settings.trust_proxy_headers
    assert settings.metrics_token is None  # unset in .env: /metrics answers loopback only


def test_backends_are_postgres_15_and_redis_7_with_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    for service in serving(compose).values():
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_migrations_run_once_before_the_instances(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["build"] == "." and migrate["restart"] == "no"
    assert command_parses(migrate["command"]).command.name == "upgrade"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_one_balancer_in_front_of_both_instances(compose: dict[str, Any]) -> None:
    balancer = compose["services"]["balancer"]
    assert balancer["image"].startswith("nginx:")
    assert balancer["ports"] == ["8080:80"]
    public = interpolate(next(iter(serving(compose).values()))["environment"]["LMSAUTH_PUBLIC_URL"], ENV_FILE)
    assert public == "http://127.0.0.1:8080"  # the balancer's address, the default
    source, target, _mode = balancer["volumes"][0].split(":")
    assert target == "/etc/nginx/conf.d/default.conf"
    conf = (ROOT / source).read_text()
    upstreams = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", conf, re.MULTILINE)
    assert sorted(name for name, _port in upstreams) == sorted(serving(compose))
    assert {port for _name, port in upstreams} == {"8000"}
    assert re.search(r"location = /metrics \{\s*return 404;", conf)
    assert "proxy_set_header X-Request-Id $request_id;" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    for name in serving(compose):
        assert balancer["depends_on"][name]["condition"] == "service_healthy"


def test_every_reference_resolves(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            exists = (ROOT / source).exists() if source.startswith("./") else source in compose["volumes"]
            assert exists, volume


def _compose_command() -> list[str]:
    """``docker compose`` (the plugin) where it is installed, else ``docker-compose`` (Debian's
    package, which ``scripts/test`` installs): both validate the file against the schema."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    assert standalone, "neither `docker compose` nor `docker-compose` is installed (scripts/test installs it)"
    return [standalone]


def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        env={"PATH": "/usr/bin:/bin", **ENV_FILE},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, shlex.join(done.args) + "\n" + done.stderr
