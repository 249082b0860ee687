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


PAGES = ["libs/agent/README.md", "docs/write-your-first-agent.md", "README.md"]


def examples(page: str) -> str:
    return "\n".join(BLOCK.findall((ROOT / page).read_text()))


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_run(page: str) -> None:
    script = examples(page)
    if page != "README.md":  # the README's is a class only: tests/integration runs it on a host
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


def test_the_examples_type_check_as_a_users_package_would(tmp_path: Path) -> None:
    """The SDK is typed: its examples pass `mypy --strict` with the pydantic plugin."""
    for number, page in enumerate(PAGES):
        (tmp_path / f"example_{number}.py").write_text(examples(page))
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\nplugins = pydantic.mypy\n")

    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout[-3000:]
