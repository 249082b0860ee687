"""The envelope: typed bodies, the causation chain, and what it refuses."""

from __future__ import annotations

import json
import re
from typing import ClassVar

import pytest
from pydantic import TypeAdapter, ValidationError

from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.health import Ping
from vsm.contract.message import Message, message_types

PAIN = AlgedonicSignal(kind="pain", intensity=0.8, origin="operations/a1", reason="error_burst")


def test_wrap_starts_a_chain_and_a_caused_message_joins_it() -> None:
    first = Envelope.wrap(PAIN, source="vsm/operations")
    second = Envelope.wrap(Ping(), source="vsm/queen", cause=first)

    assert first.type == "vsm.algedonic.signal.v1"
    assert first.correlation_id == first.id
    assert first.causation_id is None
    assert second.causation_id == first.id
    assert second.correlation_id == first.id
    assert second.vsm_id == first.vsm_id == "root"


def test_round_trip_through_json_picks_the_body_model_by_type() -> None:
    sent = Envelope.wrap(PAIN, source="vsm/test", vsm_id="root/logistics")
    received = TypeAdapter(Envelope[Message]).validate_json(sent.model_dump_json())

    assert isinstance(received.data, AlgedonicSignal)
    assert received == sent


def test_a_union_of_bodies_is_resolved_by_the_envelope_type() -> None:
    sent = Envelope.wrap(Ping(), source="vsm/test")
    received = TypeAdapter(Envelope[AlgedonicSignal | Ping]).validate_json(sent.model_dump_json())
    assert isinstance(received.data, Ping)


def test_the_wire_names_are_cloudevents_attribute_names() -> None:
    cause = Envelope.wrap(Ping(), source="vsm/test")
    sent = Envelope.wrap(PAIN, source="vsm/test", cause=cause, vsm_id="root/logistics")
    wire = json.loads(sent.model_dump_json())

    assert all(re.fullmatch(r"[a-z0-9]{1,20}", name) for name in wire)
    assert (wire["vsmid"], wire["causationid"], wire["correlationid"]) == (
        "root/logistics",
        cause.id,
        cause.id,
    )
    assert "subject" not in wire  # no value: left out, not null
    assert "traceparent" not in wire


def test_an_envelope_written_with_the_names_of_0_1_is_still_read() -> None:
    old = {
        "specversion": "1.0",
        "id": "m-2",
        "source": "vsm/operations",
        "type": PAIN.TYPE,
        "time": "2026-01-01T00:00:00Z",
        "subject": None,
        "datacontenttype": "application/json",
        "vsm_id": "root/logistics",
        "correlation_id": "m-1",
        "causation_id": "m-1",
        "priority": 4,
        "traceparent": None,
        "tracestate": None,
        "data": PAIN.model_dump(mode="json"),
    }
    received = TypeAdapter(Envelope[Message]).validate_json(json.dumps(old))

    assert (received.vsm_id, received.correlation_id, received.causation_id) == (
        "root/logistics",
        "m-1",
        "m-1",
    )
    assert "vsm_id" not in json.loads(received.model_dump_json())


def raw(**overrides: object) -> dict[str, object]:
    envelope = Envelope.wrap(PAIN, source="vsm/test").model_dump(mode="json")
    return {**envelope, **overrides}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"type": "vsm.unheard-of.v1"}, "unknown_message_type"),
        ({"data": {**PAIN.model_dump(), "intensity": 1.5}}, "less_than_equal"),
        ({"vsmid": "root/../etc"}, "string_pattern_mismatch"),
        ({"vsmid": "/".join(["root"] + ["a"] * 6)}, "string_pattern_mismatch"),
        ({"priority": 10}, "less_than_equal"),
        ({"time": "2026-01-01T00:00:00"}, "timezone_aware"),
        ({"unexpected": 1}, "extra_forbidden"),
    ],
)
def test_invalid_envelopes_are_refused_with_the_reason(
    overrides: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Envelope[AlgedonicSignal].model_validate(raw(**overrides))
    assert problem in {error["type"] for error in refused.value.errors()}


def test_a_body_of_another_type_than_expected_is_refused() -> None:
    ping = Envelope.wrap(Ping(), source="vsm/test").model_dump(mode="json")
    with pytest.raises(ValidationError):
        Envelope[AlgedonicSignal].model_validate(ping)


def test_a_body_model_must_be_the_one_its_type_names() -> None:
    sent = Envelope.wrap(PAIN, source="vsm/test")
    with pytest.raises(ValidationError, match="does not match body"):
        Envelope[Message](**{**dict(sent), "type": Ping.TYPE})


def test_two_models_cannot_claim_the_same_type() -> None:
    with pytest.raises(TypeError, match="is taken"):

        class Impostor(Message):
            TYPE: ClassVar[str] = Ping.TYPE

    assert message_types()[Ping.TYPE] is Ping
