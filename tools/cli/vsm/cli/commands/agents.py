"""`vsm agents list|spawn|command|terminate`: System 1's agents, by id or by name."""

from __future__ import annotations

import json
from typing import Any

import click

from vsm.cli import views
from vsm.cli.commands.parsing import json_object
from vsm.cli.errors import Refused, UsageProblem
from vsm.cli.gateway import Gateway
from vsm.cli.session import Session, json_option, output_option, pass_session, vsm_id_option


def find(gateway: Gateway, key: str) -> dict[str, Any]:
    """The running agent whose id, or else whose name, is `key` (a name must be unambiguous)."""
    return pick(gateway.get("/agents"), key)


def pick(running: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The agent of `running` whose id, or else whose name, is `key`."""
    by_id = [a for a in running if a["agent_id"] == key]
    by_name = [a for a in running if a.get("name") == key]
    if by_id or len(by_name) == 1:
        return dict((by_id or by_name)[0])
    if by_name:
        systems = ", ".join(sorted(a["vsm_id"] for a in by_name))
        raise UsageProblem(f"agent name {key!r} is used in {systems}: give the agent id")
    message = f"no running agent has the id or name {key!r} (see `vsm agents list`)"
    raise Refused(message, 404, "agent_not_found")


def end_all(gateway: Gateway, agent_ids: list[str]) -> list[dict[str, Any]]:
    """Terminate `agent_ids`: one DELETE for one, one bulk terminate for several (one DELETE
    each from a gateway without that route); the agents terminated, then the first refusal
    (if any) raised."""
    if len(agent_ids) > 1:
        try:
            answer = gateway.post("/agents:bulk-terminate", {"agent_ids": agent_ids})
        except Refused as refused:
            if not refused.no_such_route:
                raise
        else:
            refusals = [r for r in answer["results"] if r["agent"] is None]
            if refusals:
                first = refusals[0]
                message = f"POST /agents:bulk-terminate: {first['agent_id']}: {first['status']} "
                message += f"{first['error']}: {first['message']}"
                raise Refused(message, first["status"], first["error"])
            return [r["agent"] for r in answer["results"]]
    return [gateway.delete(f"/agents/{agent_id}") for agent_id in agent_ids]


@click.group()
def agents() -> None:
    """System 1: list, spawn, command and terminate agents."""


@agents.command("list")
@click.option("--type", "agent_type", default=None, help="Only agents of this type.")
@vsm_id_option
@json_option
@output_option
@pass_session
def list_agents(session: Session, agent_type: str | None, vsm_id: str | None) -> None:
    """The running agents (of one viable system with --vsm-id)."""
    found = session.gateway.get("/agents", type=agent_type)
    if vsm_id:
        found = [a for a in found if a.get("vsm_id", "root") == vsm_id]
    session.show(found, views.agents(found, session.wide), f"{len(found)} running")


@agents.command()
@click.argument("agent_type", metavar="TYPE")
@click.option("--name", default=None, help="A stable name, unique in its viable system.")
@click.option("--config", default=None, metavar="JSON", help="Config object, or @file.json.")
@vsm_id_option
@json_option
@pass_session
def spawn(
    session: Session, agent_type: str, name: str | None, config: str | None, vsm_id: str | None
) -> None:
    """Spawn an agent of TYPE (a built-in type, or one an agent host offers)."""
    body: dict[str, Any] = {"type": agent_type, "config": json_object(config, "--config")}
    if name:
        body["name"] = name
    agent = session.gateway.post("/agents", body, vsm_id=vsm_id)
    label = f" ({agent['name']})" if agent.get("name") else ""
    session.show(agent, f"spawned {agent['agent_type']} {agent['agent_id']}{label}")


@agents.command()
@click.argument("agent")
@click.argument("command")
@click.option("--data", default=None, metavar="JSON", help="The command's data, or @file.json.")
@click.option("--timeout", type=click.FloatRange(0, 300, min_open=True), default=30.0)
@json_option
@pass_session
def command(session: Session, agent: str, command: str, data: str | None, timeout: float) -> int:
    """Send COMMAND to AGENT (id or name) and print its result; exit 1 if it failed."""
    target = find(session.gateway, agent)
    body = {"type": command, "data": json_object(data, "--data"), "timeout_s": timeout}
    result = session.gateway.post(f"/agents/{target['agent_id']}/command", body)
    ok = result["status"] == "ok"
    outcome = result["result"] if ok else result["error"]
    summary = f"{command} on {target['agent_id']}: {result['status']}"
    session.show(result, f"{summary} ({result['processing_time_ms']:.1f} ms)", pretty(outcome))
    return 0 if ok else 1


@agents.command()
@click.argument("agent", nargs=-1, required=True)
@json_option
@pass_session
def terminate(session: Session, agent: tuple[str, ...]) -> None:
    """Terminate each AGENT (id or name), several in one request."""
    running = session.gateway.get("/agents")
    agent_ids = list(dict.fromkeys(pick(running, a)["agent_id"] for a in agent))
    ended = end_all(session.gateway, agent_ids)
    session.show(ended, *(f"terminated {a['agent_type']} {a['agent_id']}" for a in ended))


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
