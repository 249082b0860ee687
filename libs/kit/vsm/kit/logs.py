"""Structured JSON logs that carry the current trace and span ids."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

__all__ = ["configure_logging"]


def _trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event["trace_id"] = format(span.trace_id, "032x")
        event["span_id"] = format(span.span_id, "016x")
    return event


_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _agent_fields(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The fields an SDK agent's log binds (`ctx.log.info("fetched", rows=3)`: its id, type,
    command, and the caller's own), carried by its standard records under `vsm.agent.`."""
    record = event.get("_record")
    if isinstance(record, logging.LogRecord) and record.name.startswith("vsm.agent."):
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS:
                event.setdefault(key, value)
    return event


def configure_logging(service: str, level: str, fmt: str) -> None:
    """Route structlog and the standard library (FastStream, uvicorn) through one renderer."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _trace_ids,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _agent_fields],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # JSON carries an exception's traceback as text under "exception" (the
                # console renderer draws it itself).
                *([structlog.processors.format_exc_info] if fmt == "json" else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, and some URLs carry a secret (the Telegram Bot
    # API puts the bot token in the path): its request lines are not worth that risk.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)
