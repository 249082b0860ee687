"""Structure: S3's spawn requests for the children S5's transformational adaptations grow.

A request S5 cannot carry out (a quota, a refused spawn) is raised as pain with its reason;
the handler itself only decodes and hands over.
"""

from __future__ import annotations

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction
from vsm.contract.envelope import Envelope
from vsm.kit.bus import Bus
from vsm.queen.structure import Structure


def register(bus: Bus, structure: Structure) -> None:
    @bus.handle(topology.SYSTEM5_INTELLIGENCE, AdaptationAction)
    async def on_spawn_request(envelope: Envelope[AdaptationAction]) -> None:
        await structure.journal.opened.wait()
        await structure.proposed(envelope)
