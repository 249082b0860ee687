"""`vsm signal pain|pleasure <intensity>`: an operator's algedonic signal, straight to S5."""

from __future__ import annotations

import click

from vsm.cli.commands.parsing import json_object
from vsm.cli.session import Session, json_option, pass_session


@click.command()
@click.argument("kind", type=click.Choice(["pain", "pleasure"]))
@click.argument("intensity", type=click.FloatRange(0.0, 1.0))
@click.option("--reason", default=None, help="A stable code, e.g. customer_complaint.")
@click.option("--context", "context", default=None, metavar="JSON", help="A JSON object.")
@json_option
@pass_session
def signal(
    session: Session, kind: str, intensity: float, reason: str | None, context: str | None
) -> None:
    """Send pain or pleasure of INTENSITY (0..1) on the algedonic channel."""
    body: dict[str, object] = {"intensity": intensity, "context": json_object(context, "--context")}
    if reason:
        body["reason"] = reason
    sent = session.gateway.post(f"/algedonic/{kind}", body)
    session.show(sent, f"{kind} {intensity:g} sent as message {sent['id']}")
