"""Run coordinator: `python -m vsm.coordinator` (configuration from the environment)."""

from vsm.coordinator.app import create_app
from vsm.coordinator.settings import Settings
from vsm.kit.runtime import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
