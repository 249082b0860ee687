"""The page "Write your first agent", section 6, as written: its agent type (section 1) in a
package of the reader's own, offered by `vsm-agent run` to a running system, then the `vsm`
commands the page shows, with the answers it promises."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator

import pytest

from scripts.localrun import LocalSystem
from tests.support.cli import vsm
from tests.support.hosts import ROOT, Host, start_host

pytestmark = pytest.mark.integration

PAGE = ROOT / "docs" / "write-your-first-agent.md"
BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(kind: str, section: str) -> list[str]:
    """The page's `kind` blocks under the heading starting with `section`."""
    text = PAGE.read_text()
    start = text.index(f"\n## {section}")
    end = text.find("\n## ", start + 1)
    return [body for found, body in BLOCK.findall(text[start:end]) if found == kind]


@pytest.fixture(scope="module")
def host(system: LocalSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    package = tmp_path_factory.mktemp("readers") / "my_agents"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "stock.py").write_text(blocks("python", "1.")[0])
    (run,) = blocks("sh", "6.")[0].splitlines()
    program, verb, *targets = shlex.split(run)
    assert (program, verb, targets) == ("vsm-agent", "run", ["my_agents.stock"])
    log_dir = tmp_path_factory.mktemp("host-logs")
    reader = start_host(
        system, "readers-host", targets, log_dir, PYTHONPATH=f"{package.parent}:{ROOT}"
    )
    reader.wait_ready()
    yield reader
    reader.stop()


def test_the_pages_commands_answer_as_it_says(system: LocalSystem, host: Host) -> None:
    commands = [shlex.split(line) for line in blocks("sh", "6.")[1].splitlines()]
    assert [c[:3] for c in commands] == [
        ["vsm", "agents", "spawn"],
        ["vsm", "agents", "command"],
        ["vsm", "agents", "command"],
        ["vsm", "status"],
    ]
    url = system.url("mcp-gateway")
    spawned, received, shipped, status = (vsm(*c[1:], "--json", url=url) for c in commands)

    assert spawned.returncode == 0, spawned.stderr
    assert json.loads(spawned.stdout)["agent_type"] == "stock_keeper"
    assert received.returncode == 0, received.stderr
    assert json.loads(received.stdout)["result"] == {"item": "bolt", "quantity": 8}
    assert shipped.returncode == 1
    assert json.loads(shipped.stdout)["error"]["code"] == "out_of_stock"
    assert status.returncode == 0, status.stderr
    hosts = json.loads(status.stdout)["status"]["hosts"]
    assert [(h["instance"], h["offers"], h["agents"]) for h in hosts] == [
        ("readers-host", ["stock_keeper"], 1)
    ]
