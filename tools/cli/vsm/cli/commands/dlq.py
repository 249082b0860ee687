"""`vsm dlq list|show|requeue|discard`: the dead-letter queues, through the gateway.

A message the system could not process is parked with its reason; an operator reads why,
then sends it back where it was going (signed anew) or drops it. Only the queues the
contract names can be read (the gateway refuses others).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
from rich.table import Table
from rich.text import Text

from vsm.cli import views
from vsm.cli.gateway import Gateway
from vsm.cli.session import Session, json_option, output_option, pass_session

PREVIEW_CHARS = 120
"""The wide view shows the start of a body on one line; `-o json` has all the gateway sent."""
MAX_LATEST = 50


def path(queue: str, message_id: str | None = None) -> str:
    """The route of a queue or of one of its letters (names travel as one path segment)."""
    route = f"/dead-letters/{quote(queue, safe='')}"
    return route if message_id is None else f"{route}/{quote(message_id, safe='')}"


def newest(gateway: Gateway, queue: str) -> dict[str, Any] | None:
    """The newest dead letter of `queue` (reading a queue puts every message back)."""
    found = gateway.get(path(queue), latest=1)
    return found["latest"][0] if found["latest"] else None


def queues(
    counts: list[dict[str, Any]], latest: dict[str, dict[str, Any] | None], wide: bool
) -> Table:
    """Each queue and what it holds; `wide`: its newest letter (from `latest`) and why."""
    columns = ["queue", "count", *(["newest", "reason"] if wide else [])]
    rows: list[list[str | Text]] = []
    for item in counts:
        count = "not declared" if item["count"] is None else str(item["count"])
        row: list[str | Text] = [item["queue"], Text(count, "red" if item["count"] else "")]
        if wide:
            letter = latest.get(item["queue"])
            row += [letter["message_id"] or "", letter["reason"]] if letter else ["", ""]
        rows.append(row)
    table = views.filled(views.new_table(*columns, title="Dead-letter queues"), rows)
    views.whole(table, 0, [item["queue"] for item in counts])
    return table


def one_line(text: str, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def letters(found: dict[str, Any], wide: bool) -> Table:
    """The latest dead letters, newest first: id, reason, what it was and where it went."""
    columns = ["message", "reason", "type", "exchange", "routing key", "requeue"]
    if wide:
        columns += ["detail", "dead-lettered by", "bytes", "preview"]
    rows: list[list[str | Text]] = []
    for letter in found["latest"]:
        row: list[str | Text] = [
            letter["message_id"] or "(no id)",
            letter["reason"],
            letter["message_type"] or "",
            letter["exchange"] or "(default)",
            letter["routing_key"],
            "yes" if letter["requeueable"] else "no",
        ]
        if wide:
            by = letter["dead_lettered_by"] or ""
            row += [one_line(letter["detail"]), by, str(letter["size"])]
            row.append(one_line(letter["preview"]))
        rows.append(row)
    table = views.new_table(*columns, title=f"{found['queue']}: {found['count'] or 0} held")
    table = views.filled(table, rows)
    views.whole(table, 0, [letter["message_id"] or "" for letter in found["latest"]])
    return table


@click.group()
def dlq() -> None:
    """Dead letters: how many each queue holds, why, and requeue or discard them."""


@dlq.command("list")
@json_option
@output_option
@pass_session
def list_queues(session: Session) -> None:
    """Every dead-letter queue of the system with the messages it holds (-o wide: the newest
    one's id and reason)."""
    counts = session.gateway.get("/dead-letters/")
    latest: dict[str, dict[str, Any] | None] = {}
    if session.wide:
        latest = {q["queue"]: newest(session.gateway, q["queue"]) for q in counts if q["count"]}
    held = sum(q["count"] or 0 for q in counts)
    session.show(counts, queues(counts, latest, session.wide), f"{held} dead letters")


@dlq.command()
@click.argument("queue")
@click.option(
    "--latest",
    type=click.IntRange(0, MAX_LATEST),
    default=10,
    show_default=True,
    help="How many of the newest to show.",
)
@json_option
@output_option
@pass_session
def show(session: Session, queue: str, latest: int) -> None:
    """QUEUE's count and its latest dead letters, newest first, with their reason."""
    found = session.gateway.get(path(queue), latest=latest)
    session.show(found, letters(found, session.wide))


@dlq.command()
@click.argument("queue")
@click.argument("message_id", nargs=-1, required=True)
@json_option
@pass_session
def requeue(session: Session, queue: str, message_id: tuple[str, ...]) -> None:
    """Send each MESSAGE_ID of QUEUE again to its original exchange and routing key."""
    sent = [session.gateway.post(f"{path(queue, m)}/requeue") for m in message_id]
    session.show(
        sent,
        *(
            f"requeued {x['message_id']} to {x['exchange'] or '(default)'} {x['routing_key']}"
            for x in sent
        ),
    )


@dlq.command()
@click.argument("queue")
@click.argument("message_id", nargs=-1, required=True)
@json_option
@pass_session
def discard(session: Session, queue: str, message_id: tuple[str, ...]) -> None:
    """Drop each MESSAGE_ID of QUEUE for good."""
    gone = [session.gateway.delete(path(queue, m)) for m in message_id]
    session.show(gone, *(f"discarded {x['message_id']} ({x['reason']}) from {queue}" for x in gone))
