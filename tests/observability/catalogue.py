"""docs/metrics.md read as data: each metric's type, labels and the services that export it.

Each `## ` section names who exports its tables' metrics: `Every service`, or the services
named in the heading before its first parenthesis (`## queen (S5)`, `## LLM calls: queen,
intelligence, operations (...)`); rows are `| `metric` | type | labels | ... |`.
A metric whose meaning says "only with `SETTING`" is exported only when that is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scripts.localrun import SERVICES

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW = re.compile(
    r"^\| `(?P<name>[a-z0-9_]+)` \| (?P<type>\w+) \| (?P<labels>[^|]*) \|(?P<meaning>.*)\|$"
)


@dataclass(frozen=True)
class Entry:
    type: str
    labels: frozenset[str]
    services: frozenset[str]
    conditional: bool  # exported only with a setting the test system may not have


def documented(path: Path = CATALOGUE) -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    services: frozenset[str] = frozenset()
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            named = re.findall(r"[a-z0-9-]+", line[3:].split("(", 1)[0])
            services = (
                frozenset(SERVICES)
                if line.startswith("## Every service")
                else frozenset(SERVICES) & frozenset(named)
            )
        elif (row := ROW.match(line)) and services:
            labels = frozenset(re.findall(r"`([a-z_]+)`", row["labels"]))
            conditional = "only with `" in row["meaning"]
            found[row["name"]] = Entry(row["type"], labels, services, conditional)
    return found
