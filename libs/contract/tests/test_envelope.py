"""The envelope: typed bodies, the causation chain, and what it refuses."""

from __future__ import annotations

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


def raw(**overrides: object) -> dict[str, object]:
    envelope = Envelope.wrap(PAIN, source="vsm/test").model_dump(mode="json")
    return {**envelope, **overrides}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"type": "vsm.unheard-of.v1"}, "unknown_message_type"),
        ({"data": {**PAIN.model_dump(), "intensity": 1.5}}, "less_than_equal"),
        ({"vsm_id": "root/../etc"}, "string_pattern_mismatch"),
        ({"vsm_id": "/".join(["root"] + ["a"] * 6)}, "string_pattern_mismatch"),
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


def test_two_models_cannot_claim_the_same_type() -> None:
    with pytest.raises(TypeError, match="is taken"):

        class Impostor(Message):
            TYPE: ClassVar[str] = Ping.TYPE

    assert message_types()[Ping.TYPE] is Ping
