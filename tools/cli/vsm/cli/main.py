"""`vsm`: operate a running viable system through the REST API of mcp-gateway.

Every failure ends as one line on stderr and an exit code (2 usage or invalid file,
1 refused by the gateway, 3 gateway unreachable), so scripts can tell them apart.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from click.exceptions import NoArgsIsHelpError

from vsm.cli.commands import (
    agents,
    approvals,
    completion,
    dlq,
    mcp,
    organisation,
    policy,
    signal,
    status,
    trace,
    watch,
)
from vsm.cli.errors import CliError
from vsm.cli.session import Session, json_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="VSM_URL", help="Gateway URL [env VSM_URL; default from config].")
@click.option(
    "--token",
    envvar="VSM_TOKEN",
    help="Bearer token [env VSM_TOKEN; default from config, else ./.run/token].",
)
@json_option
@click.version_option(package_name="vsm-cli", prog_name="vsm")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Operate a viable system: status, agents, signals, policies, approvals, traces, dead
    letters, files.

    The gateway is found from --url, VSM_URL, or `url` in $XDG_CONFIG_HOME/vsm/config.toml
    (default http://127.0.0.1:8000); its token from --token, VSM_TOKEN, `token` in that file,
    or, for a gateway on this machine, the .run/token that `make run` wrote here.
    """
    session = ctx.ensure_object(Session)
    session.url, session.token = url, token
    ctx.call_on_close(session.close)


for command in (
    status.status,
    agents.agents,
    signal.signal,
    policy.policy,
    trace.trace,
    organisation.apply,
    organisation.diff,
    organisation.schema,
    watch.watch,
    dlq.dlq,
    approvals.approvals,
    mcp.mcp,
    completion.completion,
):
    cli.add_command(command)


def fail(message: str, code: int) -> int:
    """`vsm: <message>` on stderr; a message of several problems gives one line each."""
    for line in message.splitlines() or [""]:
        click.echo(f"vsm: {line}", err=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; never a traceback for an expected failure."""
    try:
        result = cli.main(args=argv, prog_name="vsm", standalone_mode=False)
    except NoArgsIsHelpError as error:  # a group without its command: its help, as click does
        click.echo(error.format_message(), err=True)
        return 2
    except click.UsageError as error:
        hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
        return fail(f"{error.format_message()}{hint}", 2)
    except click.ClickException as error:
        return fail(error.format_message(), error.exit_code)
    except click.Abort:
        return fail("interrupted", 130)
    except CliError as error:
        return fail(str(error), error.exit_code)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
