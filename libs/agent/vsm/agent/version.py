"""The SDK's version, as installed: the project's one version (the repository's VERSION file),
which a host announces with the types it offers."""

from importlib.metadata import version

__all__ = ["VERSION"]

VERSION = version("vsm-agent")
