"""Shell completion for bash, zsh and fish: the script each shell sources, and the answers
`vsm` gives when that script calls it back (bash itself runs its script here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import VSM, vsm

SCRIPTS = {
    "bash": "complete -o nosort -F _vsm_completion vsm",
    "zsh": "#compdef vsm",
    "fish": "complete --no-files --command vsm",
}


@pytest.mark.parametrize("shell", list(SCRIPTS))
def test_the_completion_script_is_produced_for_each_shell(shell: str) -> None:
    script = vsm("completion", shell)
    assert script.returncode == 0, script.stderr
    assert SCRIPTS[shell] in script.stdout
    assert "_VSM_COMPLETE" in script.stdout  # it asks `vsm` for the candidates
    click_own = vsm(env={"_VSM_COMPLETE": f"{shell}_source"})  # the protocol's own way
    assert click_own.stdout == script.stdout


def test_an_unknown_shell_is_a_usage_error() -> None:
    refused = vsm("completion", "tcsh")
    assert refused.returncode == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in refused.stderr


def bash_completes(*words: str) -> list[str]:
    """What bash offers for the last of `words`, through the sourced script."""
    line = " ".join(f"'{w}'" for w in words)
    program = (
        "source <(vsm completion bash) && complete -p vsm >/dev/null && "
        f"COMP_WORDS=(vsm {line}) COMP_CWORD={len(words)} && _vsm_completion vsm && "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    path = f"{Path(VSM).parent}:/usr/bin:/bin"
    done = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, env={"PATH": path}, check=True
    )
    return done.stdout.split()


def test_bash_completes_commands_subcommands_and_choices() -> None:
    assert "dlq" in bash_completes("d")
    assert bash_completes("dlq", "r") == ["requeue"]
    assert bash_completes("agents", "list", "-o", "") == ["json", "yaml", "wide"]
    assert bash_completes("completion", "") == ["bash", "zsh", "fish"]


def test_zsh_and_fish_get_their_answers() -> None:
    zsh = vsm(env={"_VSM_COMPLETE": "zsh_complete", "COMP_WORDS": "vsm dlq ", "COMP_CWORD": "2"})
    assert zsh.stdout.splitlines()[:2] == ["plain", "discard"]
    assert {"list", "show", "requeue", "discard"} <= set(zsh.stdout.splitlines())
    fish = vsm(
        env={
            "_VSM_COMPLETE": "fish_complete",
            "COMP_WORDS": "vsm agents list -o ",
            "COMP_CWORD": "",
        }
    )
    assert fish.stdout.splitlines() == ["plain,json", "plain,yaml", "plain,wide"]
