"""The default organisation brings the loop to life on its own: pain, intervention, recovery.

As `make run` does it: the organisation applied through `vsm apply`, the flaky endpoint
(which operations is allowed to call) and the workload from the launcher, and the
launcher's clocks (see `cli_system`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.flaky_endpoint import FlakyEndpoint, Schedule
from scripts.localrun import Workload, apply_organisation, organisation_file
from tests.support.cli import vsm
from tests.support.tokens import OPERATE_TOKEN, bearer

DEFAULT = Path(__file__).resolve().parents[2] / "deploy" / "organisation" / "default.yaml"
DEADLINE_S = 120.0
"""Generous: on an idle machine the first recovery comes about 40 s after the workload starts."""


def system5(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/vsm/system/5", headers=bearer(), timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_schedule_fails_in_bursts_after_a_calm_lead() -> None:
    schedule = Schedule(lead_s=10, burst_s=10, period_s=40, started=0)
    failing = [t for t in range(100) if schedule.failing(float(t))]
    assert failing == [*range(10, 20), *range(50, 60), *range(90, 100)]


def test_the_switch_turns_the_default_organisation_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert organisation_file("deploy/organisation/default.yaml") == Path(
        "deploy/organisation/default.yaml"
    )
    assert organisation_file("none") is None
    monkeypatch.setenv("VSM_DEFAULT_ORG", "0")
    assert organisation_file("deploy/organisation/default.yaml") is None


@pytest.mark.integration
def test_pain_intervention_and_recovery_happen_on_their_own(
    url: str, tmp_path: Path, flaky_endpoint: FlakyEndpoint
) -> None:
    endpoint = flaky_endpoint
    workload = None
    try:
        text = DEFAULT.read_text().replace("http://127.0.0.1:8007/", endpoint.url)
        assert endpoint.url in text
        (tmp_path / "default.yaml").write_text(text)
        calm_by = time.monotonic() + 60
        while system5(url)["algedonic"]["episode_open"] and time.monotonic() < calm_by:
            time.sleep(1)  # an earlier test's episode is still closing
        known = {i["intervention_id"] for i in system5(url)["interventions"]}

        assert apply_organisation(tmp_path / "default.yaml", url, OPERATE_TOKEN)
        endpoint.schedule.restart()
        workload = Workload(url, endpoint.url, OPERATE_TOKEN).start()
        started = time.monotonic()
        recovered = None
        while recovered is None and time.monotonic() - started < DEADLINE_S:
            time.sleep(1)
            fresh = [i for i in system5(url)["interventions"] if i["intervention_id"] not in known]
            # The api agents' error bursts are rate trouble: S5 throttles them. (The host
            # sensor may add interventions of its own on a loaded machine: adaptation ones.)
            recovered = next(
                (i for i in fresh if i["status"] == "resolved" and i["policy_type"] == "throttle"),
                None,
            )
        assert recovered is not None, (
            f"no throttling intervention opened and resolved in {DEADLINE_S:g} s: {fresh}"
        )
        assert recovered["causation"], "the intervention names the pain that caused it"
        print(f"pain -> intervention -> recovery within {time.monotonic() - started:.0f} s")

        shown = vsm("status", url=url)
        assert recovered["intervention_id"] in shown.stdout
        assert "resolved" in shown.stdout
        assert workload.sent > 0
        assert endpoint.calls > 0
    finally:
        if workload is not None:
            workload.stop()
