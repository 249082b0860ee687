"""Run mcp-gateway: `python -m vsm.mcp_gateway` (configuration from the environment)."""

from vsm.kit.runtime import serve
from vsm.mcp_gateway.app import create_app
from vsm.mcp_gateway.settings import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
