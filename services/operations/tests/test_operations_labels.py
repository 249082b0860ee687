"""S1's labels name only what the catalogue declares: made-up commands are `other`."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from vsm_example_agents.csv_summary import CsvSummary

from vsm.operations.agents.sdk import hosted_type
from vsm.operations.metrics import create_metrics, declared_command, narrow_command_key
from vsm.operations.registry import Registry


def test_a_command_is_labelled_by_its_type_s_declared_name_or_other() -> None:
    assert declared_command("worker", "process_data") == "process_data"
    assert declared_command("worker", "made_up_17") == "other"
    assert declared_command("no_such_type", "process_data") == "other"


def test_a_hosted_types_commands_are_labelled_where_it_runs() -> None:
    kinds = {"csv-summary": hosted_type(CsvSummary)}  # what a host offering it runs
    assert declared_command("csv-summary", "summarise", kinds) == "summarise"
    assert declared_command("csv-summary", "made_up_17", kinds) == "other"
    assert declared_command("csv-summary", "summarise") == "other"  # not in operations


def test_command_and_result_keys_are_narrowed_other_keys_kept() -> None:
    key = "worker.worker-1a2b.made_up_17"
    assert narrow_command_key("vsm.s1.commands", key) == "worker.worker-1a2b.other"
    assert narrow_command_key("ns.vsm.s1.worker-1a2b.results", key) == "worker.worker-1a2b.other"
    known = "worker.worker-1a2b.process_data"
    assert narrow_command_key("vsm.s1.commands", known) == known
    assert narrow_command_key("vsm.control", "s1.performance.x") == "s1.performance.x"


def test_an_audit_keeps_its_key_so_the_dashboards_tell_audits_from_commands() -> None:
    audit = "audit.worker-1a2b.audit"
    assert narrow_command_key("ns.vsm.s1.commands", audit) == audit
    assert narrow_command_key("vsm.s1.commands", "audit.worker-1a2b.other") == (
        "other.worker-1a2b.other"
    )


def test_each_commands_result_and_duration_are_counted_in_its_series() -> None:
    prometheus = CollectorRegistry()
    metrics = create_metrics(prometheus, Registry())
    for status, seconds in (("ok", 0.002), ("ok", 0.004), ("error", 0.5)):
        metrics.command_done("root/ops", "worker", "process_data", status, seconds)
    metrics.command_done("root", "worker", "other", "ok", 0.001)

    def value(name: str, **labels: str) -> float | None:
        return prometheus.get_sample_value(name, labels)

    counted = {"agent_type": "worker", "command": "process_data"}
    assert value("vsm_commands_total", vsm_id="root/ops", status="ok", **counted) == 2
    assert value("vsm_commands_total", vsm_id="root/ops", status="error", **counted) == 1
    assert value("vsm_commands_total", vsm_id="root", status="ok", **counted) is None
    assert value("vsm_command_duration_seconds_count", **counted) == 3
    assert value("vsm_command_duration_seconds_sum", **counted) == pytest.approx(0.506)
    assert value("vsm_command_duration_seconds_count", agent_type="worker", command="other") == 1
