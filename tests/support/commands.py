"""One command of an SDK agent, run as the runner runs it but with its refusal raised, for
unit tests of an agent type's own logic (no host, no broker)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from vsm.agent import Agent, Allocation, Cancellation, Context, Llm, definition


async def perform(
    agent: Agent[Any],
    command: str,
    data: dict[str, Any],
    command_id: str = "command-1",
    llm: Llm | None = None,
) -> dict[str, Any]:
    """`data` validated (`ValidationError` names the field), the command's method run with a
    context (`ctx.llm`: `llm`), its answer as JSON data; what it raises (`Refused`) is raised."""
    declared = definition(type(agent)).commands[command]
    arguments: dict[str, Any] = {
        declared.input_parameter: declared.input_model.model_validate(data)
    }
    if declared.context_parameter is not None:
        arguments[declared.context_parameter] = Context(
            agent.identity,
            command,
            command_id,
            allocation=Allocation,
            cancellation=Cancellation(),
            log=agent.log,
            llm=llm,
        )
    answer = await getattr(agent, declared.method)(**arguments)
    return answer.model_dump(mode="json") if isinstance(answer, BaseModel) else dict(answer)
