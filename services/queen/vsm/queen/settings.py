"""queen settings: the shared ones (see vsm.kit.settings) with this service's defaults."""

from pydantic import Field

from vsm.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    http_port: int = Field(default=8005, ge=0, le=65535)
