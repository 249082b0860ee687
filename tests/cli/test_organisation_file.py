"""Organisation files are refused with the line and the reason; the schema is published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vsm.cli.organisation.checks import check_configs
from vsm.cli.organisation.schema import schema_text
from vsm.cli.organisation.source import OrganisationInvalid, load, parse

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "deploy" / "organisation" / "default.yaml"
SCHEMA = ROOT / "docs" / "organisation.schema.json"

VALID = """\
identity:
  purpose: keep the lights on
  values: [care]
  constraints:
    - id: sane-throttle
      description: never throttle below one per second
      policy_type: throttle
      path: limits.*.max_rate_per_s
      op: ge
      value: 1
budget: {concurrency_slots: 16, llm_tokens_per_min: 0, memory_mb: 512}
agents:
  - name: w
    type: worker
    count: 2
meta_systems:
  - name: logistics
    identity: {purpose: move things}
    budget: {concurrency_slots: 4, llm_tokens_per_min: 0, memory_mb: 64}
    agents:
      - {name: mover, type: worker, config: {allocation: 2}}
"""


def problems(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(OrganisationInvalid) as refused:
        parse(text, Path("org.yaml"))
    return [(p.line, p.where, p.message) for p in refused.value.problems]


def test_a_valid_file_is_read_into_the_models() -> None:
    organisation = parse(VALID, Path("org.yaml")).organisation
    assert organisation.vsm_id == "root"
    assert organisation.agents[0].names() == ["w-1", "w-2"]
    assert organisation.meta_systems[0].agents[0].config == {"allocation": 2}
    assert organisation.identity is not None
    assert organisation.identity.constraints[0].op == "ge"


def test_a_wrong_value_is_refused_at_its_line() -> None:
    text = VALID.replace("    count: 2", "    count: 0")
    assert problems(text) == [(15, "agents[0].count", "Input should be greater than or equal to 1")]


def test_an_unknown_key_is_refused_at_its_own_line() -> None:
    text = VALID.replace("    type: worker\n", "    type: worker\n    colour: red\n", 1)
    assert problems(text) == [(15, "agents[0].colour", "Extra inputs are not permitted")]


def test_a_missing_key_is_refused_at_the_item_that_lacks_it() -> None:
    text = VALID.replace(
        "    budget: {concurrency_slots: 4, llm_tokens_per_min: 0, memory_mb: 64}\n", ""
    )
    assert problems(text) == [(17, "meta_systems[0].budget", "Field required")]


def test_a_broken_identity_constraint_is_refused_with_the_contract_reason() -> None:
    text = VALID.replace("op: ge", "op: in")
    [(line, where, message)] = problems(text)
    assert (line, where) == (5, "identity.constraints[0]")
    assert "needs a list value" in message


def test_names_must_be_unique_once_counts_are_expanded() -> None:
    text = VALID.replace("    count: 2\n", "    count: 2\n  - {name: w-2, type: sensor}\n")
    assert problems(text) == [
        (16, "agents[1].name", "agent name 'w-2' is already declared by agents[0] in root")
    ]


def test_yaml_errors_and_repeated_keys_name_their_line() -> None:
    assert problems("agents:\n  - name: w\n   type: worker\n")[0][:2] == (3, "yaml")
    twice = "identity: {purpose: a}\nidentity: {purpose: b}\n"
    assert problems(twice) == [(2, "identity", "key given twice")]
    assert problems("") == [(1, "(document)", "the file declares nothing")]


def test_the_message_gives_file_line_place_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text("agents:\n  - {name: Bad, type: worker}\n")
    with pytest.raises(OrganisationInvalid) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}:2: agents[0].name: String should match pattern '^[a-z0-9][a-z0-9-]{{0,59}}$'"
    )
    assert refused.value.exit_code == 2


def test_configs_are_checked_against_their_types_schemas_at_their_lines() -> None:
    worker = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"allocation": {"type": "integer", "minimum": 1}},
    }
    text = VALID.replace("{allocation: 2}", "{allocation: 0, colour: red}")
    text = text.replace("    type: worker\n", "    type: wroker\n", 1)
    file = parse(text, Path("org.yaml"))
    with pytest.raises(OrganisationInvalid) as refused:
        file.refuse(check_configs(file.organisation, {"worker": worker}))
    assert [(p.line, p.where, p.message) for p in refused.value.problems] == [
        (14, "agents[0].type", "unknown agent type 'wroker' (worker)"),
        (
            21,
            "meta_systems[0].agents[0].config",
            "Additional properties are not allowed ('colour' was unexpected)",
        ),
        (21, "meta_systems[0].agents[0].config.allocation", "0 is less than the minimum of 1"),
    ]


def test_the_default_organisation_is_valid() -> None:
    organisation = load(DEFAULT).organisation
    assert {agent.type for agent in organisation.agents} >= {"worker", "sensor", "api"}


def test_the_published_schema_is_what_the_models_generate() -> None:
    committed = SCHEMA.read_text() if SCHEMA.exists() else ""
    assert committed == schema_text(), (
        f"{SCHEMA} is stale: run `uv run vsm schema -o docs/organisation.schema.json`"
    )
    assert json.loads(committed)["properties"]["agents"]["type"] == "array"


RULES = """\
agents:
  - name: s
    type: sensor
    config:
      rules:
        - {name: hot, when: "load1 > 4 for 2x", then: pain 0.5}
rules:
  - name: quiet
    when: count(heartbeat) over 2m == 0
    then: alert warning
  - name: error-rate
    when: |
      count('*.error') over 5m
        / count(*) over 5m > 0.05 and
    then: pain 0.6
meta_systems:
  - name: logistics
    identity: {purpose: move things}
    budget: {concurrency_slots: 4, llm_tokens_per_min: 0, memory_mb: 64}
    rules:
      - {name: slow, when: "p95(latency) over 2h > 500", then: pain 0.5}
      - {name: loud, when: "x > 1", then: shout}
"""


def test_bad_rules_are_refused_at_the_line_of_the_file_and_the_column_of_the_rule() -> None:
    assert problems(RULES) == [
        (6, "agents[0].config.rules[0].when", "column 15: malformed number '2x': a duration "
         "is a number and ms, s, m or h"),
        (14, "rules[1].when", "column 32: expected a value, a reading or an aggregate, found "
         "the end of the rule"),
        (21, "meta_systems[0].rules[0].when", "column 19: a window of 2h is longer than the "
         "maximum (3600 s): windows are bounded"),
        (22, "meta_systems[0].rules[1].then", "column 1: expected `pain`, `pleasure`, "
         "`observe` or `alert`, found `shout`"),
    ]  # fmt: skip


def test_good_rules_are_read_into_the_models() -> None:
    text = RULES.replace("2x", "2s").replace(" and\n", "\n").replace("2h", "2m")
    organisation = parse(text.replace("then: shout", "then: observe"), Path("org.yaml"))
    declared = organisation.organisation.rules
    assert declared is not None
    assert [r.name for r in declared] == ["quiet", "error-rate"]
