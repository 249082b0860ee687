"""A service whose one handler always fails: the kit's failure path, run as a real process.

`python -m tests.faults.failing_service` (AMQP_URL, VSM_NAMESPACE, HTTP_PORT from the
environment). Every `Ping` on `vsm.faults.failing` (a FastStream subscriber) and on
`vsm.faults.failing-direct` (consumed by the kit's `DirectConsumers`, as S1 agents' queues
are) raises an unexpected error, so what happens next is the kit's and the broker's doing:
the ack policy, the redelivery, the delivery limit and the dead-letter queue. The kit logs
each failure (`handler_failed`, with the message id and its delivery count), which is what
the test reads.
"""

from __future__ import annotations

from litestar import Litestar

from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping
from vsm.contract.message import Message
from vsm.contract.topology import Queue
from vsm.kit.consumer import Delivery
from vsm.kit.runtime import Runtime, serve
from vsm.kit.settings import ServiceSettings

FAILING = Queue("vsm.faults.failing", (), "Every message here fails its handler.")
FAILING_DIRECT = Queue("vsm.faults.failing-direct", (), "The same, consumed directly.")


class HandlerAlwaysFails(RuntimeError):
    pass


def create_app(settings: ServiceSettings) -> Litestar:
    runtime = Runtime("faults", settings)

    @runtime.bus.handle(FAILING, Ping)
    async def always_fails(envelope: Envelope[Ping]) -> None:
        raise HandlerAlwaysFails(f"{envelope.id} cannot be handled, ever")

    async def fails_too(envelope: Envelope[Message], _: Delivery) -> None:
        raise HandlerAlwaysFails(f"{envelope.id} cannot be handled, ever")

    async def consume_directly() -> None:
        await runtime.bus.declare(FAILING_DIRECT)
        await runtime.direct.consume(FAILING_DIRECT, fails_too)

    runtime.on_start(consume_directly)
    return runtime.http_app()


if __name__ == "__main__":
    settings = ServiceSettings()
    serve(create_app(settings), settings)
