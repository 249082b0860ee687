"""telegram-gateway settings: the shared ones (see vsm.kit.settings) plus the bot's."""

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from vsm.kit.settings import ServiceSettings

ChatIds = Annotated[frozenset[int], NoDecode]


def _chat_ids(cls: object, value: object) -> object:
    """`TELEGRAM_ALLOWED_CHAT_IDS=1,-100200` (a comma list, as operators write it)."""
    if isinstance(value, str):
        return frozenset(int(part) for part in value.split(",") if part.strip())
    return value


class Settings(ServiceSettings):
    http_port: int = Field(default=8006, ge=0, le=65535)
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_allowed_chat_ids: ChatIds = frozenset()
    telegram_operator_chat_ids: ChatIds = frozenset()
    telegram_poll_timeout_s: int = Field(default=10, ge=0, le=50)
    telegram_llm_model: str = Field(default="claude-haiku-4-5", min_length=1, max_length=128)
    telegram_llm_timeout_s: float = Field(default=60.0, gt=0, le=300)
    telegram_send_retries: int = Field(default=3, ge=0, le=10)

    _split_ids = field_validator(
        "telegram_allowed_chat_ids", "telegram_operator_chat_ids", mode="before"
    )(_chat_ids)

    @model_validator(mode="after")
    def _webhook_has_secret(self) -> "Settings":
        """A webhook without a secret would let anyone who finds the URL talk as Telegram."""
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            raise ValueError("TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET")
        return self

    @property
    def bot_enabled(self) -> bool:
        return bool(self.telegram_bot_token and self.telegram_bot_token.get_secret_value())

    @property
    def webhook(self) -> bool:
        return bool(self.telegram_webhook_url)
