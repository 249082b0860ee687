"""`vsm trace <message_id>`: the chain of cause around one message, as a tree.

The gateway answers the chain flat, each message naming its cause (`causation_id`); the
tree hangs every message under its cause, so pain -> intervention -> policy reads top down.
"""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text
from rich.tree import Tree

from vsm.cli.session import Session, json_option, pass_session


def label(message: dict[str, Any], asked: str) -> Text:
    text = Text.assemble(
        (message["type"], "bold" if message["id"] == asked else ""),
        f"  {message['id']}",
        (f"  {message.get('source', '')}", "cyan"),
        f"  {message.get('time', '')}",
    )
    if message.get("vsm_id") and message["vsm_id"] != "root":
        text.append(f"  [{message['vsm_id']}]")
    if message.get("summary"):
        text.append(f"\n{message['summary']}", "dim")
    return text


def tree(chain: list[dict[str, Any]], asked: str) -> Tree:
    """Every message under its cause; messages whose cause is not in the chain are roots."""
    ids = {m["id"] for m in chain}
    effects: dict[str | None, list[dict[str, Any]]] = {}
    for message in sorted(chain, key=lambda m: m.get("time") or ""):
        cause = message.get("causation_id")
        effects.setdefault(cause if cause in ids else None, []).append(message)
    top = Tree(Text(f"causal chain of {asked} ({len(chain)} messages)"), guide_style="dim")
    pending = [(top, m) for m in effects.get(None, [])]
    while pending:
        parent, message = pending.pop(0)
        node = parent.add(label(message, asked))
        pending += [(node, effect) for effect in effects.pop(message["id"], [])]
    return top


@click.command()
@click.argument("message_id")
@json_option
@pass_session
def trace(session: Session, message_id: str) -> None:
    """Show what MESSAGE_ID was caused by and what it caused."""
    found = session.gateway.get(f"/trace/{message_id}")
    session.show(found, tree(found["chain"], message_id))
