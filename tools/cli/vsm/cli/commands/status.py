"""`vsm status`: every system and gateway, viability, pain and the latest interventions."""

from __future__ import annotations

from typing import Any

import click

from vsm.cli import views
from vsm.cli.session import Session, json_option, pass_session, vsm_id_option


@click.command()
@vsm_id_option
@json_option
@pass_session
def status(session: Session, vsm_id: str | None) -> None:
    """Show the systems' states, viability, pain/pleasure and recent interventions."""
    overall = session.gateway.get("/status")
    s5 = session.gateway.get("/system/5", vsm_id=vsm_id)
    session.show(
        {"status": overall, "system5": s5},
        views.headline(overall, s5),
        views.components(overall),
        *([views.hosts(overall)] if overall.get("hosts") else []),
        views.viability_terms(s5),
        views.interventions(s5),
        f"Policies in force: {policies(s5)}",
    )


def policies(s5: dict[str, Any]) -> str:
    versions: dict[str, int] = s5.get("policies") or {}
    return ", ".join(f"{kind} v{version}" for kind, version in sorted(versions.items())) or "none"
