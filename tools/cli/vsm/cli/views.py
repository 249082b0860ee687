"""Views of the system's state for people: the same pieces serve `vsm status` and `vsm watch`.

Each takes the gateway's JSON as it came and returns a rich renderable; numbers keep two
decimals so that a changing figure (pain decaying, viability recovering) is easy to follow.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

STATE_STYLE = {"up": "green", "degraded": "yellow", "down": "red", "running": "green"}
INTERVENTION_STYLE = {"open": "red", "escalated": "bold red", "resolved": "green"}


def new_table(*columns: str, title: str) -> Table:
    """Columns separated by space only, so the rows read well in a terminal and in grep."""
    return Table(*columns, title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)


def figure(value: float | None, digits: int = 2) -> str:
    return "unknown" if value is None else f"{value:.{digits}f}"


def age(stamp: str | None, now: datetime | None = None) -> str:
    """`12s` from an ISO time, so a reader sees freshness without reading clocks."""
    if not stamp:
        return "never"
    then = datetime.fromisoformat(stamp)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    return f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def ago(stamp: str | None, now: datetime | None = None) -> str:
    return "never" if not stamp else f"{age(stamp, now)} ago"


def headline(status: dict[str, Any], s5: dict[str, Any] | None) -> Text:
    """One line: the system, its state, viability, pain and pleasure."""
    state = status.get("state", "unknown")
    line = Text.assemble(
        (f"{status.get('vsm_id', 'root')} ", "bold"),
        (state, STATE_STYLE.get(state, "")),
        f"   viability {figure(status.get('viability'))}",
    )
    if status.get("viability_coverage") is not None:
        line.append(f" (coverage {status['viability_coverage']:.0%})")
    if s5:
        feeling = s5["algedonic"]
        line.append(f"   pain {figure(feeling['pain'])}", "red" if feeling["pain"] >= 0.3 else "")
        line.append(f"   pleasure {figure(feeling['pleasure'])}")
        line.append("   episode open" if feeling["episode_open"] else "", "bold red")
    return line


def components(status: dict[str, Any]) -> Table:
    table = new_table("service", "role", "state", "instances", "last seen", title="Systems")
    for c in status.get("components", []):
        style = STATE_STYLE.get(c["state"], "")
        last = ago(c.get("last_seen"))
        table.add_row(c["service"], c["role"], Text(c["state"], style), str(c["instances"]), last)
    return table


def hosts(status: dict[str, Any]) -> Table:
    """The agent hosts heard lately, with the types they offer and the agents they run."""
    table = new_table("host", "state", "offers", "agents", "last seen", title="Agent hosts")
    for h in status.get("hosts", []):
        style = STATE_STYLE.get(h["state"], "")
        offers = ", ".join(h.get("offers", []))
        last = ago(h.get("last_seen"))
        table.add_row(h["instance"], Text(h["state"], style), offers, str(h["agents"]), last)
    return table


def viability_terms(s5: dict[str, Any]) -> Table:
    table = new_table("term", "weight", "value", "detail", title="Viability")
    for term in s5["viability"]["terms"]:
        value = figure(term["value"])
        table.add_row(term["name"], f"{term['weight']:.2f}", value, term.get("detail", ""))
    return table


def interventions(s5: dict[str, Any], limit: int = 5) -> Table:
    """The latest interventions, newest first: what S5 did about pain and whether it worked."""
    table = new_table(
        "intervention", "trigger", "opened", "status", "policy", title="Interventions"
    )
    latest = sorted(s5.get("interventions", []), key=lambda i: i["opened_at"], reverse=True)
    for item in latest[:limit]:
        policy = f"{item['policy_type']} v{item['policy_version']}" if item["policy_type"] else ""
        status = Text(item["status"], INTERVENTION_STYLE.get(item["status"], ""))
        table.add_row(
            item["intervention_id"], item["trigger"], ago(item["opened_at"]), status, policy
        )
    return table


def agents(items: list[dict[str, Any]], wide: bool = False) -> Table:
    """The agents, by system and name; `wide` adds crashes, capabilities, the spawn time and
    the config."""
    columns = ["agent", "name", "type", "system", "state", "slots", "age"]
    if wide:
        columns += ["crashes", "capabilities", "spawned at", "config"]
    ordered = sorted(items, key=lambda a: (a.get("vsm_id", ""), a.get("name") or "", a["agent_id"]))
    rows: list[list[str | Text]] = []
    for a in ordered:
        row: list[str | Text] = [
            a["agent_id"],
            a.get("name") or "",
            a["agent_type"],
            a.get("vsm_id", "root"),
            Text(a["state"], STATE_STYLE.get(a["state"], "")),
            f"{a['allocation']}/{a['max_allocation']}",
            age(a.get("spawned_at")),
        ]
        if wide:
            config = json.dumps(a.get("config", {}), separators=(",", ":"), sort_keys=True)
            capabilities = ",".join(a.get("capabilities", []))
            row += [str(a.get("crashes", 0)), capabilities, a.get("spawned_at") or "", config]
        rows.append(row)
    table = filled(new_table(*columns, title="Agents"), rows)
    whole(table, 0, [a["agent_id"] for a in items])
    whole(table, 1, [a.get("name") or "" for a in items])
    return table


def filled(table: Table, rows: list[list[str | Text]]) -> Table:
    for row in rows:
        table.add_row(*row)
    return table


def whole(table: Table, column: int, values: list[str]) -> None:
    """Never shorten an id or a name: people copy them into the next command."""
    table.columns[column].min_width = max((len(v) for v in values), default=0)
    table.columns[column].no_wrap = True
