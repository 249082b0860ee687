"""Run telegram-gateway: `python -m vsm.telegram_gateway` (configuration from the environment)."""

from vsm.kit.runtime import serve
from vsm.telegram_gateway.app import create_app
from vsm.telegram_gateway.settings import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
