"""The viable systems this S4 serves: its root and every child S5 has spawned, each with an
S4 of its own (environment, baselines, variety, readiness, scans, proposals and rules).

A child's S4 exists only once S5 has announced it (`spawned.#` on `vsm.recursive`, or found
in S5's tree when S4 starts) and goes with its retirement: nothing a caller names (a message's
`vsm_id`, a query) creates state, so the number of systems is bounded by S5's quotas (depth
5, 10 children each). While the tree is read from S5 at start-up, announcements that arrive
are kept and applied after it, in order, so a spawn or retirement in between is not lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from vsm.intelligence.environment import Sightings
from vsm.intelligence.system4 import System4

Change = tuple[str, str]
"""("spawned" | "retired", vsm_id)."""


@dataclass
class ViableSystems:
    root: str
    make: Callable[[str, Sightings], System4]
    sightings: Sightings = field(default_factory=dict)
    systems: dict[str, System4] = field(default_factory=dict)
    pending: list[Change] | None = None
    """Announcements heard while the tree is being read (None: not reading)."""
    synced: bool = False

    def __post_init__(self) -> None:
        self.systems.setdefault(self.root, self.make(self.root, self.sightings))

    def __iter__(self) -> Iterator[System4]:
        return iter(list(self.systems.values()))

    def __len__(self) -> int:
        return len(self.systems)

    def get(self, vsm_id: str) -> System4 | None:
        return self.systems.get(vsm_id)

    def below_root(self, vsm_id: str) -> bool:
        return vsm_id.startswith(f"{self.root}/")

    def spawned(self, vsm_id: str) -> None:
        if self.pending is not None:
            self.pending.append(("spawned", vsm_id))
        if self.below_root(vsm_id) and vsm_id not in self.systems:
            self.systems[vsm_id] = self.make(vsm_id, self.sightings)

    def retired(self, vsm_id: str) -> None:
        if self.pending is not None:
            self.pending.append(("retired", vsm_id))
        if vsm_id != self.root:
            self.systems.pop(vsm_id, None)

    def begin_sync(self) -> None:
        self.pending = []

    def end_sync(self, found: Iterable[str]) -> None:
        """S5's tree as read: these children exist, then what was heard meanwhile (a child
        retired after S5 answered goes again). A child heard of before the reading began is
        kept: only its retirement, also heard, removes it."""
        heard, self.pending = self.pending or [], None
        for vsm_id in found:
            self.spawned(vsm_id)
        for change, vsm_id in heard:
            (self.spawned if change == "spawned" else self.retired)(vsm_id)
        self.synced = True
