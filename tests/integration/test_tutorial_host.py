"""The pages that show how to write an agent, as written: their agent type in a package of the
reader's own, offered by `vsm-agent run` to a running system, then the `vsm` commands they
show, with the answers they promise ("Write your first agent", section 6, and the README's
"Your own agents")."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.localrun import LocalSystem
from tests.support.cli import vsm
from tests.support.hosts import ROOT, Host, start_host

pytestmark = pytest.mark.integration

TUTORIAL = ROOT / "docs" / "write-your-first-agent.md"
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(page: Path, kind: str, section: str) -> list[str]:
    """The page's `kind` blocks under the heading starting with `section`."""
    text = page.read_text()
    start = text.index(f"\n## {section}")
    end = text.find("\n## ", start + 1)
    return [body for found, body in BLOCK.findall(text[start:end]) if found == kind]


def commands(block: str) -> list[list[str]]:
    """Each line of a shell block as arguments, its comment and `uv run` left out."""
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [line[2:] if line[:2] == ["uv", "run"] else line for line in lines]


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    """The hosts a test starts, stopped after it."""
    started: list[Host] = []
    yield started
    for host in started:
        host.stop()


def offer(
    system: LocalSystem, tmp: Path, module: str, code: str, run: list[str], hosts: list[Host]
) -> None:
    """Write `code` as `my_agents.<module>` and start the host the page's `run` line starts."""
    program, verb, *targets = run
    assert (program, verb, targets) == ("vsm-agent", "run", [f"my_agents.{module}"])
    package = tmp / "my_agents"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / f"{module}.py").write_text(code)
    host = start_host(system, f"readers-{module}", targets, tmp, cwd=tmp)  # vsm-agent, from tmp
    hosts.append(host)
    host.wait_ready()


def run(system: LocalSystem, line: list[str]) -> tuple[int, Any]:
    """A `vsm` line of the page, with `--json`: its exit code and what it printed."""
    assert line[0] == "vsm", line
    done = vsm(*line[1:], "--json", url=system.url("mcp-gateway"))
    return done.returncode, json.loads(done.stdout or "null")


def outcome(system: LocalSystem, line: list[str]) -> tuple[int, Any]:
    """A `vsm agents command` line: its exit code and the result, or the error's code."""
    code, printed = run(system, line)
    return code, printed["result"] if printed["status"] == "ok" else printed["error"]["code"]


def test_the_tutorials_commands_answer_as_it_says(
    system: LocalSystem, tmp_path: Path, hosts: list[Host]
) -> None:
    start, then = (commands(block) for block in blocks(TUTORIAL, "sh", "6."))
    offer(system, tmp_path, "stock", blocks(TUTORIAL, "python", "1.")[0], start[0], hosts)
    assert [line[:3] for line in then] == [
        ["vsm", "agents", "spawn"],
        ["vsm", "agents", "command"],
        ["vsm", "agents", "command"],
        ["vsm", "status"],
    ]
    spawn, receive, ship, status = then

    assert run(system, spawn)[1]["agent_type"] == "stock_keeper"
    assert outcome(system, receive) == (0, {"item": "bolt", "quantity": 8})
    assert outcome(system, ship) == (1, "out_of_stock")
    code, shown = run(system, status)
    hosts = {h["instance"]: h for h in shown["status"]["hosts"]}
    assert code == 0
    assert (hosts["readers-stock"]["offers"], hosts["readers-stock"]["agents"]) == (
        ["stock_keeper"],
        1,
    )


def test_the_readmes_agent_answers_as_it_says(
    system: LocalSystem, tmp_path: Path, hosts: list[Host]
) -> None:
    (code,) = blocks(README, "python", "Your own agents")
    (lines,) = (commands(block) for block in blocks(README, "sh", "Your own agents"))
    start, spawn, greet = lines
    offer(system, tmp_path, "greeter", code, start, hosts)

    assert run(system, spawn)[0] == 0
    assert outcome(system, greet) == (0, {"text": "Hello, Stafford!"})
