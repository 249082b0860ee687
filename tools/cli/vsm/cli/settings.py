"""Where the gateway is and how to prove who we are: flag, then environment, then config file.

Flags and `VSM_URL`/`VSM_TOKEN` arrive through click; the file is
`$XDG_CONFIG_HOME/vsm/config.toml` (default `~/.config/vsm/config.toml`) with top-level
`url` and `token`, so a token need not sit in shell history. Last comes the token `make run`
stored in `.run/token` of the current directory, sent only to a gateway on this machine.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vsm.cli.errors import UsageProblem

DEFAULT_URL = "http://127.0.0.1:8000"
KNOWN_KEYS = frozenset({"url", "token"})
LOCAL_TOKEN = Path(".run/token")
"""Where `make run` keeps the gateway's token (relative to the current directory)."""
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vsm" / "config.toml"


def read_config(path: Path) -> dict[str, Any]:
    """The config file's settings; none when it is absent, a usage error when it is wrong."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise UsageProblem(f"cannot read {path}: {error.strerror}") from error
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageProblem(f"{path}: {error}") from error
    unknown = sorted(set(values) - KNOWN_KEYS)
    if unknown:
        raise UsageProblem(f"{path}: unknown setting {unknown[0]!r} (known: url, token)")
    if not all(isinstance(values.get(key, ""), str) for key in KNOWN_KEYS):
        raise UsageProblem(f"{path}: url and token must be strings")
    return values


def local_token(url: str, path: Path = LOCAL_TOKEN) -> str | None:
    """`make run`'s token, for a gateway on this machine only (never sent elsewhere)."""
    if urlsplit(url).hostname not in LOOPBACK:
        return None
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageProblem(f"cannot read {path}: {error.strerror}") from error


def resolve(
    url: str | None, token: str | None, path: Path | None = None, local: Path = LOCAL_TOKEN
) -> Target:
    """Flags and environment (already merged by click) win over the file, the file over
    `make run`'s token and the defaults."""
    file = read_config(path or config_path())
    chosen_url = (url or file.get("url") or DEFAULT_URL).rstrip("/")
    if not chosen_url.startswith(("http://", "https://")):
        raise UsageProblem(f"gateway URL must start with http:// or https://, not {chosen_url!r}")
    chosen_token = token or file.get("token") or local_token(chosen_url, local)
    return Target(url=chosen_url, token=chosen_token)
