"""Every rule docs/rules.md shows compiles (the page cannot drift from the language)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from vsm.contract.rules import RuleDeclaration, compile_rule

PAGE = Path(__file__).resolve().parents[3] / "docs" / "rules.md"


def examples() -> list[dict[str, str]]:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    found = []
    for block in blocks:
        document = yaml.safe_load(block)
        items = document["rules"] if isinstance(document, dict) else document
        found += [item for item in items if "when" in item]
    return found


def test_every_example_on_the_page_compiles() -> None:
    shown = examples()
    assert len(shown) >= 8
    for example in shown:
        compile_rule(RuleDeclaration.model_validate(example))
