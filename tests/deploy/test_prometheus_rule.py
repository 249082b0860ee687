"""The chart's PrometheusRule: valid rules (promtool), alerts that fire when they should
(promtool's rule unit tests over synthetic series) and a runbook for every alert.

promtool comes from the Debian package `prometheus` (`make prometheus-package`), as the
observability tests' Prometheus does; tests/observability/test_operator_scrape.py runs the
same rules on a live Prometheus scraping a running system.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import FULL, ROOT, objects, render

RUNBOOKS = ROOT / "docs" / "runbooks"
ALERTS = {"VsmNotViable", "VsmServiceDown", "VsmDeadLettersGrowing", "VsmEscalationOpen"}
ALERTS |= {"VsmBudgetNearCap", "VsmDeadLetterQueueFull"}
NS = 'namespace="vsm"'
SERVICES = ("control", "coordinator", "intelligence", "mcp-gateway", "operations", "queen")
SERVICES += ("telegram-gateway", "rabbitmq")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make prometheus-package` installs it (Debian package)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def groups() -> list[dict[str, Any]]:
    rule = objects(render(FULL), "PrometheusRule")["vsm"]
    found: list[dict[str, Any]] = rule["spec"]["groups"]
    return found


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"]}


def test_the_rules_are_valid_for_promtool(groups: list[dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_the_check_refuses_a_broken_expression(
    groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    broken = yaml.safe_load(yaml.safe_dump(groups))
    broken[0]["rules"][0]["expr"] = "max by (vsm_id (vsm_viability)"
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": broken}))
    assert promtool("check", "rules", str(path)).returncode != 0


def test_every_alert_has_a_severity_and_a_runbook(groups: list[dict[str, Any]]) -> None:
    found = alerts(groups)
    assert set(found) == ALERTS
    base = FULL["monitoring"]["prometheusRule"].get(
        "runbookBaseUrl", "https://github.com/vsm-project/vsm/blob/main/docs/runbooks"
    )
    for name, rule in found.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["runbook_url"] == f"{base}/{name}.md"
        runbook = RUNBOOKS / f"{name}.md"
        assert runbook.exists(), f"no runbook {runbook.relative_to(ROOT)}"
        text = runbook.read_text()
        assert text.startswith(f"# {name}\n")
        assert "**What fired.**" in text
        assert "**Act.**" in text
        assert f"[{name}.md]({name}.md)" in (RUNBOOKS / "README.md").read_text()


def series(metric: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{metric}{{{NS}, {labels}}}", "values": values}


def up(missing: str = "", down: str = "") -> list[dict[str, str]]:
    """`up` of every target, one of them absent and one at 0 if asked."""
    return [
        series("up", f'service="vsm-{name}"', "0x20" if name == down else "1x20")
        for name in SERVICES
        if name != missing
    ]


def expect(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": x} for x in labels]}


UNIT_TESTS: list[dict[str, Any]] = [
    {
        "interval": "1m",
        "input_series": [
            series("vsm_viability", 'vsm_id="root"', "0.3x30"),
            series("vsm_viability", 'vsm_id="root/ok"', "0.9x30"),
            {"series": 'vsm_viability{namespace="other", vsm_id="root"}', "values": "0.1x30"},
        ],
        "alert_rule_test": [
            expect("VsmNotViable", "5m"),  # pending for 10 minutes first
            expect(
                "VsmNotViable",
                "15m",
                {"severity": "critical", "namespace": "vsm", "vsm_id": "root"},
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": up(down="queen"),
        "alert_rule_test": [
            expect("VsmServiceDown", "3m"),
            expect(
                "VsmServiceDown",
                "10m",
                {"severity": "critical", "namespace": "vsm", "service": "vsm-queen"},
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": up(missing="control"),
        "alert_rule_test": [
            expect(
                "VsmServiceDown",
                "10m",
                {"severity": "critical", "namespace": "vsm", "service": "vsm-control"},
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            series(
                "vsm_messages_dead_lettered_total",
                'service="operations", queue="vsm.operations.requests", reason="malformed_json"',
                "0x5 1x30",
            ),
        ],
        "alert_rule_test": [
            expect("VsmDeadLettersGrowing", "4m"),
            expect(
                "VsmDeadLettersGrowing",
                "8m",
                {
                    "severity": "warning",
                    "namespace": "vsm",
                    "service": "operations",
                    "queue": "vsm.operations.requests",
                    "reason": "malformed_json",
                },
            ),
            expect("VsmDeadLettersGrowing", "30m"),  # 15 minutes without a new one
        ],
    },
    {
        "interval": "1m",
        "input_series": [  # a labelled counter is born at its first increment
            series(
                "vsm_messages_dead_lettered_total",
                'service="queen", queue="q", reason="x"',
                "_x5 1x30",
            ),
        ],
        "alert_rule_test": [
            expect(
                "VsmDeadLettersGrowing",
                "8m",
                {
                    "severity": "warning",
                    "namespace": "vsm",
                    "service": "queen",
                    "queue": "q",
                    "reason": "x",
                },
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            series("vsm_dead_letter_queue_limit", 'service="vsm-mcp-gateway"', "100x30"),
            series("vsm_dead_letter_queue_messages", 'queue="a.dlq"', "50x3 85x30"),
            series("vsm_dead_letter_queue_messages", 'queue="b.dlq"', "70x30"),
        ],
        "alert_rule_test": [
            expect("VsmDeadLetterQueueFull", "6m"),  # pending for 5 minutes first
            expect(
                "VsmDeadLetterQueueFull",
                "10m",
                {"severity": "critical", "namespace": "vsm", "queue": "a.dlq"},
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": [  # refused dead letters: the queue they stay on
            series("vsm_dead_letters_refused_total", 'service="s", queue="q"', "_x5 1x30"),
        ],
        "alert_rule_test": [
            expect("VsmDeadLetterQueueFull", "4m"),
            expect(
                "VsmDeadLetterQueueFull",
                "12m",
                {"severity": "critical", "namespace": "vsm", "queue": "q"},
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            series("vsm_escalations_total", 'vsm_id="root", target="operators"', "0x5 1x40"),
            series("vsm_escalations_total", 'vsm_id="root/new", target="operators"', "_x5 1x40"),
            series("vsm_escalations_total", 'vsm_id="root/acked", target="operators"', "0x5 1x40"),
            series("vsm_alert_acknowledgements_total", 'vsm_id="root/acked"', "0x7 1x40"),
            series("vsm_escalations_total", 'vsm_id="root/up", target="parent"', "0x5 1x40"),
        ],
        "alert_rule_test": [
            expect("VsmEscalationOpen", "10m"),
            expect(
                "VsmEscalationOpen",
                "20m",
                {"severity": "critical", "namespace": "vsm", "vsm_id": "root"},
                {"severity": "critical", "namespace": "vsm", "vsm_id": "root/new"},
            ),
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            series(
                "vsm_allocation_ratio", 'vsm_id="root", resource="llm_tokens_per_min"', "0.95x30"
            ),
            series("vsm_allocation_ratio", 'vsm_id="root", resource="memory_mb"', "0.5x30"),
        ],
        "alert_rule_test": [
            expect("VsmBudgetNearCap", "10m"),
            expect(
                "VsmBudgetNearCap",
                "20m",
                {
                    "severity": "warning",
                    "namespace": "vsm",
                    "vsm_id": "root",
                    "resource": "llm_tokens_per_min",
                },
            ),
        ],
    },
]


def test_each_alert_fires_when_it_should_and_only_then(
    groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    """promtool's unit tests: series over time in, the alerts expected at each time out
    (annotations left out of the comparison: their text is not what is tested here)."""
    bare = yaml.safe_load(yaml.safe_dump(groups))
    for rule in (r for g in bare for r in g["rules"]):
        rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": bare}))
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": UNIT_TESTS}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    done = promtool("test", "rules", str(tmp_path / "tests.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert {t["alertname"] for u in UNIT_TESTS for t in u["alert_rule_test"]} == ALERTS
