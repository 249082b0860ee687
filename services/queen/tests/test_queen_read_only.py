"""A query about a viable system creates no state for it."""

from __future__ import annotations

from datetime import UTC, datetime

from vsm.queen.system5 import System5


def test_reading_a_system_s_viability_or_situation_keeps_nothing_for_it() -> None:
    s5, now = System5(), datetime.now(UTC)
    for index in range(100):
        vsm_id = f"root/made-up-{index}"
        s5.viability(vsm_id, now)
        s5.algedonic_state(vsm_id, now)
        s5.situation(vsm_id, now)
        s5.state(vsm_id, now, "none")
    assert s5.feelings == {}
    assert s5.measured == {}
