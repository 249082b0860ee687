"""The egress client made on its first call: httpx is imported, and a connection pool opened,
only by a service that does call out (an outside source to poll, an agent that calls an API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vsm.kit.egress.policy import EgressPolicy

if TYPE_CHECKING:
    import httpx

__all__ = ["OnDemand"]


class OnDemand:
    """`egress_client(policy, timeout_s, **options)`, made when first called, then the same."""

    def __init__(self, policy: EgressPolicy, timeout_s: float, **options: Any) -> None:
        self.policy = policy
        self.timeout_s = timeout_s
        self.options = options
        self.made: httpx.AsyncClient | None = None

    def __call__(self) -> httpx.AsyncClient:
        if self.made is None:
            from vsm.kit.egress.client import egress_client

            self.made = egress_client(self.policy, self.timeout_s, **self.options)
        return self.made

    async def aclose(self) -> None:
        """Close the client if it was made (a later call makes a new one)."""
        made, self.made = self.made, None
        if made is not None:
            await made.aclose()
