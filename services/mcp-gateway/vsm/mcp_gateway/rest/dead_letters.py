"""REST for the dead-letter queues: how many each holds, the latest with their reason, and
one requeued (to where it was going) or discarded.

Only the dead-letter queues the contract names for every deployment can be read (a caller
never names an arbitrary queue): each shared quorum queue's `<queue>.dlq` and the agents'
shared one. Reading goes through the kit (`vsm.kit.dead_letters`).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.params import FromPath, QueryParameter
from prometheus_client import CollectorRegistry, Gauge
from pydantic import BaseModel

from vsm.contract import topology
from vsm.contract.operations import AGENT_DEAD_LETTERS
from vsm.contract.telegram import TELEGRAM_COMMANDS
from vsm.kit.dead_letters import (
    DeadLetter,
    DeadLetters,
    NoSuchDeadLetter,
    NotRequeueable,
    requeueable,
)
from vsm.kit.schedule import Every
from vsm.mcp_gateway.rest.common import CONFLICT, EDGE, NOT_FOUND, PARAMS, RestOperation, errors

QUEUES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *(q.dead_letter_queue for q in topology.SHARED_QUEUES if q.kind == "quorum"),
            TELEGRAM_COMMANDS.dead_letter_queue,
            AGENT_DEAD_LETTERS,
        ]
    )
)
"""The dead-letter queues every deployment has."""
MAX_LATEST = 50


class QueueCount(BaseModel):
    queue: str
    count: int | None
    """None when the queue does not exist (yet) on the broker."""


class DeadLetterView(BaseModel):
    message_id: str | None
    reason: str
    detail: str
    exchange: str
    routing_key: str
    dead_lettered_by: str | None
    message_type: str | None
    size: int
    preview: str
    requeueable: bool


class DeadLetterQueue(BaseModel):
    queue: str
    count: int | None
    latest: list[DeadLetterView]


def view(letter: DeadLetter) -> DeadLetterView:
    return DeadLetterView(**vars(letter), requeueable=requeueable(letter))


def known(queue: str) -> str:
    if queue in QUEUES:
        return queue
    raise HTTPException(status_code=404, detail=f"{queue!r} is not a dead-letter queue of vsm")


def fill_watch(
    dead_letters: DeadLetters,
    cap: topology.DeadLetterCap,
    registry: CollectorRegistry,
    interval_s: float,
) -> Every:
    """Read every dead-letter queue's count into `vsm_dead_letter_queue_messages{queue}` (a
    closed set: `QUEUES`) beside its cap, for the `VsmDeadLetterQueueFull` alert."""
    held = Gauge(
        "vsm_dead_letter_queue_messages",
        "Messages held by each dead-letter queue (read periodically; past its cap the broker "
        "refuses new dead letters).",
        ["queue"],
        registry=registry,
    )
    limit = Gauge(
        "vsm_dead_letter_queue_limit",
        "Messages a dead-letter queue holds before new ones are refused "
        "(VSM_DEAD_LETTER_MAX_MESSAGES).",
        registry=registry,
    )
    limit.set(cap.max_messages)

    async def read() -> None:
        for queue, count in (await dead_letters.counts(list(QUEUES))).items():
            if count is not None:
                held.labels(queue).set(count)

    return Every("dead_letter_fill", interval_s, read)


def dependencies(dead_letters: DeadLetters) -> dict[str, Provide]:
    async def provide_dead_letters() -> DeadLetters:
        return dead_letters

    return {"dead_letters": Provide(provide_dead_letters)}


DeadLettersDep = NamedDependency[DeadLetters]
MESSAGE_ID = 128
LatestParam = Annotated[int, QueryParameter(name="latest", ge=0, le=MAX_LATEST)]


class DeadLettersController(Controller):
    path = "/api/vsm/dead-letters"
    tags = ["dead letters"]

    @get("/", responses=EDGE | errors(502))
    async def queues(self, dead_letters: DeadLettersDep) -> list[QueueCount]:
        """Every dead-letter queue of the system with the messages it holds."""
        counts = await dead_letters.counts(list(QUEUES))
        return [QueueCount(queue=q, count=c) for q, c in counts.items()]

    @get("/{queue:str}", responses=EDGE | PARAMS | NOT_FOUND, operation_class=RestOperation)
    async def queue(
        self, dead_letters: DeadLettersDep, queue: FromPath[str], latest: LatestParam = 10
    ) -> DeadLetterQueue:
        """The queue's count and its latest dead letters (newest first) with their reason."""
        name = known(queue)
        count = await dead_letters.count(name)
        letters = await dead_letters.peek(name, latest) if count else []
        return DeadLetterQueue(queue=name, count=count, latest=[view(x) for x in letters])

    @post(
        "/{queue:str}/{message_id:str}/requeue",
        status_code=200,
        responses=EDGE | NOT_FOUND | CONFLICT,
        operation_class=RestOperation,
    )
    async def requeue(
        self, dead_letters: DeadLettersDep, queue: FromPath[str], message_id: FromPath[str]
    ) -> DeadLetterView:
        """Publish the dead letter again to its original exchange and routing key (signed
        anew); 409 for a signature or freshness refusal, which is never requeued."""
        try:
            return view(await dead_letters.requeue(known(queue), message_id[:MESSAGE_ID]))
        except NoSuchDeadLetter as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
        except NotRequeueable as error:
            raise HTTPException(status_code=409, detail=str(error)) from error

    @delete(
        "/{queue:str}/{message_id:str}",
        status_code=200,
        responses=EDGE | NOT_FOUND,
        operation_class=RestOperation,
    )
    async def discard(
        self, dead_letters: DeadLettersDep, queue: FromPath[str], message_id: FromPath[str]
    ) -> DeadLetterView:
        """Drop the dead letter for good."""
        try:
            return view(await dead_letters.discard(known(queue), message_id[:MESSAGE_ID]))
        except NoSuchDeadLetter as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
