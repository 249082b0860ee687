"""The vsm service kit: what every service shares, so each service is only its own logic."""

from vsm.kit.bus import Bus
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings

__all__ = ["Bus", "Runtime", "ServiceSettings"]
