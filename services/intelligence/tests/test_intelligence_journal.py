"""S4's journal snapshot as plain data: every viable system's own rules come back as they
were declared, a child's once S4 meets it again in S5's tree."""

from __future__ import annotations

from vsm.contract.intelligence import System4Snapshot
from vsm.contract.rules import RuleDeclaration
from vsm.intelligence import app, journal
from vsm.intelligence.rulesets import RuleSets
from vsm.intelligence.settings import Settings
from vsm.intelligence.systems import ViableSystems

ROOT_RULES = [RuleDeclaration(name="hot", when="cpu > 0.9", then="alert warning")]
CHILD_RULES = [RuleDeclaration(name="busy", when="count(*) over 1m > 100", then="observe")]


def started() -> tuple[ViableSystems, RuleSets]:
    settings = Settings()
    rulesets = app.build_rulesets(settings)
    return app.build_systems(settings, rulesets), rulesets


def decided() -> tuple[ViableSystems, RuleSets]:
    systems, rulesets = started()
    systems.end_sync(["root/child", "root/quiet"])
    for vsm_id, rules in (("root", ROOT_RULES), ("root/child", CHILD_RULES)):
        system = systems.get(vsm_id)
        assert system is not None
        assert rulesets.adopt(system, rules) is None
    return systems, rulesets


def rules_of(systems: ViableSystems, vsm_id: str) -> list[RuleDeclaration]:
    system = systems.get(vsm_id)
    assert system is not None
    return system.judgement.declared


def test_rules_come_back_for_the_root_at_once_and_for_a_child_when_s4_meets_it_again() -> None:
    written = journal.snapshot_of(*decided())
    read_back = System4Snapshot.model_validate_json(written.model_dump_json())
    assert [r.vsm_id for r in read_back.rules] == ["root", "root/child"]  # not a system without
    systems, rulesets = started()

    journal.restore(systems, rulesets, read_back)

    assert rules_of(systems, "root") == ROOT_RULES
    assert systems.get("root/child") is None  # S5's tree not read yet
    assert journal.snapshot_of(systems, rulesets) == written  # a change meanwhile keeps it
    systems.end_sync(["root/child", "root/quiet"])
    assert rules_of(systems, "root/child") == CHILD_RULES
    assert rules_of(systems, "root/quiet") == []
    assert journal.snapshot_of(systems, rulesets) == written
    own = systems.get("root/child")
    assert own is not None
    assert [rule.name for rule in own.judgement.own.rules] == ["busy"]  # compiled, judging


def test_a_child_gone_while_s4_was_down_leaves_its_rules_out_once_the_tree_is_read() -> None:
    written = journal.snapshot_of(*decided())
    systems, rulesets = started()
    journal.restore(systems, rulesets, written)

    systems.end_sync(["root/quiet"])

    assert [r.vsm_id for r in journal.snapshot_of(systems, rulesets).rules] == ["root"]
