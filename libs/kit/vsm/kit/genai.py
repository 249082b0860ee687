"""Spans of LLM calls, named as OpenTelemetry's generative-AI conventions name them: one
client span per call to the Messages API (`chat <model>`), with the model asked for and the
one that answered, the reply's id and stop reason, and the tokens it took in and gave out.

Made by the tracer provider the service sets when tracing is on; without it, nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry import trace

__all__ = ["TRACER", "Answered", "llm_call"]

TRACER = trace.get_tracer("vsm.kit.genai")

Answered = Callable[[Any], None]
"""Called with the API's reply (an `anthropic.types.Message`) to record what it says."""


@contextlib.contextmanager
def llm_call(model: str, max_tokens: int | None = None) -> Iterator[Answered]:
    """A span around one Messages API call; an error leaves its type on the span."""
    attributes: dict[str, str | int] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "anthropic",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": model,
    }
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    with TRACER.start_as_current_span(
        f"chat {model}", kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        try:
            yield lambda reply: _answered(span, reply)
        except Exception as error:
            span.set_attribute("error.type", type(error).__qualname__)
            raise


def _answered(span: trace.Span, reply: Any) -> None:
    usage = getattr(reply, "usage", None)
    found = {
        "gen_ai.response.id": getattr(reply, "id", None),
        "gen_ai.response.model": getattr(reply, "model", None),
        "gen_ai.usage.input_tokens": getattr(usage, "input_tokens", None),
        "gen_ai.usage.output_tokens": getattr(usage, "output_tokens", None),
    }
    span.set_attributes({key: value for key, value in found.items() if value is not None})
    stop = getattr(reply, "stop_reason", None)
    if stop:
        span.set_attribute("gen_ai.response.finish_reasons", [str(stop)])
