"""`vsm policy list|show|diff`: S5's versioned policy store, read-only."""

from __future__ import annotations

from typing import Any

import click
import yaml
from rich.text import Text

from vsm.cli import views
from vsm.cli.session import Session, json_option, output_option, pass_session, vsm_id_option

POLICY_TYPES = ("governance", "adaptation", "resource_allocation", "identity", "throttle")
policy_type = click.argument("policy_type", metavar="TYPE", type=click.Choice(POLICY_TYPES))


@click.group()
def policy() -> None:
    """S5's policies: the latest of each type, one version, or what changed between two."""


@policy.command("list")
@vsm_id_option
@json_option
@output_option
@pass_session
def list_policies(session: Session, vsm_id: str | None) -> None:
    """The latest version of every policy type."""
    found = session.gateway.get("/policies", vsm_id=vsm_id)
    columns = ["type", "version", "source", "created", *(["created at"] if session.wide else [])]
    rows: list[list[str | Text]] = [
        [
            item["policy_type"],
            str(item["latest_version"]),
            item["source"],
            views.ago(item["created_at"]),
            *([item["created_at"]] if session.wide else []),
        ]
        for item in found["policies"]
    ]
    table = views.new_table(*columns, title=f"Policies of {found['vsm_id']}")
    session.show(found, views.filled(table, rows))


@policy.command()
@policy_type
@click.argument("version", type=click.IntRange(min=1), required=False)
@vsm_id_option
@json_option
@pass_session
def show(session: Session, policy_type: str, version: int | None, vsm_id: str | None) -> None:
    """One version of TYPE (the latest without VERSION), as YAML."""
    path = f"/policies/{policy_type}" + (f"/{version}" if version else "")
    record = session.gateway.get(path, vsm_id=vsm_id)
    heading = (
        f"{record['policy_type']} v{record['version']} of {record['vsm_id']}, "
        f"by {record['source']} {views.ago(record['created_at'])}"
    )
    why = [f"reason: {record['reason']}"] if record.get("reason") else []
    if record.get("intervention_id"):
        why.append(f"intervention: {record['intervention_id']}")
    document = yaml.safe_dump(record["policy"], sort_keys=False, allow_unicode=True).rstrip()
    session.show(record, Text(heading, "bold"), *why, document)


@policy.command()
@policy_type
@click.argument("from_version", metavar="A", type=click.IntRange(min=1))
@click.argument("to_version", metavar="B", type=click.IntRange(min=1))
@vsm_id_option
@json_option
@pass_session
def diff(
    session: Session, policy_type: str, from_version: int, to_version: int, vsm_id: str | None
) -> None:
    """What changed in TYPE from version A to version B."""
    params = {"from": from_version, "to": to_version, "vsm_id": vsm_id}
    found = session.gateway.send("GET", f"/policies/{policy_type}/diff", params=params)
    session.show(found, f"{policy_type} v{from_version} -> v{to_version}", changes(found))


def changes(found: dict[str, Any]) -> Text:
    """`+` added, `-` removed, `~` changed: one line per dotted path."""
    lines = Text()
    for path, value in sorted(found["added"].items()):
        lines.append(f"+ {path}: {value!r}\n", "green")
    for path, value in sorted(found["removed"].items()):
        lines.append(f"- {path}: {value!r}\n", "red")
    for path, change in sorted(found["changed"].items()):
        lines.append(f"~ {path}: {change['before']!r} -> {change['after']!r}\n", "yellow")
    return lines if lines.plain else Text("no differences")
