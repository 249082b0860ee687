"""`vsm diff`, `vsm apply` and `vsm schema`: organisation files against the running system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vsm.cli.organisation import report
from vsm.cli.organisation.checks import check_configs
from vsm.cli.organisation.execute import execute
from vsm.cli.organisation.plan import plan
from vsm.cli.organisation.schema import schema_text
from vsm.cli.organisation.source import load, named
from vsm.cli.organisation.state import observe
from vsm.cli.organisation.steps import Plan, Step
from vsm.cli.session import Session, json_option, pass_session

file_option = click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    help="The organisation file (YAML); - reads it from stdin.",
)
prune_option = click.option(
    "--prune", is_flag=True, help="Also remove named agents and meta-systems the file omits."
)


def planned(session: Session, path: Path, prune: bool) -> Plan:
    """The file checked (its configs against the running system's types), then the plan."""
    file = load(path)
    state = observe(session.gateway, file.organisation)
    file.refuse(check_configs(file.organisation, state.agent_types))
    return plan(file.organisation, state, prune=prune)


@click.command()
@file_option
@prune_option
@json_option
@pass_session
def diff(session: Session, path: Path, prune: bool) -> None:
    """Show what `vsm apply` would change; change nothing."""
    found = planned(session, path, prune)
    session.show({"steps": [s.as_dict() for s in found.steps]}, report.describe(found))


@click.command()
@file_option
@prune_option
@json_option
@pass_session
def apply(session: Session, path: Path, prune: bool) -> None:
    """Make the running system match the file (idempotent)."""
    found = planned(session, path, prune)
    applied: list[dict[str, Any]] = []

    def done(step: Step, answer: Any) -> None:
        applied.append({**step.as_dict(), "answer": answer})
        if not session.as_json:
            session.console.print(report.done(step))

    execute(session.gateway, found.changes, f"organisation file {named(path).name}", done)
    session.show(
        {"steps": [s.as_dict() for s in found.steps], "applied": applied},
        report.summary(found, applied=True),
    )


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@json_option
def schema(output: Path | None) -> None:
    """Print (or write to --output) the organisation file's JSON schema (JSON either way)."""
    if output is None:
        click.echo(schema_text(), nl=False)
    else:
        output.write_text(schema_text())
