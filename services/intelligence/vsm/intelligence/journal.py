"""S4's decisions as a journal snapshot and back: every viable system's own rules.

Pure: `snapshot_of` reads the systems, `restore` gives the rules back. The snapshot is written
to `vsm.system4.journal` after every change of a system's rules (`vsm.kit.journal`); what S4
sees (series, baselines, anomalies, scans) is an observation, learnt again, and the standing
rules are settings. A child's S4 comes back only when S4 reads S5's tree after its start: its
rules wait for it (`RuleSets.kept`), and until the tree is read they are written on with the
rest, so a change made meanwhile does not drop them.
"""

from __future__ import annotations

from vsm.contract.intelligence import RulesRecord, System4Snapshot
from vsm.intelligence.rulesets import RuleSets
from vsm.intelligence.systems import ViableSystems

__all__ = ["restore", "snapshot_of"]


def snapshot_of(systems: ViableSystems, rulesets: RuleSets) -> System4Snapshot:
    declared = {s.vsm_id: s.judgement.declared for s in systems if s.judgement.declared}
    if not systems.synced:
        declared = {**rulesets.kept, **declared}
    return System4Snapshot(
        rules=[RulesRecord(vsm_id=v, rules=list(rules)) for v, rules in sorted(declared.items())]
    )


def restore(systems: ViableSystems, rulesets: RuleSets, snapshot: System4Snapshot) -> None:
    """Each system's rules back: at once for those S4 keeps already (its root), later for
    the children it meets again."""
    for record in snapshot.rules:
        rulesets.kept[record.vsm_id] = list(record.rules)
        system = systems.get(record.vsm_id)
        if system is not None:
            rulesets.resume(system)
