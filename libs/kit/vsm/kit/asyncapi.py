"""A service's AsyncAPI 3.0 document, built from its `Interface`: every channel it sends to
or receives from, with the AMQP bindings, and every message as the CloudEvents envelope of its
body. Pure: data in, a JSON-ready document out."""

from __future__ import annotations

import re
from typing import Any

from pydantic.json_schema import models_json_schema

from vsm.contract import topology
from vsm.contract.envelope import CONTENT_TYPE, typed_envelope
from vsm.contract.errors import ErrorReply
from vsm.contract.message import Message
from vsm.kit.interface import Interface, Use

__all__ = ["AMQP", "REF", "document"]

AMQP = "0.3.0"
REF = "#/components/schemas/{model}"


def document(interface: Interface, *, title: str, version: str, description: str) -> dict[str, Any]:
    uses = interface.uses
    every = _messages(uses)
    payloads, schemas = _schemas(every)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for use in uses:
        channel = _channel(use)
        channel["messages"].update(channels.get(use.channel, {}).get("messages", {}))
        channels[use.channel] = channel
        operations[f"{use.action}.{use.channel}"] = _operation(use)
        replies = _replies(use)
        if replies:
            channels[f"{use.channel}.reply"] = {
                "address": None,
                "description": "The direct reply-to of the request (`reply_to`).",
                "messages": {_key(m): _message_ref(m) for m in replies},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version, "description": description},
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "broker": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ (`AMQP_URL`); `VSM_NAMESPACE=x` prefixes every "
                "exchange and queue name with `x.`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {_key(m): _message(m, payloads[m]) for m in every},
            "schemas": schemas,
        },
    }


def _messages(uses: list[Use]) -> list[type[Message]]:
    found: dict[str, type[Message]] = {}
    for use in uses:
        found.update(use.messages)
        found.update({m.TYPE: m for m in _replies(use)})
    names: dict[str, str] = {}
    for message_type, model in found.items():
        other = names.setdefault(model.__name__, message_type)
        if other != message_type:
            raise ValueError(f"{model.__name__} names both {other} and {message_type}")
    return sorted(found.values(), key=lambda m: m.__name__)


def _replies(use: Use) -> list[type[Message]]:
    if not use.replies:
        return []
    return sorted({*use.replies.values(), ErrorReply}, key=lambda m: m.__name__)


def _schemas(
    messages: list[type[Message]],
) -> tuple[dict[type[Message], dict[str, Any]], dict[str, Any]]:
    models = [(typed_envelope(m), "validation") for m in messages]
    refs, defs = models_json_schema(models, ref_template=REF)  # type: ignore[arg-type]
    payloads = {m: refs[(typed_envelope(m), "validation")] for m in messages}
    return payloads, _asyncapi_schema(dict(sorted(defs.get("$defs", {}).items())))


def _asyncapi_schema(value: Any) -> Any:
    """Pydantic writes an OpenAPI discriminator (`{"propertyName": ..., "mapping": ...}`);
    an AsyncAPI schema names the property alone."""
    if isinstance(value, list):
        return [_asyncapi_schema(item) for item in value]
    if not isinstance(value, dict):
        return value
    found = {key: _asyncapi_schema(item) for key, item in value.items()}
    discriminator = found.get("discriminator")
    if isinstance(discriminator, dict):
        found["discriminator"] = discriminator["propertyName"]
    return found


def _key(message: type[Message]) -> str:
    return message.__name__


def _message_ref(message: type[Message]) -> dict[str, str]:
    return {"$ref": f"#/components/messages/{_key(message)}"}


def _message(message: type[Message], payload: dict[str, Any]) -> dict[str, Any]:
    summary = (message.__doc__ or "").strip().split("\n\n")[0]
    return {
        "name": message.TYPE,
        "title": message.__name__,
        "summary": " ".join(summary.split()),
        "contentType": CONTENT_TYPE,
        "payload": payload,
        "correlationId": {"location": "$message.header#/correlation_id"},
        "bindings": {"amqp": {"messageType": message.TYPE, "bindingVersion": AMQP}},
    }


def _channel(use: Use) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "description": use.description,
        "messages": {_key(m): _message_ref(m) for m in use.messages.values()},
    }
    if use.queue is not None:
        queue = use.queue
        channel["address"] = queue.name
        bound = ", ".join(
            f"`{b.exchange.name}`" + (f" `{b.routing_key}`" if b.routing_key else "")
            for b in queue.bindings
        )
        if bound:
            channel["description"] = f"{use.description} Bound to {bound}."
            channel["x-vsm-bindings"] = [
                {"exchange": b.exchange.name, "routingKey": b.routing_key} for b in queue.bindings
            ]
        amqp = {
            "is": "queue",
            "queue": {"name": queue.name, "durable": True, "exclusive": False, "autoDelete": False},
        }
    else:
        assert use.exchange is not None
        exchange = use.exchange
        channel["address"] = use.routing_key or exchange.name
        if use.into is not None:
            into = use.into
            channel["description"] += f" Bound into `{into.exchange.name}` `{into.routing_key}`."
            channel["x-vsm-bindings"] = [
                {"exchange": into.exchange.name, "routingKey": into.routing_key}
            ]
        amqp = {
            "is": "routingKey",
            "exchange": {
                "name": exchange.name,
                "type": exchange.type,
                "durable": True,
                "autoDelete": False,
            },
        }
    channel["bindings"] = {"amqp": {**amqp, "bindingVersion": AMQP}}
    parameters = re.findall(r"\{(\w+)\}", channel["address"])
    if parameters:
        channel["parameters"] = {name: {"description": f"The {name}."} for name in parameters}
    return channel


def _operation(use: Use) -> dict[str, Any]:
    refs = [{"$ref": f"#/channels/{use.channel}/messages/{_key(m)}"} for m in use.messages.values()]
    operation: dict[str, Any] = {
        "action": use.action,
        "channel": {"$ref": f"#/channels/{use.channel}"},
        "summary": _summary(use),
        "messages": refs,
    }
    if use.action == "receive":
        operation["bindings"] = {"amqp": {"ack": True, "bindingVersion": AMQP}}
    else:
        binding: dict[str, Any] = {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP}
        if use.routing_key:
            binding["cc"] = [use.routing_key]
        operation["bindings"] = {"amqp": binding}
    replies = _replies(use)
    if replies:
        reply = f"{use.channel}.reply"
        operation["reply"] = {
            "address": {"location": "$message.header#/reply_to"},
            "channel": {"$ref": f"#/channels/{reply}"},
            "messages": [{"$ref": f"#/channels/{reply}/messages/{_key(m)}"} for m in replies],
        }
    return operation


def _summary(use: Use) -> str:
    names = ", ".join(sorted(m.__name__ for m in use.messages.values()))
    if use.queue is not None and use.action == "send":
        return f"Publish {names} straight to {use.queue.name}."
    if use.queue is not None:
        return f"Consume {names} from {use.queue.name}."
    assert use.exchange is not None
    where = use.exchange.name + (f" with key {use.routing_key}" if use.routing_key else "")
    if use.exchange == topology.REQUESTS:
        return f"Ask with {names} on {where}, and wait for the answer."
    return f"Publish {names} on {where}."
