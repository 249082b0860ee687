"""The console's plain functions: units in VSM terms, pagination, forms from JSON schemas, a
policy diff's rows, a trace's layout, sessions and the Host/Origin/JSON checks."""

from __future__ import annotations

from datetime import UTC, datetime

from vsm.contract.operations import AgentInfo
from vsm.contract.policy import PolicyDiff, ValueChange
from vsm.contract.system5 import TraceStep
from vsm.mcp_gateway.console import views
from vsm.mcp_gateway.console.guard import Peers
from vsm.mcp_gateway.console.session import cookie_value, session_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def agent(agent_id: str, state: str = "running") -> AgentInfo:
    return AgentInfo(
        agent_id=agent_id, agent_type="worker", allocation=4, max_allocation=16,
        state=state, spawned_at=NOW,  # type: ignore[arg-type]
    )  # fmt: skip


def test_units_in_trouble_come_first_and_the_map_stays_one_screen() -> None:
    agents = [agent(f"a{i:04d}") for i in range(1000)] + [agent("gone", "terminated")]
    shown, counts = views.map_units(views.units(agents, None, None))
    assert len(shown) == views.MAP_UNITS
    assert counts == {"running": 1000, "terminated": 1}
    page = views.paginate(views.units(agents, None, None), 3)
    assert (len(page.items), page.number, page.pages) == (50, 3, 21)
    assert views.paginate([], 9).number == 1


def test_a_schema_becomes_fields_with_kinds_defaults_and_limits() -> None:
    schema = {
        "properties": {
            "allocation": {"type": "integer", "default": 4, "minimum": 1, "maximum": 256},
            "mode": {"enum": ["fast", "slow"]},
            "on": {"type": "boolean", "default": True},
            "limits": {"$ref": "#/$defs/Limits"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["mode"],
        "$defs": {"Limits": {"type": "object", "properties": {}}},
    }
    fields = {f.name: f for f in views.form_fields(schema, "config.")}
    assert fields["config.allocation"].kind == "integer"
    assert (fields["config.allocation"].minimum, fields["config.allocation"].maximum) == (1, 256)
    assert fields["config.mode"].kind == "choice"
    assert fields["config.mode"].required
    assert fields["config.on"].default == "true"
    assert fields["config.limits"].kind == "json"
    assert (fields["config.note"].kind, fields["config.note"].default) == ("text", "")


def test_a_diff_reads_key_by_key() -> None:
    diff = PolicyDiff(
        policy_type="throttle", from_version=1, to_version=2,
        added={"b": 1}, removed={"a": 2}, changed={"c": ValueChange(before=1, after=2)},
    )  # fmt: skip
    assert [(r.key, r.change) for r in views.diff_rows(diff)] == [
        ("a", "removed"),
        ("b", "added"),
        ("c", "changed"),
    ]


def test_a_trace_is_laid_out_cause_to_effect() -> None:
    def step(i: str, cause: str | None, depth: int, kind: str) -> TraceStep:
        return TraceStep(
            id=i, type=kind, source="vsm/queen", time=NOW, vsm_id="root",
            causation_id=cause, depth=depth, summary=i,
        )  # fmt: skip

    graph = views.trace_graph(
        [
            step("s", None, 0, "vsm.algedonic.signal.v1"),
            step("i", "s", 1, "vsm.s5.intervention.opened.v1"),
            step("p", "i", 2, "vsm.s5.policy.changed.v1"),
        ]
    )
    assert [n.kind for n in graph.nodes] == ["signal", "intervention", "policy"]
    assert len(graph.edges) == 2
    assert graph.edges[0].x1 < graph.edges[0].x2


def test_a_session_ends_with_its_time_or_its_token() -> None:
    known = {"op": "operate", "ro": "read"}
    session = session_of(cookie_value("op", 2000), known.get, now=1000)  # type: ignore[arg-type]
    assert session is not None
    assert session.can_operate
    assert session_of(cookie_value("op", 999), known.get, now=1000) is None  # type: ignore[arg-type]
    assert session_of(cookie_value("revoked", 2000), known.get, now=1000) is None  # type: ignore[arg-type]
    assert session_of("garbage", known.get, now=1000) is None  # type: ignore[arg-type]
    reader = session_of(cookie_value("ro", 2000), known.get, now=1000)  # type: ignore[arg-type]
    assert reader is not None
    assert not reader.can_operate


def test_actions_need_json_from_an_allowed_origin_on_an_allowed_host() -> None:
    peers = Peers(["127.0.0.1:*", "vsm.example.org"], ["http://127.0.0.1:*"])
    assert peers.refuse_host("127.0.0.1:8000") is None
    assert peers.refuse_host("vsm.example.org") is None
    assert peers.refuse_host("evil.example:8000")[0] == 421  # type: ignore[index]
    ok = peers.refuse_action("POST", "http://127.0.0.1:8000", "application/json; charset=utf-8")
    assert ok is None
    assert peers.refuse_action("POST", "http://evil.example", "application/json")[0] == 403  # type: ignore[index]
    assert peers.refuse_action("POST", None, "application/json")[0] == 403  # type: ignore[index]
    assert peers.refuse_action("DELETE", "http://127.0.0.1:1", "text/plain")[0] == 415  # type: ignore[index]
    assert peers.refuse_action("GET", "http://evil.example", "") is None
