"""Reading S5's tree of viable systems when S4 starts (children spawned before it).

S5 answers `queen.meta.list` with the children of one system; S4 walks the tree from its
root. Until one walk has succeeded (S5 may start later), it is tried again on a schedule;
announcements heard meanwhile are applied after it (see `ViableSystems.end_sync`).
"""

from __future__ import annotations

import structlog

from vsm.contract.recursion import MetaSystemQuery, MetaSystemTree
from vsm.intelligence.systems import ViableSystems
from vsm.kit.bus import Bus

log = structlog.get_logger("vsm.intelligence.tree")


async def read_tree(bus: Bus, root: str) -> set[str]:
    """Every viable system below `root`, as S5 knows them now."""
    found: set[str] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        tree = await bus.query(
            "queen", "meta.list", MetaSystemQuery(), MetaSystemTree, vsm_id=parent
        )
        for child in tree.children:
            if child.vsm_id not in found:
                found.add(child.vsm_id)
                frontier.append(child.vsm_id)
    return found


class TreeSync:
    def __init__(self, bus: Bus, systems: ViableSystems) -> None:
        self.bus = bus
        self.systems = systems

    async def once(self) -> None:
        """Read the tree unless it has been read; a failure is retried at the next run."""
        if self.systems.synced:
            return
        self.systems.begin_sync()
        try:
            found = await read_tree(self.bus, self.systems.root)
        except Exception:
            self.systems.pending = None
            raise
        self.systems.end_sync(found)
        log.info("tree_read", systems=len(self.systems))
