"""telegram-gateway settings: the shared ones (see vsm.kit.settings) plus the bot's."""

from pydantic import Field, SecretStr

from vsm.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    http_port: int = Field(default=8006, ge=0, le=65535)
    telegram_bot_token: SecretStr | None = None
