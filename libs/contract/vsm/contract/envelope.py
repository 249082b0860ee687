"""The one envelope every message travels in: CloudEvents attributes plus the VSM ones.

On the wire it is a CloudEvents 1.0 event in structured mode (`CONTENT_TYPE`). Extension
attributes are named as CloudEvents requires, lower-case letters and digits: `vsmid`,
`correlationid`, `causationid`, `priority`, `traceparent`, `tracestate`; the model keeps
Python names (`vsm_id`, ...) and reads the names of release 0.1 (`vsm_id`,
`correlation_id`, `causation_id`) too, so that what that release published (a message
still queued, an event log's history) is read after an upgrade. Attributes without a value
are left out, as CloudEvents asks.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vsm.contract.message import Message, model_for

__all__ = ["CONTENT_TYPE", "TRACEPARENT", "Envelope", "VsmId", "typed_envelope"]

VsmId = Annotated[
    str,
    Field(
        pattern=r"^root(/[a-z0-9][a-z0-9-]{0,39}){0,5}$",
        max_length=256,
        description="Path of the viable system, e.g. `root/logistics` (depth 0..5).",
    ),
]
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"

BodyT = TypeVar("BodyT", bound=Message)

CONTENT_TYPE = "application/cloudevents+json"
"""The AMQP content type of every envelope: the CloudEvents JSON format, structured mode."""


def _absent(value: object) -> bool:
    return value is None


class Envelope(BaseModel, Generic[BodyT]):
    """CloudEvents 1.0 structured-mode event whose `data` is a typed, versioned body."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,  # the names of 0.1, still read
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=128)
    time: AwareDatetime
    subject: str | None = Field(default=None, max_length=256, exclude_if=_absent)
    datacontenttype: Literal["application/json"] = "application/json"
    vsm_id: VsmId = Field(default="root", alias="vsmid", title="Viable system")
    correlation_id: str | None = Field(
        default=None,
        max_length=128,
        alias="correlationid",
        exclude_if=_absent,
        title="Correlation id",
        description="The conversation: inherited from the cause, else the message's own id.",
    )
    causation_id: str | None = Field(
        default=None,
        max_length=128,
        alias="causationid",
        exclude_if=_absent,
        title="Causation id",
        description="The id of the message that caused this one.",
    )
    priority: int = Field(default=4, ge=0, le=9)
    traceparent: str | None = Field(default=None, pattern=TRACEPARENT, exclude_if=_absent)
    tracestate: str | None = Field(default=None, max_length=512, exclude_if=_absent)
    data: BodyT

    @model_validator(mode="before")
    @classmethod
    def _resolve_body(cls, value: Any) -> Any:
        """Validate `data` against the model its `type` names, so unions pick the right body;
        a body given as a model must be the one its `type` names. One validator, no second
        pass over the envelope: it runs for every message sent and received."""
        if not isinstance(value, dict):
            return value
        data, message_type = value.get("data"), value.get("type")
        if isinstance(data, Message):
            if message_type != data.TYPE:
                raise ValueError(f"type {message_type!r} does not match body {data.TYPE!r}")
            return value
        if not isinstance(data, dict) or not isinstance(message_type, str):
            return value
        model = model_for(message_type)
        if model is None:
            raise PydanticCustomError(
                "unknown_message_type",
                "unknown message type {message_type!r}",
                {"message_type": message_type},
            )
        try:
            body = model.model_validate(data)
        except ValidationError as error:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    {**problem, "loc": ("data", *problem["loc"])}  # type: ignore[typeddict-unknown-key]
                    for problem in error.errors(include_url=False)
                ],
            ) from error
        return {**value, "data": body}

    @classmethod
    def wrap(
        cls,
        body: BodyT,
        *,
        source: str,
        cause: Envelope[Any] | None = None,
        vsm_id: str | None = None,
        subject: str | None = None,
        correlation_id: str | None = None,
        priority: int | None = None,
        traceparent: str | None = None,
    ) -> Envelope[BodyT]:
        """A new envelope for `body`; with a `cause`, it joins the cause's chain and system."""
        message_id = str(uuid.uuid4())
        envelope: Envelope[BodyT] = typed_envelope(type(body))(
            id=message_id,
            source=source,
            type=body.TYPE,
            time=datetime.now(UTC),
            subject=subject,
            vsm_id=vsm_id or (cause.vsm_id if cause else "root"),
            correlation_id=correlation_id
            or (cause.correlation_id or cause.id if cause else message_id),
            causation_id=cause.id if cause else None,
            priority=priority if priority is not None else (cause.priority if cause else 4),
            traceparent=traceparent or (cause.traceparent if cause else None),
            data=body,
        )
        return envelope


@functools.cache
def typed_envelope(body_type: type[Message]) -> Any:
    """`Envelope[body_type]`, held for good: pydantic keeps parametrized models only weakly,
    so one that no live envelope refers to is collected and built again (about a millisecond
    of CPU each time) on its next use. Message types are a finite set."""
    return Envelope[body_type]  # type: ignore[valid-type]
