"""What every command shares: the gateway (opened on first use) and the output mode.

`--json` (or `-o json`) prints the gateway's JSON as it came, for scripts, `-o yaml` the same
as YAML; otherwise rich renders a view for people (plain text when stdout is not a
terminal), with more columns under `-o wide`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import click
import yaml
from rich.console import Console, RenderableType
from rich.text import Text

from vsm.cli.gateway import Gateway
from vsm.cli.settings import resolve

PIPE_WIDTH = 200
"""Output read by grep or less is not cut to 80 columns (COLUMNS still wins)."""
WIDE = 10_000
"""`-o wide` tables take the width they need, as kubectl's do."""


def new_console() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


@dataclass
class Session:
    url: str | None = None
    token: str | None = None
    output: str | None = None
    """`json`, `yaml` or `wide`; None for the views made for people."""
    console: Console = field(default_factory=new_console)
    _gateway: Gateway | None = None

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = Gateway(resolve(self.url, self.token))
        return self._gateway

    @property
    def as_json(self) -> bool:
        return self.output == "json"

    @property
    def for_machines(self) -> bool:
        """The data as it came (JSON or YAML), nothing for people around it."""
        return self.output in ("json", "yaml")

    @property
    def wide(self) -> bool:
        return self.output == "wide"

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()

    def show(self, data: Any, *views: RenderableType) -> None:
        """Print `data` as JSON or YAML when asked, else the views made for people."""
        if self.output == "json":
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        if self.output == "yaml":
            click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
            return
        width = self.console.width
        if self.wide:  # never cut or wrapped: a narrower terminal wraps whole lines
            self.console.width = WIDE
        try:
            for view in views:
                self.console.print(Text(view) if isinstance(view, str) else view)
        finally:
            self.console.width = width


def _want_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Session).output = "json"


def _want_output(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(Session).output = value


json_option = click.option(
    "--json",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_want_json,
    help="Print the raw JSON (for scripts).",
)
"""Every command takes `--json`, before or after its own arguments."""

output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["json", "yaml", "wide"]),
    expose_value=False,
    is_eager=True,
    callback=_want_output,
    help="json or yaml: the data as the gateway gave it; wide: a table with more columns.",
)
"""Every listing command takes `-o json|yaml|wide` (the default is a table)."""

vsm_id_option = click.option(
    "--vsm-id",
    default=None,
    metavar="PATH",
    help="The viable system, e.g. root/logistics (default: root).",
)

pass_session = click.make_pass_decorator(Session, ensure=True)
