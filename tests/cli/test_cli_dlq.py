"""`vsm dlq` against a real dead-letter queue holding a real dead letter.

The probe publishes a malformed message (not JSON) to `vsm.telegram`, as a broken webhook
relay would; telegram-gateway's consumer refuses it and the kit parks it, with its reason,
in `vsm.telegram.commands.dlq`. The CLI then lists, shows, requeues and discards it.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
import yaml

from scripts.localrun import LocalSystem
from tests.support.cli import row_matches, vsm
from tests.support.polling import eventually
from tests.support.probe import Probe, open_probe
from vsm.contract import telegram

pytestmark = pytest.mark.integration

QUEUE = telegram.TELEGRAM_COMMANDS.dead_letter_queue
EXCHANGE = "vsm.telegram"
KEY = "update"


@pytest.fixture
async def probe(amqp_url: str, cli_system: LocalSystem) -> AsyncIterator[Probe]:
    async with open_probe(amqp_url, cli_system.env["VSM_NAMESPACE"]) as client:
        yield client


async def malformed(probe: Probe, message_id: str) -> bytes:
    """Publish a body that is not JSON, with a message id an operator can name."""
    body = b'{"update_id": 1, "message": ' + message_id.encode()
    exchange = await probe.channel.get_exchange(probe.namespace.name(EXCHANGE))
    message = aio_pika.Message(body, message_id=message_id, content_type="application/json")
    await exchange.publish(message, routing_key=KEY)
    return body


def shown(url: str, *args: str) -> dict[str, Any]:
    answered = vsm("dlq", "show", QUEUE, "--latest", "50", "-o", "json", *args, url=url)
    assert answered.returncode == 0, answered.stderr
    found: dict[str, Any] = json.loads(answered.stdout)
    return found


def ids(found: dict[str, Any]) -> set[str]:
    return {letter["message_id"] for letter in found["latest"]}


async def parked(url: str, message_id: str) -> dict[str, Any]:
    async def letter() -> dict[str, Any] | None:
        found = await asyncio.to_thread(shown, url)
        return next((x for x in found["latest"] if x["message_id"] == message_id), None)

    return await eventually(letter, timeout=30.0, what=f"{message_id} in {QUEUE}")


async def test_list_show_requeue_and_discard_a_real_dead_letter(url: str, probe: Probe) -> None:
    message_id = f"cli-dlq-{secrets.token_hex(6)}"
    observer = await probe.bind_queue(f"cli-dlq-{secrets.token_hex(4)}", EXCHANGE, KEY)
    body = await malformed(probe, message_id)
    await probe.get_matching(observer, lambda m: m.message_id == message_id)
    letter = await parked(url, message_id)
    assert letter["reason"] == "malformed_json"
    assert (letter["exchange"], letter["routing_key"]) == (EXCHANGE, KEY)
    assert letter["requeueable"] is True

    listed = vsm("dlq", "list", url=url)
    assert listed.returncode == 0, listed.stderr
    assert row_matches(rf"{re.escape(QUEUE)} +[1-9]\d*", listed.stdout), listed.stdout
    assert row_matches(r"\d+ dead letters", listed.stdout)

    table = vsm("dlq", "show", QUEUE, url=url)
    assert table.returncode == 0, table.stderr
    row = rf"{message_id} +malformed_json +{EXCHANGE} +{KEY} +yes"
    assert row_matches(row, table.stdout), table.stdout

    requeued = vsm("dlq", "requeue", QUEUE, message_id, url=url)
    assert requeued.returncode == 0, requeued.stderr
    assert requeued.stdout == f"requeued {message_id} to {EXCHANGE} {KEY}\n"
    again = await probe.get_matching(observer, lambda m: m.message_id == message_id)
    assert again.body == body  # sent again where it was going, as it was
    await parked(url, message_id)  # still not JSON: the consumer parks it once more

    discarded = vsm("dlq", "discard", QUEUE, message_id, url=url)
    assert discarded.returncode == 0, discarded.stderr
    assert discarded.stdout == f"discarded {message_id} (malformed_json) from {QUEUE}\n"
    assert message_id not in ids(shown(url))
    gone = vsm("dlq", "discard", QUEUE, message_id, url=url)
    assert gone.returncode == 1
    assert "404" in gone.stderr
    assert message_id in gone.stderr


async def test_json_yaml_and_wide(url: str, probe: Probe) -> None:
    message_id = f"cli-dlq-{secrets.token_hex(6)}"
    await malformed(probe, message_id)
    await parked(url, message_id)

    counts = json.loads(vsm("dlq", "list", "-o", "json", url=url).stdout)
    assert {"queue": QUEUE, "count": counts_of(counts)} in counts
    assert counts_of(counts) >= 1
    assert yaml.safe_load(vsm("dlq", "list", "-o", "yaml", url=url).stdout) == counts
    wide = vsm("dlq", "list", "-o", "wide", url=url)
    assert wide.returncode == 0, wide.stderr
    newest = shown(url, "--latest", "1")["latest"][0]
    line = rf"{re.escape(QUEUE)} +[1-9]\d* +{newest['message_id']} +{newest['reason']}"
    assert row_matches(line, wide.stdout), wide.stdout

    as_yaml = yaml.safe_load(
        vsm("dlq", "show", QUEUE, "--latest", "50", "-o", "yaml", url=url).stdout
    )
    assert message_id in ids(as_yaml)
    detailed = vsm("dlq", "show", QUEUE, "--latest", "50", "-o", "wide", url=url).stdout
    [row] = [line for line in detailed.splitlines() if line.strip().startswith(message_id)]
    assert "telegram-gateway" in row  # dead-lettered by
    assert '{"update_id": 1, "message": cli-dlq-' in row  # the start of the body
    vsm("dlq", "discard", QUEUE, message_id, url=url)


def counts_of(counts: list[dict[str, Any]]) -> int:
    return int(next(q["count"] for q in counts if q["queue"] == QUEUE))


def test_a_queue_the_system_does_not_have_is_refused(url: str) -> None:
    refused = vsm("dlq", "show", "vsm.anything.else", url=url)
    assert refused.returncode == 1
    assert "404" in refused.stderr
    assert "not a dead-letter queue of vsm" in refused.stderr
