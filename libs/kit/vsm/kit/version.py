"""The project's version, as installed: every package takes it from the repository's VERSION
file, so the OpenAPI document, the MCP server and the images all say the same."""

from importlib.metadata import version

__all__ = ["VERSION"]

VERSION = version("vsm-kit")
