"""Turning command-line text into request bodies, with errors that name the option."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vsm.cli.errors import UsageProblem


def json_object(text: str | None, option: str) -> dict[str, Any]:
    """A JSON object given inline, or `@path` to read it from a file; `{}` when absent."""
    if text is None:
        return {}
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as error:
            raise UsageProblem(f"{option}: cannot read {text[1:]}: {error.strerror}") from error
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageProblem(f"{option}: not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise UsageProblem(f"{option}: must be a JSON object, not {type(value).__name__}")
    return value
