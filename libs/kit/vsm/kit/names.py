"""Namespacing: the one place where canonical topology names meet a deployment's prefix."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Namespace"]


@dataclass(frozen=True)
class Namespace:
    """`Namespace("t1").name("vsm.policy") == "t1.vsm.policy"`; the empty namespace is identity."""

    prefix: str = ""

    def name(self, canonical: str) -> str:
        return f"{self.prefix}.{canonical}" if self.prefix else canonical

    def canonical(self, name: str) -> str:
        head = f"{self.prefix}."
        return name[len(head) :] if self.prefix and name.startswith(head) else name
