"""How queen registers a request handler: its answer is the reply, a refusal an ErrorReply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faststream.rabbit.response import RabbitResponse

from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.errors import ErrorReply
from vsm.contract.message import Message
from vsm.kit.bus import Bus
from vsm.queen.meta import Refused
from vsm.queen.policies import PolicyRejected

Answer = Callable[[Envelope[Any]], Awaitable[Message]]


def answering(bus: Bus, message: type[Message]) -> Callable[[Answer], Answer]:
    """Register `answer` for `message`; a `PolicyRejected` or `Refused` becomes an ErrorReply."""
    queue = topology.requests_queue("queen")

    def register_answer(answer: Answer) -> Answer:
        async def handler(envelope: Envelope[Any]) -> RabbitResponse:
            try:
                reply = await answer(envelope)
            except PolicyRejected as rejected:
                reply = ErrorReply(
                    code=rejected.code,
                    message=rejected.message[:4096],
                    details={"reasons": rejected.reasons},
                )
            except Refused as refused:
                reply = ErrorReply(code=refused.code, message=refused.message[:4096])
            return bus.reply(reply, cause=envelope)

        handler.__name__ = handler.__qualname__ = f"on_{message.__name__}"
        handler.__annotations__ = {"envelope": Envelope[message], "return": RabbitResponse}  # type: ignore[valid-type]
        bus.handle(queue, message)(handler)
        return answer

    return register_answer
