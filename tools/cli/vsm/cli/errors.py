"""What can go wrong in a command, each with the exit code scripts can rely on.

2: the command line or a file is wrong (nothing was sent); 1: the gateway refused a request;
3: the gateway could not be reached at all.
"""

from __future__ import annotations


class CliError(Exception):
    """An error shown as one line on stderr, ending the command with `exit_code`."""

    exit_code = 1


class UsageProblem(CliError):
    exit_code = 2


class Refused(CliError):
    """The gateway answered, but with an error status."""

    exit_code = 1

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def no_such_route(self) -> bool:
        """A 404 from the router itself (the gateway lacks the route), not a missing object."""
        return self.status == 404 and self.code == "not_found"


class Unreachable(CliError):
    exit_code = 3
