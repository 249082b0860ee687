"""examples/Dockerfile.host, the image of a user's agent host: built on the operations image,
installs the user's package into its environment, keeps its non-root user and runs
`vsm-agent run <modules>`. No image is built here (no registry to pull the bases from), so
its instructions are read, and its entrypoint's shell line is run with a stand-in
`vsm-agent` that prints the arguments it gets."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.release import instructions

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "examples" / "Dockerfile.host"
Instruction = tuple[str, str]


def stages(found: list[Instruction]) -> list[list[Instruction]]:
    """The instructions of each build stage, its FROM first."""
    split: list[list[Instruction]] = []
    for instruction in found:
        if instruction[0] == "FROM":
            split.append([])
        if split:
            split[-1].append(instruction)
    return split


@pytest.fixture(scope="module")
def parsed() -> list[Instruction]:
    return [(i.keyword, i.arguments) for i in instructions(DOCKERFILE.read_text())]


def test_every_stage_is_built_on_the_operations_image(parsed: list[Instruction]) -> None:
    (argument,) = [rest for keyword, rest in parsed if keyword == "ARG" and "VSM_IMAGE" in rest]
    default = argument.split("=", 1)[1]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert default == compose["services"]["operations"]["image"]
    assert parsed.index(("ARG", argument)) < parsed.index(next(i for i in parsed if i[0] == "FROM"))
    for stage in stages(parsed):
        assert stage[0][1].split()[0] == "${VSM_IMAGE}", stage[0]


def test_the_package_goes_into_the_images_environment(parsed: list[Instruction]) -> None:
    build, final = stages(parsed)
    installs = [rest for keyword, rest in build if keyword == "RUN" and "pip install" in rest]
    (install,) = installs
    assert "--python /app/.venv/bin/python" in install
    assert ("COPY", "--from=build /app/.venv /app/.venv") in final
    assert not [rest for keyword, rest in final if keyword == "RUN"]  # nothing else in it


def test_the_host_runs_as_the_non_root_user(parsed: list[Instruction]) -> None:
    final = stages(parsed)[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "vsm" / "values.yaml").read_text())
    uid = values["default"]["securityContext"]["runAsUser"]
    assert users == [f"{uid}:{uid}"]  # the base image's user, which the chart's context runs
    entrypoint = next(i for i in final if i[0] == "ENTRYPOINT")
    assert final.index(("USER", users[0])) < final.index(entrypoint)


@pytest.mark.parametrize(
    ("modules", "given", "received"),
    [
        ("my_agents.agents", [], ["run", "my_agents.agents"]),
        (
            "a.agents b.more:Reconciler",
            ["c.extra"],
            ["run", "a.agents", "b.more:Reconciler", "c.extra"],
        ),
        ("", [], ["run"]),  # the entry points of installed packages
    ],
)
def test_the_entrypoint_runs_vsm_agent_on_the_modules(
    parsed: list[Instruction], tmp_path: Path, modules: str, given: list[str], received: list[str]
) -> None:
    final = stages(parsed)[-1]
    entrypoint = json.loads(next(rest for keyword, rest in final if keyword == "ENTRYPOINT"))
    assert json.loads(next(rest for keyword, rest in final if keyword == "CMD")) == []
    assert ("ENV", "VSM_AGENT_MODULES=${MODULES}") in final
    stand_in = tmp_path / "vsm-agent"
    stand_in.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    stand_in.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "VSM_AGENT_MODULES": modules}
    done = subprocess.run(
        [*entrypoint, *given], capture_output=True, text=True, env=env, timeout=10, check=True
    )
    assert done.stdout.splitlines() == received
