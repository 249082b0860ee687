"""The chart's README.md (what `helm show readme` prints), written from values.yaml.

Like helm-docs: every key of values.yaml becomes a row (key, type, default) and the comment
block right above a key, or the comment after its value, is its description. The prose
around the tables is deploy/helm/vsm/README.tmpl.md; its line `<!-- values -->` becomes one
section per top-level key. tests/deploy fails when the committed README differs.

    uv run scripts/gen_chart_readme.py           # rewrite deploy/helm/vsm/README.md
    uv run scripts/gen_chart_readme.py --check   # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "vsm"
TEMPLATE = CHART / "README.tmpl.md"
OUTPUT = CHART / "README.md"
PLACEHOLDER = "<!-- values -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")
COMMENT = re.compile(r"^ *#(?P<text>.*)$")
Path_ = tuple[str, ...]


def inline_comment(rest: str) -> str:
    """The `# ...` after a value (values here never contain ` #`)."""
    _, sep, comment = rest.partition(" #")
    return comment.strip() if sep else ""


def descriptions(text: str) -> dict[Path_, str]:
    """Key path -> the comment block right above it plus its inline comment."""
    found: dict[Path_, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in text.splitlines():
        comment, key = COMMENT.match(line), KEY.match(line)
        if comment:
            pending.append(comment["text"].strip())
        elif key:
            indent = len(key["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = (*(k for _, k in stack), key["key"])
            found[path] = " ".join([*pending, inline_comment(key["rest"])]).strip()
            stack.append((indent, key["key"]))
            pending = []
        else:
            pending = []  # a blank line or a list item ends a comment block
    return found


def rows(values: Any, docs: dict[Path_, str], path: Path_) -> Iterator[tuple[Path_, str, str]]:
    """(key, type, default) of every scalar, list or empty map in file order, and of each
    documented map inside a section (its keys follow it)."""
    if isinstance(values, dict) and values:
        if len(path) > 1 and docs.get(path):
            yield path, "object", ""
        for key, value in values.items():
            yield from rows(value, docs, (*path, key))
    else:
        yield path, type_of(values), json.dumps(values, separators=(", ", ": "))


def type_of(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}
    return names.get(type(value), "string")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def section(key: str, values: Any, docs: dict[Path_, str]) -> str:
    lines = [f"### `{key}`", ""]
    if docs.get((key,)):
        lines += [docs[(key,)], ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    for path, kind, default in rows(values, docs, (key,)):
        value = f"`{cell(default)}`" if default else ""
        name, description = cell(".".join(path)), cell(docs.get(path, ""))
        lines.append(f"| `{name}` | {kind} | {value} | {description} |")
    return "\n".join(lines)


def readme() -> str:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    docs = descriptions(text)
    tables = "\n\n".join(section(key, value, docs) for key, value in values.items())
    return TEMPLATE.read_text().replace(PLACEHOLDER, tables)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when README.md is stale")
    args = parser.parse_args()
    wanted = readme()
    if args.check:
        stale = not OUTPUT.exists() or OUTPUT.read_text() != wanted
        if stale:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run scripts/gen_chart_readme.py")
        return 1 if stale else 0
    OUTPUT.write_text(wanted)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
