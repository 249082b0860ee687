"""Run queen: `python -m vsm.queen` (configuration from the environment)."""

from vsm.kit.runtime import serve
from vsm.queen.app import create_app
from vsm.queen.settings import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
