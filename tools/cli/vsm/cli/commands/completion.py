"""`vsm completion bash|zsh|fish`: the shell's completion script (click's shell completion).

The script calls `vsm` back with `_VSM_COMPLETE` set to ask for the candidates, so commands,
options and choices added later complete without a new script.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_VSM_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash: vsm completion bash > ~/.local/share/bash-completion/completions/vsm
    zsh:  vsm completion zsh > "${fpath[1]}/_vsm"
    fish: vsm completion fish > ~/.config/fish/completions/vsm.fish
    """
    found = get_completion_class(shell)
    assert found is not None  # every choice is one of click's shells
    script = found(ctx.find_root().command, {}, "vsm", COMPLETE_VAR).source()
    click.echo(script, nl=not script.endswith("\n"))
