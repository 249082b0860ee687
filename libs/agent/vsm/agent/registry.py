"""Which agent types are offered, by whom, and the one rule for a clash.

A type name means one set of schemas in the whole system: a second source (a host, a
package's entry point, the built-in types) may offer a type already known only when its
config and command schemas are the same (`same_schemas`); otherwise it is refused with a
`TypeClash` that names both sources and what differs. Descriptions and versions may differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vsm.contract.agent_types import AgentTypeManifest, same_schemas
from vsm.contract.errors import Refused

__all__ = ["MAX_SOURCES", "TypeClash", "TypeOffer", "TypeRegistry", "check_clash", "differences"]

MAX_SOURCES = 256
"""Sources remembered per type (hosts come and go; the first ones are kept)."""


class TypeClash(Refused):
    """A type offered under a name already taken by different schemas."""

    def __init__(
        self, known: AgentTypeManifest, known_source: str, offered_source: str, differ: list[str]
    ) -> None:
        super().__init__(
            "agent_type_clash",
            f"agent type {known.name!r} from {offered_source} differs from the one "
            f"{known_source} offers ({'; '.join(differ)})",
            {
                "agent_type": known.name,
                "sources": [known_source, offered_source],
                "differences": differ,
            },
        )


def differences(known: AgentTypeManifest, offered: AgentTypeManifest) -> list[str]:
    """What differs between two manifests' schemas, in words (empty: none)."""
    found = []
    if known.config_schema != offered.config_schema:
        found.append("the config schema")
    for name in sorted(known.commands.keys() | offered.commands.keys()):
        one, other = known.commands.get(name), offered.commands.get(name)
        if one is None or other is None:
            found.append(f"command {name!r} is offered by one only")
        elif one.input_schema != other.input_schema:
            found.append(f"the input schema of {name!r}")
        elif one.output_schema != other.output_schema:
            found.append(f"the output schema of {name!r}")
    return found


def check_clash(
    known: AgentTypeManifest, known_source: str, offered: AgentTypeManifest, offered_source: str
) -> None:
    """Refuse (`TypeClash`) an offer of a known type name whose schemas differ."""
    if known.name == offered.name and not same_schemas(known, offered):
        raise TypeClash(known, known_source, offered_source, differences(known, offered))


@dataclass
class TypeOffer:
    """A type as first offered, and every source offering it."""

    manifest: AgentTypeManifest
    sources: list[str] = field(default_factory=list)


class TypeRegistry:
    """The types known here (to a host: what it offers; to the registry: the system's)."""

    def __init__(self) -> None:
        self.offers: dict[str, TypeOffer] = {}

    def register(self, manifest: AgentTypeManifest, source: str) -> bool:
        """Add an offer: True for a new type, False for one already known (the source is
        added); `TypeClash` when the schemas differ from the known ones."""
        offer = self.offers.get(manifest.name)
        if offer is None:
            self.offers[manifest.name] = TypeOffer(manifest, [source])
            return True
        check_clash(offer.manifest, offer.sources[0], manifest, source)
        if source not in offer.sources and len(offer.sources) < MAX_SOURCES:
            offer.sources.append(source)
        return False

    def withdraw(self, name: str, source: str) -> None:
        """A source no longer offers the type; the type goes when no source is left."""
        offer = self.offers.get(name)
        if offer is not None and source in offer.sources:
            offer.sources.remove(source)
            if not offer.sources:
                del self.offers[name]

    def get(self, name: str) -> AgentTypeManifest | None:
        offer = self.offers.get(name)
        return None if offer is None else offer.manifest

    def manifests(self) -> list[AgentTypeManifest]:
        return [offer.manifest for _, offer in sorted(self.offers.items())]
