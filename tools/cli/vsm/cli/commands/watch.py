"""`vsm watch`: a live view of viability, pain/pleasure, agents and interventions.

Each round reads status, S5's state and the agents, then redraws in place. A failed round
is shown in the view and the next one tries again, so the view survives a gateway restart;
with `--json` each round is one JSON line (for scripts that follow the system).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from vsm.cli import views
from vsm.cli.errors import CliError
from vsm.cli.gateway import Gateway
from vsm.cli.session import Session, json_option, pass_session, vsm_id_option

AGENT_ROWS = 12


def look(gateway: Gateway, vsm_id: str | None) -> dict[str, Any]:
    """One round of readings, stamped with the local time they were taken."""
    return {
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "status": gateway.get("/status"),
        "system5": gateway.get("/system/5", vsm_id=vsm_id),
        "agents": gateway.get("/agents"),
    }


def frame(seen: dict[str, Any], interval: float, problem: str | None) -> RenderableType:
    agents = seen["agents"]
    kinds = Counter(a["agent_type"] for a in agents)
    mix = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none"
    shown = views.agents(agents[:AGENT_ROWS])
    parts: list[RenderableType] = [
        views.headline(seen["status"], seen["system5"]),
        Text(f"agents: {len(agents)} running ({mix})"),
        shown,
        views.interventions(seen["system5"]),
    ]
    if len(agents) > AGENT_ROWS:
        parts.insert(3, Text(f"... and {len(agents) - AGENT_ROWS} more", "dim"))
    footer = f"updated {seen['at'][11:19]} · every {interval:g}s · Ctrl-C stops"
    if problem:
        parts.append(Text(f"last refresh failed: {problem}", "red"))
    parts.append(Text(footer, "dim"))
    return Group(*parts)


@click.command()
@click.option("--interval", type=click.FloatRange(0.2, 3600), default=2.0, show_default=True)
@click.option("--once", is_flag=True, help="One round, then exit (no live view).")
@vsm_id_option
@json_option
@pass_session
def watch(session: Session, interval: float, once: bool, vsm_id: str | None) -> None:
    """Follow the system live until Ctrl-C (the first round must succeed)."""
    seen = look(session.gateway, vsm_id)
    try:
        if session.as_json:
            follow_json(session, seen, interval, vsm_id, once)
        elif once:
            session.console.print(frame(seen, interval, None))
        else:
            follow_live(session, seen, interval, vsm_id)
    except KeyboardInterrupt:
        return


def follow_live(
    session: Session, seen: dict[str, Any], interval: float, vsm_id: str | None
) -> None:
    with Live(frame(seen, interval, None), console=session.console, auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            problem = None
            try:
                seen = look(session.gateway, vsm_id)
            except CliError as error:
                problem = str(error)
            live.update(frame(seen, interval, problem), refresh=True)


def follow_json(
    session: Session, seen: dict[str, Any], interval: float, vsm_id: str | None, once: bool
) -> None:
    """One JSON line per round; a failed round ends it (a script sees the exit code)."""
    while True:
        click.echo(json.dumps(seen, ensure_ascii=False))
        if once:
            return
        time.sleep(interval)
        seen = look(session.gateway, vsm_id)
