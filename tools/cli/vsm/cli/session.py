"""What every command shares: the gateway (opened on first use) and the output mode.

`--json` prints the gateway's JSON as it came, for scripts; otherwise rich renders a view
for people (plain text when stdout is not a terminal).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console, RenderableType
from rich.text import Text

from vsm.cli.gateway import Gateway
from vsm.cli.settings import resolve

PIPE_WIDTH = 200
"""Output read by grep or less is not cut to 80 columns (COLUMNS still wins)."""


def new_console() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


@dataclass
class Session:
    url: str | None = None
    token: str | None = None
    as_json: bool = False
    console: Console = field(default_factory=new_console)
    _gateway: Gateway | None = None

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = Gateway(resolve(self.url, self.token))
        return self._gateway

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()

    def show(self, data: Any, *views: RenderableType) -> None:
        """Print `data` as JSON in `--json` mode, else the views made for people."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        for view in views:
            self.console.print(Text(view) if isinstance(view, str) else view)


def _want_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Session).as_json = True


json_option = click.option(
    "--json",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_want_json,
    help="Print the raw JSON (for scripts).",
)
"""Every command takes `--json`, before or after its own arguments."""

vsm_id_option = click.option(
    "--vsm-id",
    default=None,
    metavar="PATH",
    help="The viable system, e.g. root/logistics (default: root).",
)

pass_session = click.make_pass_decorator(Session, ensure=True)
