"""Taking a work item off `vsm.system2.work`: the bytes become a `WorkItem` envelope, or an
`Unprocessable` with the same reasons the kit gives everywhere else."""

from __future__ import annotations

import json
from typing import Any, cast

from pydantic import TypeAdapter, ValidationError

from vsm.contract.coordination import WorkItem
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.message import Message
from vsm.contract.operations import MAX_PAYLOAD_BYTES
from vsm.kit.deadletter import verdict

ANY_ENVELOPE: TypeAdapter[Envelope[Message]] = TypeAdapter(Envelope[Message])


def work_item(body: bytes) -> Envelope[WorkItem]:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise Unprocessable(
            "payload_too_large", f"{len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )
    try:
        raw: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise Unprocessable("malformed_json", str(error)[:300] or "nested too deep") from error
    try:
        envelope = ANY_ENVELOPE.validate_python(raw)
    except ValidationError as error:
        bad = verdict(error)
        raise bad or Unprocessable("invalid_schema", str(error)) from error
    if not isinstance(envelope.data, WorkItem):
        raise Unprocessable("unexpected_type", f"no handler here for {envelope.type!r}")
    return cast(Envelope[WorkItem], envelope)
