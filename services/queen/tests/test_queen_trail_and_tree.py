"""The causal trail rebuilds chains from causation ids; the meta-system tree keeps its quotas."""

from datetime import UTC, datetime

import pytest

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import AllocationChanged, Resources
from vsm.contract.envelope import Envelope
from vsm.contract.recursion import MetaSystemInfo, MetaSystemRetired, MetaSystemSpawned
from vsm.contract.system5 import InterventionOpened
from vsm.queen.meta import MetaTree, Refused
from vsm.queen.trail import Trail, render


def loop_chain() -> list[Envelope[object]]:
    signal = Envelope.wrap(
        AlgedonicSignal(
            kind="pain", intensity=0.8, origin="operations/api-1", reason="error_burst"
        ),
        source="operations",
    )
    opened = Envelope.wrap(
        InterventionOpened(
            intervention_id="iv-1", trigger="pain_threshold", reason="error_burst", pain_level=0.8
        ),
        source="queen",
        cause=signal,
    )
    allocation = Envelope.wrap(
        AllocationChanged(
            agent_id="api-1",
            agent_type="api",
            resources=Resources(concurrency_slots=1),
            max_rate_per_s=2.0,
            reason="throttle v1",
        ),
        source="control",
        cause=opened,
    )
    return [signal, opened, allocation]


def test_any_id_of_a_chain_gives_the_whole_chain_root_first() -> None:
    trail = Trail()
    signal, opened, allocation = loop_chain()
    unrelated = Envelope.wrap(
        AlgedonicSignal(kind="pleasure", intensity=0.2, origin="x", reason="ok"), source="x"
    )
    for envelope in (allocation, unrelated, opened, signal):  # arrival order does not matter
        trail.record(envelope)
    for asked in (signal.id, opened.id, allocation.id):
        chain = trail.chain(asked)
        assert chain is not None
        assert [s.id for s in chain] == [signal.id, opened.id, allocation.id]
        assert [s.depth for s in chain] == [0, 1, 2]
    text = render(trail.chain(allocation.id) or [])
    assert "pain 0.80 from operations/api-1" in text
    assert "at most 2.0/s" in text.splitlines()[2]
    assert trail.chain("nobody") is None


def test_the_trail_forgets_its_oldest_entries_first() -> None:
    trail = Trail(keep=2)
    for envelope in loop_chain():
        trail.record(envelope)
    assert len(trail.steps) == 2
    assert trail.chain(loop_chain()[0].id) is None


def test_made_up_causes_leave_no_keys_once_their_messages_are_forgotten() -> None:
    trail = Trail(keep=100)
    for index in range(2_000):
        signal = AlgedonicSignal(kind="pain", intensity=0.1, origin="o", reason="r")
        envelope = Envelope.wrap(signal, source="operations")
        trail.record(envelope.model_copy(update={"causation_id": f"made-up-{index}"}))
    assert len(trail.steps) == 100
    assert len(trail.caused) <= 100


def spawned(tree: MetaTree, vsm_id: str) -> None:
    parent = vsm_id.rpartition("/")[0]
    info = MetaSystemInfo(
        vsm_id=vsm_id,
        parent=parent,
        purpose="p",
        budget=Resources(),
        depth=vsm_id.count("/"),
        spawned_at=datetime.now(UTC),
    )
    tree.apply(MetaSystemSpawned(meta_system=info))


@pytest.mark.parametrize(
    ("parent", "name", "code"),
    [
        ("root/a/b/c/d/e", "f", "quota_exceeded"),
        ("root/a", "a", "cyclic_vsm_id"),
        ("root/nowhere", "x", "meta_system_not_found"),
        ("root", "a", "meta_system_exists"),
    ],
)
def test_spawns_beyond_the_quotas_are_refused(parent: str, name: str, code: str) -> None:
    tree = MetaTree()
    for vsm_id in ("root/a", "root/a/b", "root/a/b/c", "root/a/b/c/d", "root/a/b/c/d/e"):
        spawned(tree, vsm_id)
    before = dict(tree.systems)
    with pytest.raises(Refused) as refused:
        tree.check_spawn(parent, name)
    assert refused.value.code == code
    assert tree.systems == before


def test_at_most_ten_children_and_no_retiring_a_parent() -> None:
    tree = MetaTree()
    for i in range(10):
        spawned(tree, f"root/c{i}")
    with pytest.raises(Refused, match="quota_exceeded"):
        tree.check_spawn("root", "c10")
    spawned(tree, "root/c0/x")
    with pytest.raises(Refused, match="has_children"):
        tree.check_retire("root/c0")
    tree.apply(
        MetaSystemRetired(vsm_id="root/c0/x", parent="root/c0", retired_at=datetime.now(UTC))
    )
    assert tree.check_retire("root/c0").vsm_id == "root/c0"


def test_the_tree_holds_at_most_its_total_whatever_the_parent() -> None:
    tree = MetaTree(max_total=3)
    for vsm_id in ("root/a", "root/b", "root/a/c"):
        spawned(tree, vsm_id)
    with pytest.raises(Refused, match="META_MAX_TOTAL"):
        tree.check_spawn("root/b", "d")
    tree.apply(MetaSystemRetired(vsm_id="root/a/c", parent="root/a", retired_at=datetime.now(UTC)))
    assert tree.check_spawn("root/b", "d") == "root/b/d"
