"""Run intelligence: `python -m vsm.intelligence` (configuration from the environment)."""

from vsm.intelligence.app import create_app
from vsm.intelligence.settings import Settings
from vsm.kit.runtime import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
