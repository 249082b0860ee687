"""Listings in every format (`-o json|yaml|wide`) and organisation files read from stdin."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import pytest
import yaml

from tests.support.cli import row_matches, vsm

pytestmark = pytest.mark.integration


def listed(url: str, *args: str) -> Any:
    answered = vsm(*args, url=url)
    assert answered.returncode == 0, answered.stderr
    return answered.stdout


def test_agents_list_in_json_yaml_and_wide(url: str) -> None:
    name = f"out-{secrets.token_hex(3)}"
    config = {"allocation": 2}
    spawned = vsm(
        "agents", "spawn", "worker", "--name", name, "--config", json.dumps(config), url=url
    )
    assert spawned.returncode == 0, spawned.stderr
    try:
        as_json = json.loads(listed(url, "agents", "list", "-o", "json"))
        assert as_json == json.loads(listed(url, "agents", "list", "--json"))
        [agent] = [a for a in as_json if a["name"] == name]
        assert yaml.safe_load(listed(url, "agents", "list", "-o", "yaml")) == as_json
        table = listed(url, "agents", "list")
        wide = listed(url, "agents", "list", "-o", "wide")
        row = rf"{agent['agent_id']} +{name} +worker +root +running +2/16 +\S+"
        assert row_matches(row, table), table
        spawned_at = re.escape(agent["spawned_at"])
        extra = (
            rf" +0 +{','.join(agent['capabilities'])} +{spawned_at} +\{{.*\"allocation\":2.*\}}$"
        )
        assert row_matches(row + extra, wide), wide
    finally:
        vsm("agents", "terminate", name, url=url)


def test_policy_list_in_json_yaml_and_wide(url: str) -> None:
    as_json = json.loads(listed(url, "policy", "list", "-o", "json"))
    assert as_json["vsm_id"] == "root"
    assert yaml.safe_load(listed(url, "policy", "list", "-o", "yaml")) == as_json
    wide = listed(url, "policy", "list", "-o", "wide")
    for item in as_json["policies"]:
        line = rf"{item['policy_type']} +{item['latest_version']} +{item['source']} +.+ ago +"
        assert row_matches(line + re.escape(item["created_at"]), wide), wide


def test_an_unknown_format_is_a_usage_error(url: str) -> None:
    refused = vsm("agents", "list", "-o", "xml", url=url)
    assert refused.returncode == 2
    assert "'xml' is not one of 'json', 'yaml', 'wide'" in refused.stderr


def test_apply_reads_the_organisation_from_stdin(url: str) -> None:
    name = f"stdin-{secrets.token_hex(3)}"
    text = f"version: 1\nagents:\n  - {{name: {name}, type: worker, count: 2}}\n"
    planned = vsm("diff", "-f", "-", url=url, stdin=text)
    assert planned.returncode == 0, planned.stderr
    assert f"+ agent {name}-1: worker\n" in planned.stdout
    applied = vsm("apply", "-f", "-", url=url, stdin=text)
    assert applied.returncode == 0, applied.stderr
    try:
        for index in (1, 2):
            assert f"created agent {name}-{index} of root" in applied.stdout
        running = json.loads(listed(url, "agents", "list", "--json"))
        assert {f"{name}-1", f"{name}-2"} <= {a["name"] for a in running}
        again = vsm("apply", "-f", "-", url=url, stdin=text)
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("No changes: the running system matches the file.")
    finally:
        vsm("agents", "terminate", f"{name}-1", f"{name}-2", url=url)


def test_a_bad_organisation_on_stdin_is_refused_by_line(url: str) -> None:
    text = (
        "version: 1\nagents:\n  - {name: a, type: worker}\n  - {name: b, type: worker, count: 0}\n"
    )
    refused = vsm("apply", "-f", "-", url=url, stdin=text)
    assert refused.returncode == 2
    assert refused.stderr == (
        "vsm: <stdin>:4: agents[1].count: Input should be greater than or equal to 1\n"
    )
    broken = vsm("diff", "-f", "-", url=url, stdin="version: 1\nagents: [\n  {name: a,\n")
    assert broken.returncode == 2
    assert re.fullmatch(r"vsm: <stdin>:\d: yaml: .+\n", broken.stderr)
