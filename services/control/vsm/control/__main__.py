"""Run control: `python -m vsm.control` (configuration from the environment)."""

from vsm.control.app import create_app
from vsm.control.settings import Settings
from vsm.kit.runtime import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
