"""The SDK's README and the "Write your first agent" page run as written, so they cannot rot.

Each file's `python` blocks run in order as one script, in a process of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", ["libs/agent/README.md", "docs/write-your-first-agent.md"])
def test_the_examples_run(page: str) -> None:
    script = "\n".join(BLOCK.findall((ROOT / page).read_text()))
    assert script.count("assert ") >= 8  # the examples show what they claim

    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )

    assert ran.returncode == 0, ran.stderr[-3000:]


def test_the_sdk_imports_without_the_services_or_a_broker_client() -> None:
    script = (
        "import sys, vsm.agent\n"
        "heavy = ('vsm.kit', 'vsm.operations', 'faststream', 'aio_pika', 'litestar')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )

    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )

    assert ran.stdout.strip() == "[]"
