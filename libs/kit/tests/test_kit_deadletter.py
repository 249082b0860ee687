"""Why a message is dead-lettered: the verdict on what went wrong."""

from __future__ import annotations

import json

import pytest
from faststream.exceptions import SubscriberNotFound
from faststream.message import StreamMessage
from pydantic import ValidationError

from vsm.contract.envelope import Envelope
from vsm.contract.errors import Unprocessable
from vsm.contract.health import HealthReport
from vsm.kit.deadletter import decode_json, verdict
from vsm.kit.names import Namespace


def validation_error(data: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Envelope[HealthReport].model_validate(data)
    return caught.value


def test_business_refusals_keep_their_own_reason() -> None:
    refusal = Unprocessable("payload_too_large", "2 MiB")
    assert verdict(refusal) is refusal


def test_schema_errors_name_the_fields() -> None:
    bad = verdict(validation_error({"type": HealthReport.TYPE, "data": {"service": "x"}}))
    assert bad is not None
    assert bad.reason == "invalid_schema"
    assert "data.instance" in bad.detail


def test_unknown_types_are_told_apart_from_bad_schemas() -> None:
    bad = verdict(validation_error({"type": "vsm.nonsense.v1", "data": {}}))
    assert bad is not None
    assert bad.reason == "unknown_type"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (json.dumps({"type": "vsm.nonsense.v1"}).encode(), "unknown_type"),
        (json.dumps({"type": HealthReport.TYPE}).encode(), "unexpected_type"),
        (json.dumps({"no": "type"}).encode(), "invalid_schema"),
        (b"[1, 2]", "invalid_schema"),
    ],
)
def test_a_message_no_handler_takes_is_classified_by_its_type(body: bytes, reason: str) -> None:
    bad = verdict(SubscriberNotFound(), body)
    assert bad is not None
    assert bad.reason == reason


def test_other_errors_are_not_the_messages_fault() -> None:
    assert verdict(ConnectionError("broker away")) is None


def test_namespaces_prefix_canonical_names_and_back() -> None:
    ns = Namespace("t1")
    assert ns.name("vsm.policy") == "t1.vsm.policy"
    assert ns.canonical("t1.vsm.policy") == "vsm.policy"
    assert Namespace().name("vsm.policy") == "vsm.policy"


@pytest.mark.parametrize(
    "body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000], ids=["arrays", "objects"]
)
async def test_json_nested_too_deeply_is_malformed_not_a_handler_failure(body: bytes) -> None:
    """Else the parser's RecursionError counts as a handler failure: redelivered up to the
    delivery limit and parked without a reason."""
    with pytest.raises(Unprocessable) as caught:
        await decode_json(StreamMessage(raw_message=None, body=body))

    assert caught.value.reason == "malformed_json"
