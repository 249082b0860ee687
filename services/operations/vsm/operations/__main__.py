"""Run operations: `python -m vsm.operations` (configuration from the environment)."""

from vsm.kit.lean import lean_process

lean_process()  # before anything below imports structlog (and with it rich)

from vsm.kit.runtime import serve  # noqa: E402
from vsm.operations.app import create_app  # noqa: E402
from vsm.operations.settings import Settings  # noqa: E402


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
