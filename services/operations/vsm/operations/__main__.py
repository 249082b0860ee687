"""Run operations: `python -m vsm.operations` (configuration from the environment)."""

from vsm.kit.runtime import serve
from vsm.operations.app import create_app
from vsm.operations.settings import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
