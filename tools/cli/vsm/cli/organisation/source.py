"""Reading an organisation file: YAML, then the models, then the checks; every problem by line.

PyYAML's node tree keeps where each key and value started, so a pydantic error location
(`agents.0.count`) maps back to the line a person has to fix.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from vsm.cli.errors import UsageProblem
from vsm.cli.organisation.checks import Finding, Location, check
from vsm.cli.organisation.model import Organisation


@dataclass(frozen=True)
class Problem:
    line: int
    where: str
    message: str


class OrganisationInvalid(UsageProblem):
    """The file is refused: nothing is sent to the system."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}:{p.line}: {p.where}: {p.message}" for p in problems]
        super().__init__("\n".join(lines))


def dotted(loc: Location) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(document)"


def line_of(root: yaml.Node, loc: Location, text_line: int | None = None) -> int:
    """The line (1-based) of the deepest node `loc` reaches: a key's own line when it exists;
    with `text_line`, that line of the text the node holds (a block scalar's text starts on
    the line after its key)."""
    if text_line is not None:
        node = node_at(root, loc)
        if isinstance(node, yaml.ScalarNode):
            first = node.start_mark.line + (1 if node.style in ("|", ">") else 0)
            return first + text_line
    node, line = root, root.start_mark.line
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            entry = next((kv for kv in node.value if kv[0].value == str(part)), None)
            if entry is None:
                break
            line, node = entry[0].start_mark.line, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return line + 1


def node_at(root: yaml.Node, loc: Location) -> yaml.Node | None:
    node: yaml.Node | None = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node


def duplicate_keys(node: yaml.Node, at: Location = ()) -> Iterator[Problem]:
    """YAML lets a later key silently replace an earlier one; a declaration must not."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                where = dotted((*at, key.value))
                yield Problem(key.start_mark.line + 1, where, "key given twice")
            seen.add(key.value)
            yield from duplicate_keys(value, (*at, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from duplicate_keys(item, (*at, index))


@dataclass(frozen=True)
class OrganisationFile:
    """A valid file, with its node tree so that later checks can still name lines."""

    path: Path
    organisation: Organisation
    root: yaml.Node

    def refuse(self, findings: Iterable[Finding]) -> None:
        """Raise OrganisationInvalid for the findings, if there are any."""
        problems = [
            Problem(line_of(self.root, f.loc, f.text_line), dotted(f.loc), f.message)
            for f in findings
        ]
        if problems:
            raise OrganisationInvalid(self.path, sorted(problems, key=lambda p: p.line))


def parse(text: str, path: Path) -> OrganisationFile:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise OrganisationInvalid(path, [Problem(line, "yaml", str(error.problem))]) from error
    if root is None:
        raise OrganisationInvalid(path, [Problem(1, "(document)", "the file declares nothing")])
    problems = list(duplicate_keys(root))
    try:
        organisation = Organisation.model_validate(data)
    except ValidationError as error:
        for e in error.errors(include_url=False):
            problems.append(Problem(line_of(root, e["loc"]), dotted(e["loc"]), e["msg"]))
        raise OrganisationInvalid(path, sorted(problems, key=lambda p: p.line)) from error
    if problems:
        raise OrganisationInvalid(path, problems)
    file = OrganisationFile(path, organisation, root)
    file.refuse(check(organisation))
    return file


STDIN = Path("<stdin>")
"""How problems of a file read from standard input (`-f -`) name it."""


def named(path: Path) -> Path:
    """The name problems and reasons give the file: `<stdin>` for `-`."""
    return STDIN if str(path) == "-" else path


def load(path: Path) -> OrganisationFile:
    """The file at `path`, or standard input for `-`."""
    if named(path) == STDIN:
        return parse(sys.stdin.read(), STDIN)
    try:
        text = path.read_text()
    except OSError as error:
        raise UsageProblem(f"cannot read {path}: {error.strerror}") from error
    return parse(text, path)
