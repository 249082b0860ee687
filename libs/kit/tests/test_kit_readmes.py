"""The worked examples of the libraries' READMEs run as written (so they cannot go stale).

Each README's `python` blocks run in order as one script, in a process of its own: the
message types they define must not join this process's registry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

LIBS = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def examples(readme: Path) -> str:
    return "\n".join(BLOCK.findall(readme.read_text()))


@pytest.mark.parametrize("library", ["contract", "kit"])
def test_the_readme_examples_run(library: str) -> None:
    script = examples(LIBS / library / "README.md")
    assert script.count("assert ") >= 3  # the examples show what they claim

    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )

    assert ran.returncode == 0, ran.stderr[-3000:]
