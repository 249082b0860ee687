"""How `make run` gets a broker when none answers, decided from what the machine has: fake
programs on a PATH of the test's own stand for rabbitmq-server, apt-get and docker."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-rabbitmq"
URL = "amqp://guest:secret@127.0.0.1:5672/"


def load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("ensure_rabbitmq", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ensure = load()


class Machine:
    """A PATH of fake programs (and an empty stand-in for Debian's rabbitmq directory)."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.debian = root / "usr-lib-rabbitmq-bin"
        self.bin.mkdir()
        self.debian.mkdir()

    def has(self, name: str, exit_code: int = 0, where: Path | None = None) -> Machine:
        program = (where or self.bin) / name
        program.write_text(f"#!/bin/sh\nexit {exit_code}\n")
        program.chmod(0o755)
        return self

    def choice(self) -> str:
        return str(ensure.choose(path=str(self.bin), debian=str(self.debian)))

    def needs(self) -> str:
        return str(ensure.what_is_needed(URL, path=str(self.bin)))


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_an_installed_rabbitmq_server_is_started_as_a_node(machine: Machine) -> None:
    assert machine.has("rabbitmq-server").has("apt-get").has("docker").choice() == "node"


def test_debians_own_start_script_counts_though_off_the_path(machine: Machine) -> None:
    assert machine.has("rabbitmq-server", where=machine.debian).choice() == "node"


def test_apt_installs_the_package_before_docker_is_considered(machine: Machine) -> None:
    assert machine.has("apt-get").has("docker").choice() == "install"


def test_without_apt_a_running_docker_engine_runs_the_container(machine: Machine) -> None:
    assert machine.has("docker").choice() == "container"  # `docker info` succeeds


def test_a_docker_client_whose_engine_is_down_is_not_enough(machine: Machine) -> None:
    machine.has("docker", exit_code=1)
    assert machine.choice() == "none"
    assert "docker is here, but its engine does not answer `docker info`" in machine.needs()


def test_with_neither_it_says_what_it_needs(machine: Machine) -> None:
    assert machine.choice() == "none"
    needs = machine.needs()
    assert needs.startswith("error: no broker answers at amqp://guest:***@127.0.0.1:5672/")
    assert "secret" not in needs
    for way_out in ("apt-get", "a running Docker engine", "install RabbitMQ", "set AMQP_URL"):
        assert way_out in needs
    assert "engine does not answer" not in needs


def test_the_fake_programs_really_are_what_is_searched(machine: Machine) -> None:
    """The decision reads the given PATH only: this machine's own programs do not leak in."""
    assert os.environ.get("PATH")
    assert machine.choice() == "none"
    assert machine.has("apt-get").choice() == "install"
