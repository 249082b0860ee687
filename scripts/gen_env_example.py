"""Write `.env.example`: every setting of every service, its default and one line of meaning.

The names, defaults and which services read a setting come from the services' Settings
classes; the meaning from the field's `description` when it has one, else from MEANINGS.
`tests/cli/test_env_example.py` fails when the file differs from what this writes, or when
a setting has no meaning. `make docs` rewrites it.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, NoDecode

from vsm.kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / ".env.example"
SERVICES = {
    "queen": ("vsm.queen.settings", "S5 policy and identity"),
    "intelligence": ("vsm.intelligence.settings", "S4 environment"),
    "control": ("vsm.control.settings", "S3 control, S3* audit"),
    "coordinator": ("vsm.coordinator.settings", "S2 anti-oscillation"),
    "operations": ("vsm.operations.settings", "S1 operations"),
    "telegram-gateway": ("vsm.telegram_gateway.settings", "the Telegram bot"),
    "mcp-gateway": ("vsm.mcp_gateway.settings", "MCP, REST and the web console"),
}
WIDTH = 92
COMPUTED = {"INSTANCE_ID": "<hostname>-<pid>"}
"""Defaults computed at start-up: shown in the meaning, left empty on the line."""
BARE = re.compile(r"[A-Za-z0-9_./:@,+*<>\[\]-]*")
"""Values written as they are; anything else is single-quoted (python-dotenv's literal)."""

HEADER = """\
# vsm settings. Copy this file to .env and uncomment what you change: `make run` and every
# service read .env from their working directory, and the environment wins over it.
# Each setting: what it means (the services that read it, when not all), then its default.
# OpenTelemetry's own OTEL_* variables are read from the environment (make run passes on
# those of .env). Generated from the services' Settings by scripts/gen_env_example.py
# (make docs); do not edit by hand.
"""

MEANINGS = {
    # Every service
    "AMQP_URL": "The broker; a cluster: its nodes' URLs, comma-separated (a comma in one: %2C).",
    "VSM_NAMESPACE": "Prefix of every exchange and queue name, so several systems share a broker.",
    "HTTP_HOST": "Address of the service's HTTP server (0.0.0.0 in containers).",
    "HTTP_PORT": "Port of the service's HTTP server (make run gives each service its own).",
    "METRICS_PORT": "A second port serving only GET /metrics, without a token (unset: none).",
    "HEALTH_INTERVAL": "Seconds between heartbeats on vsm.health (down after 2.5 of silence).",
    "PREFETCH_COUNT": "Unacknowledged messages per consumer channel.",
    "REQUEST_TIMEOUT_S": "Default deadline of a request/reply, in seconds.",
    "SHUTDOWN_GRACE_S": "How long in-flight work may take after SIGTERM, in seconds.",
    "TRACING": "Deprecated: spans without an exporter; set OTEL_TRACES_EXPORTER instead.",
    "CONNECT_TIMEOUT_S": "How long to wait for each broker node at start-up and per reconnection.",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR.",
    "LOG_FORMAT": "json (one object per line) or console (make run uses console).",
    "INSTANCE_ID": "This instance's name in heartbeats (default: <hostname>-<pid>).",
    "VSM_SIGNING_KEYS": "HMAC keys kid:base64secret,...: the first signs, all verify (empty: off).",
    "VSM_REPLAY_WINDOW_S": "How old a signed message may be, in seconds.",
    "VSM_MAX_CLOCK_SKEW_S": "How far in the future a signed message's time may be, in seconds.",
    "VSM_LOG_KEYS": "Keys retired from live traffic that still verify the event logs' entries.",
    "VSM_LOG_UNSIGNED_HISTORY": "accept: read the unsigned entries from before signing began.",
    "VSM_LOG_SKIP": "Event-log entries the operator disowns, <log>@<offset>,...",
    # queen (S5)
    "ALGEDONIC_HALF_LIFE_S": "Half-life of pain and pleasure, in seconds.",
    "PAIN_THRESHOLD": "Pain that opens an episode (an intervention).",
    "PAIN_RESOLVED_BELOW": "Pain under which the episode closes (below PAIN_THRESHOLD).",
    "PAIN_WINDOW": 'Recent signals for the "mostly pain" trigger.',
    "ESCALATION_DEADLINE_S": "Time to resolve an intervention before each escalation, seconds.",
    "ESCALATION_MAX_LEVELS": "Escalations per intervention.",
    "MONITOR_INTERVAL_S": "Tick of decay, resolution and escalation, in seconds.",
    "VIABILITY_FRESHNESS_S": "Age after which a viability reading counts as unknown, seconds.",
    "VIABILITY_THRESHOLD": "The score at or above which the system is viable.",
    "META_REPORT_INTERVAL_S": "How often each child's viability is reported to its parent.",
    "ANTHROPIC_API_KEY": "Enables the LLM features; without it they answer a clear error.",
    "ANTHROPIC_BASE_URL": "Another Messages API endpoint (unset: the SDK's).",
    "ANTHROPIC_MODEL": "The model for policy synthesis (S5) and explanations (S4).",
    "LLM_TIMEOUT_S": "The Anthropic client's timeout, in seconds.",
    "LLM_MAX_RETRIES": "The Anthropic client's retries.",
    # intelligence (S4)
    "SCAN_INTERVAL": "Seconds between scheduled scans of the environment.",
    "READINESS_INTERVAL": "Seconds between readiness reports to S5.",
    "VARIETY_WINDOW_S": "Sliding window of the variety measure, in seconds.",
    "ANOMALY_ALPHA": "Smoothing of the EWMA baselines of anomaly detection.",
    "ANOMALY_THRESHOLD": "The |z| that opens an anomaly episode.",
    "ANOMALY_WARMUP": "Samples a series needs before it can be anomalous.",
    "META_SYSTEM_THRESHOLD": "Meta-system need score from which a meta-system is recommended.",
    "SERIES_PER_SYSTEM": "Series watched per viable system; the least recently fed is evicted.",
    "S4_RULES": "Standing rules of every S4: a JSON list of {name, when, then} (docs/rules.md).",
    "RULE_MAX_WINDOW": "The longest window a rule may use, in seconds.",
    "RULE_MAX_GROUPS": "The most groups one rule may track.",
    "RULE_TICK": "Seconds between judgements of the rules as time passes.",
    "S4_SOURCES": "Outside sources S4 reads: a JSON list of {name, url, readings, ...}.",
    "EGRESS_ALLOWED_URLS": "JSON list of URL prefixes agents (and S4) may call; empty: none.",
    "EGRESS_ALLOWED_PRIVATE": "JSON list of host:port allowed though private or loopback.",
    "EGRESS_MAX_BODY_BYTES": "Outside responses are read up to this many bytes.",
    "LLM_MAX_PENDING": "Explanations in flight at once; alerts beyond go unexplained.",
    "SCALE_QUEUED_PER_AGENT": "Items waiting per agent of a type above which it is under pressure.",
    "SCALE_SUSTAIN_S": "Pressure held this long proposes more agents of the type, in seconds.",
    "SCALE_CALM_S": "Nothing waiting this long after a scale-up proposes the count before.",
    "SCALE_MAX_STEP": "The most agents one expansive proposal adds.",
    # control (S3)
    "BUDGET_SLOTS": "Concurrency slots of a viable system's budget until one is set.",
    "BUDGET_TOKENS_PER_MIN": "LLM tokens a minute of a viable system's budget until one is set.",
    "BUDGET_MEMORY_MB": "Memory of a viable system's budget until one is set, in MB.",
    "BUDGET_USD_PER_DAY": "A viable system's daily LLM cap until one is set, in USD (unset: none).",
    "AGENT_MEMORY_MB": "Memory S3 books for an agent at spawn, in MB.",
    "HEADROOM_INTERVAL": (
        "Seconds between S3's looks at each system's headroom (reported to S5 when S3 "
        "handled anything since)."
    ),
    "RELEASE_INTERVAL": "How often S3 applies ended cool-downs and lifts expired throttles.",
    "AUDIT_INTERVAL": "Seconds between sporadic S3* audits.",
    "AUDIT_JITTER": "Each sporadic audit comes at the interval plus or minus this share.",
    "AUDIT_SAMPLE": "Agents audited at random per viable system each time.",
    "AUDIT_TIMEOUT_S": "How long an audited agent may take to answer, in seconds.",
    "REGISTRY_RETRY_S": "Seconds between attempts to read the agent registry at start-up.",
    "ADAPTATION_SPAWNS_PER_HOUR": "Agents adaptation may spawn per viable system and hour.",
    "ADAPTATION_RETIREMENTS_PER_HOUR": "Agents adaptation may retire per viable system and hour.",
    "ADAPTATION_POLICIES_PER_HOUR": "Adaptation versions S3 carries out per system and hour.",
    "ISOLATION_PROBE_S": "An isolated agent is readmitted on probation after this, in seconds.",
    # coordinator (S2)
    "STARVATION_S": "An item waiting this long at the front of its lane is served first.",
    "WORK_PREFETCH": "The most work items S2 holds (unacknowledged) at once.",
    "DISPATCH_TIMEOUT_S": "How long a dispatched command may take before its slot is freed.",
    "OSCILLATION_WINDOW_S": "Window in which reversals count as oscillation, in seconds.",
    "OSCILLATION_MAX_REVERSALS": "Reversals within the window that make a unit flapping.",
    "DAMPING_COOLDOWN_S": "How long damping freezes policy-driven changes, in seconds.",
    "OSCILLATION_INTERVAL_S": "Seconds between looks at each system's oscillation index and "
    "queue pressure (reported when changed).",
    "NOTE_RATE_PER_S": "Coordination notes a second allowed from one S1 unit to another.",
    # operations (S1)
    "LLM_REQUEST_TIMEOUT_S": "An llm_worker's timeout per Anthropic request, in seconds.",
    "HTTP_TIMEOUT_S": "Timeout of the api and sensor agents' outside calls, in seconds.",
    "PERFORMANCE_INTERVAL": "Seconds between performance reports (also the measuring window).",
    "REGISTRY_REPLAY_TIMEOUT_S": "How long the agent registry's replay may take at start-up.",
    # telegram-gateway
    "TELEGRAM_BOT_TOKEN": "The bot's token; without it the bot is off and the service healthy.",
    "TELEGRAM_API_BASE_URL": "The Bot API server.",
    "TELEGRAM_WEBHOOK_URL": "Set: webhook mode at this public URL (else long polling).",
    "TELEGRAM_WEBHOOK_SECRET": "Required with the webhook; checked on every request.",
    "TELEGRAM_ALLOWED_CHAT_IDS": "Comma list of chat ids served.",
    "TELEGRAM_OPERATOR_CHAT_IDS": "Comma list of chats that receive operator alerts.",
    "TELEGRAM_POLL_TIMEOUT_S": "Long-poll timeout of getUpdates, in seconds.",
    "TELEGRAM_LLM_MODEL": "Model of the gateway's llm_worker.",
    "TELEGRAM_LLM_TIMEOUT_S": "How long a chat waits for the assistant, in seconds.",
    "TELEGRAM_SEND_RETRIES": "Re-sends after a 429.",
    # mcp-gateway
    "MCP_AUTH_TOKEN": "One operate token (make run generates .run/token when unset).",
    "VSM_OPERATE_TOKENS": "Operate tokens, comma-separated (rotation: add, move, remove).",
    "VSM_READ_TOKENS": "Read tokens, comma-separated: they see everything, change nothing.",
    "VSM_PUBLIC_HOST": "Host name of the ingress; allowed as Host and as https:// Origin.",
    "VSM_ALLOWED_HOSTS": "JSON list of Host headers answered; name:* allows any port.",
    "VSM_ALLOWED_ORIGINS": "JSON list of browser origins allowed.",
    "MCP_MAX_REQUEST_BYTES": "MCP request body cap, in bytes.",
    "MCP_RATE_LIMIT": "MCP requests a minute per client (token and address).",
    "MCP_MAX_RESULT_CHARS": "Tool result cap, in characters.",
    "CONSOLE_SESSION_S": "How long a sign-in to the web console lasts, in seconds.",
}


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    """On the line: the kit's default for a shared setting, else the first reader's."""
    defaults: dict[str, str]
    """The default of each service that reads it."""
    meaning: str | None

    def lines(self, services: int) -> list[str]:
        """Its meaning (who reads it, when not every service; defaults that differ), then
        the line to uncomment."""
        text = self.meaning or "(no meaning given)"
        if 1 < len(self.defaults) < services:
            text += f" Read by {', '.join(self.defaults)}."
        others = [f"{s}: {d or '(unset)'}" for s, d in self.defaults.items() if d != self.default]
        if others:
            text += f" Its default in {', '.join(others)}."
        wrapped = textwrap.wrap(text, WIDTH - 2, break_on_hyphens=False)
        return [*(f"# {line}" for line in wrapped), f"# {self.name}={self.default}"]


def env_name(field_name: str, field: FieldInfo) -> str:
    """The variable a field is read from: its alias, the first of its choices, or its name."""
    if isinstance(field.alias, str):
        return field.alias.upper()
    if isinstance(field.validation_alias, AliasChoices):
        first = field.validation_alias.choices[0]
        if isinstance(first, str):
            return first.upper()
    return field_name.upper()


def written(value: Any, comma_list: bool = False) -> str:
    """A default as .env would spell it: JSON for lists, sets and mappings, unless the field
    reads a comma list (`NoDecode`)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value is PydanticUndefined:
        text = ""
    elif comma_list:
        text = ",".join(str(item) for item in sorted(value))
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, set | frozenset):
        text = json.dumps(sorted(value), separators=(",", ":"))
    elif isinstance(value, list | tuple | dict):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    if BARE.fullmatch(text):
        return text
    assert "'" not in text, text  # a default that no quoting could carry
    return f"'{text}'"


def default_of(name: str, field: FieldInfo) -> str:
    if name in COMPUTED:
        return ""
    factory: Any = field.default_factory
    comma_list = any(m is NoDecode or isinstance(m, NoDecode) for m in field.metadata)
    return written(factory() if factory is not None else field.default, comma_list)


def fields(settings: type[BaseSettings]) -> Iterator[tuple[str, FieldInfo]]:
    for field_name, field in settings.model_fields.items():
        yield env_name(field_name, field), field


def settings_classes() -> dict[str, type[BaseSettings]]:
    return {s: importlib.import_module(m).Settings for s, (m, _) in SERVICES.items()}


def collect() -> list[tuple[str, list[Setting]]]:
    """Sections: what every service reads, then each service's own, each setting once."""
    defaults: dict[str, dict[str, str]] = {}
    meanings: dict[str, str | None] = {}
    for service, settings in settings_classes().items():
        for name, field in fields(settings):
            defaults.setdefault(name, {})[service] = default_of(name, field)
            meanings.setdefault(name, field.description or MEANINGS.get(name))
    kit = {name: default_of(name, field) for name, field in fields(ServiceSettings)}
    sections = [("every service", list(kit))]
    listed = set(kit)
    for service, settings in settings_classes().items():
        own = [name for name, _ in fields(settings) if name not in listed]
        listed.update(own)
        sections.append((f"{service} ({SERVICES[service][1]})", own))

    def setting(name: str) -> Setting:
        shown = kit.get(name, next(iter(defaults[name].values())))
        return Setting(name, shown, defaults[name], meanings[name])

    return [(title, [setting(n) for n in names]) for title, names in sections if names]


def render() -> str:
    lines = [HEADER.rstrip("\n")]
    for title, items in collect():
        lines += ["", f"# ---- {title} ".ljust(WIDTH, "-")]
        for item in items:
            lines += ["", *item.lines(len(SERVICES))]
    return "\n".join(lines) + "\n"


def unexplained() -> list[str]:
    """Settings without a meaning: give the field a description, or MEANINGS an entry."""
    return [item.name for _, items in collect() for item in items if not item.meaning]


def main() -> int:
    missing = unexplained()
    if missing:
        print(f"settings without a meaning: {', '.join(missing)}", file=sys.stderr)
        return 1
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
