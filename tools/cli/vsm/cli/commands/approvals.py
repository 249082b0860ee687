"""`vsm approvals list|approve|reject`: the decisions S5 holds for a person (decision rights).

A policy the governance policy says needs a person waits as a proposal until an operator
approves it (it takes effect), rejects it, or its deadline passes (rejected: the old
policy stays). Deciding needs an operate token.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from vsm.cli import views
from vsm.cli.session import Session, json_option, output_option, pass_session


def pending(approvals: list[dict[str, Any]], wide: bool) -> Any:
    columns = ["approval", "system", "policy", "by", "why", "expires"]
    rows = [
        [
            a["approval_id"],
            a["vsm_id"],
            a["policy_type"],
            a["source"],
            a["why"],
            a["expires_at"][11:19] + " UTC",
            *([json.dumps(a["policy"], sort_keys=True)] if wide else []),
        ]
        for a in approvals
    ]
    table = views.new_table(*columns, *(["policy document"] if wide else []), title="Approvals")
    table = views.filled(table, rows)
    views.whole(table, 0, [a["approval_id"] for a in approvals])
    return table


@click.group()
def approvals() -> None:
    """Decisions S5 holds for a person: list them, approve or reject one."""


@approvals.command("list")
@json_option
@output_option
@pass_session
def list_approvals(session: Session) -> None:
    """The pending proposals, oldest first (-o wide: the policy document too)."""
    found = session.gateway.get("/approvals/")
    session.show(found, pending(found, session.wide), f"{len(found)} awaiting a decision")


def decide(session: Session, approval_id: str, decision: str, note: str) -> None:
    body = {"decision": decision, "note": note}
    reply = session.gateway.post(f"/approvals/{quote(approval_id, safe='')}", body)
    approval, record = reply["approval"], reply.get("record")
    line = f"{approval['approval_id']} {approval['status']} by {approval['decided_by']}"
    if record:
        line += f": {record['policy_type']} v{record['version']} is in force"
    session.show(reply, line)


@approvals.command()
@click.argument("approval_id")
@click.option("--note", default="", help="Why, for the trail.")
@json_option
@pass_session
def approve(session: Session, approval_id: str, note: str) -> None:
    """Approve APPROVAL_ID: its policy takes effect now."""
    decide(session, approval_id, "approve", note)


@approvals.command()
@click.argument("approval_id")
@click.option("--note", default="", help="Why, for the trail.")
@json_option
@pass_session
def reject(session: Session, approval_id: str, note: str) -> None:
    """Reject APPROVAL_ID: the old policy stays."""
    decide(session, approval_id, "reject", note)
