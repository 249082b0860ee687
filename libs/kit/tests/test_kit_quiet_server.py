"""The services' HTTP server: uvicorn's, its clock woken once a second rather than ten times,
and at once by SIGTERM; responses still carry a `Date` header."""

from __future__ import annotations

import asyncio
import signal

import uvicorn
from litestar import Litestar, get

from vsm.kit.runtime import QuietServer


@get("/ping", sync_to_thread=False)
def ping() -> str:
    return "pong"


class Sleepy(QuietServer):
    TICK_S = 3600.0
    """No tick would end the test: only the signal's wake-up can."""


async def test_sigterm_wakes_the_server_at_once_and_responses_keep_their_date() -> None:
    config = uvicorn.Config(Litestar([ping]), host="127.0.0.1", port=0, log_config=None)
    config.load()
    sock = config.bind_socket()
    port = sock.getsockname()[1]
    server = Sleepy(config)
    server.lifespan = config.lifespan_class(config)
    heard: list[int] = []
    # uvicorn raises the signal again once stopped: heard here rather than ending pytest.
    before = signal.signal(signal.SIGTERM, lambda sig, _: heard.append(sig))
    try:
        with server.capture_signals():  # as `serve` does, its steps in the open
            await server.startup(sockets=[sock])
            waiting = asyncio.create_task(server.main_loop())
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = (await reader.read()).decode()
            writer.close()
            signal.raise_signal(signal.SIGTERM)  # uvicorn's handler, then the loop's wake-up
            await waiting
            await server.shutdown(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, before)
    assert answer.startswith("HTTP/1.1 200")
    assert "\r\ndate: " in answer.lower()
    assert server.should_exit
    assert heard == [signal.SIGTERM]
