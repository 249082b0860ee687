"""The agent types that agent hosts offer, as plain data: which types exist beside the
built-in ones, which live hosts offer each, and what a new agent of such a type is.

A host registers its types before it consumes anything (`RegisterHost`), then heartbeats on
`vsm.health` with the same offers; a host is live while its heartbeats come (`ttl_s`). A
type's first offer fixes its schemas: a later offer under the same name with other schemas,
or one that takes a built-in type's name, is refused (`TypeClash`, naming both sources).
A spawn of a type offered before but by no live host now is refused `no_host_for_type`.
operations runs some SDK types itself (`own`: those installed packages publish through the
`vsm.agent_types` entry points), on its own partitions, like the built-in ones.

Memory is bounded: at most `MAX_TYPES` types and one entry per host heard, forgotten once
silent.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from vsm.agent.registry import TypeClash, TypeRegistry, check_clash
from vsm.contract.agent_types import AgentTypeManifest
from vsm.contract.errors import Refused
from vsm.contract.operations import AgentInfo
from vsm.operations.agents.base import AgentConfig
from vsm.operations.registry import invalid

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

__all__ = [
    "BUILT_IN",
    "MAX_HOSTS",
    "MAX_TYPES",
    "HostOffers",
    "governance",
    "new_hosted_agent",
    "no_host",
]

MAX_TYPES = 256
"""Agent types hosts may offer in all: one more is refused (`too_many_agent_types`)."""
MAX_HOSTS = 1024
"""Live hosts heard at once: one more is refused (`too_many_hosts`) until one falls silent."""
BUILT_IN = "operations (its built-in and installed types)"
GOVERNANCE = frozenset(AgentConfig.model_fields)
"""Config keys the host reads for every agent (its allocation and algedonic limits), beside
the agent type's own config."""

log = structlog.get_logger("vsm.operations.offers")


def no_host(agent_type: str) -> Refused:
    return Refused(
        "no_host_for_type",
        f"no live agent host offers agent type {agent_type!r}; start a host that offers it",
        {"field": "type", "agent_type": agent_type},
    )


@dataclass
class HostOffers:
    ttl_s: float
    built_in: Mapping[str, AgentTypeManifest] = field(default_factory=dict)
    """Every type operations runs itself: no host may offer one of their names."""
    own: Mapping[str, AgentTypeManifest] = field(default_factory=dict)
    """Of those, the SDK types of installed packages (checked by their schemas at spawn)."""
    types: TypeRegistry = field(default_factory=TypeRegistry)
    hosts: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    """Each live host: when it was last heard (monotonic seconds) and the types it offers."""
    clashes: set[tuple[str, str]] = field(default_factory=set)
    """(host, type) clashes already logged: a clashing host's heartbeats say it once."""
    _validators: dict[str, Draft202012Validator] = field(default_factory=dict)

    def register(self, instance: str, offers: Iterable[AgentTypeManifest], now: float) -> list[str]:
        """Take a host's offers (all or none): the names accepted; `TypeClash` for a type
        whose schemas differ from a built-in's or from the first offer of its name."""
        offers = list(offers)
        source = f"agent host {instance}"
        for manifest in offers:
            built_in = self.built_in.get(manifest.name)
            if built_in is not None:
                check_clash(built_in, BUILT_IN, manifest, source)
                raise TypeClash(built_in, BUILT_IN, source, ["a built-in type has this name"])
            known = self.types.offers.get(manifest.name)
            if known is not None:
                check_clash(known.manifest, known.sources[0], manifest, source)
        self._forget_silent(now)
        if instance not in self.hosts and len(self.hosts) >= MAX_HOSTS:
            raise Refused("too_many_hosts", f"at most {MAX_HOSTS} agent hosts are heard at once")
        new = {m.name for m in offers} - set(self.types.offers)
        if len(self.types.offers) + len(new) > MAX_TYPES:
            raise Refused(
                "too_many_agent_types", f"hosts offer at most {MAX_TYPES} agent types in all"
            )
        for manifest in offers:
            self.types.register(manifest, source)
        names = frozenset(m.name for m in offers)
        self.hosts[instance] = (now, names)
        return sorted(names)

    def heard(self, instance: str, offers: Iterable[AgentTypeManifest], now: float) -> None:
        """A host's heartbeat: it stays live; a clash is logged once and its offer ignored."""
        try:
            self.register(instance, offers, now)
        except Refused as refused:
            key = (instance, refused.code + refused.message)
            if key not in self.clashes and len(self.clashes) < MAX_TYPES:
                self.clashes.add(key)
                log.error("agent_host_refused", instance=instance, error=refused.message)

    def live_hosts(self, agent_type: str, now: float) -> list[str]:
        self._forget_silent(now)
        return sorted(i for i, (_, names) in self.hosts.items() if agent_type in names)

    def offered(self, now: float) -> list[AgentTypeManifest]:
        """The types some live host offers now."""
        self._forget_silent(now)
        live = {name for _, names in self.hosts.values() for name in names}
        return [m for m in self.types.manifests() if m.name in live]

    def find(self, agent_type: str, now: float) -> AgentTypeManifest | None:
        """The manifest of a type some live host offers; None for a type never offered;
        `no_host_for_type` for one offered before but by no live host now."""
        manifest = self.own.get(agent_type) or self.types.get(agent_type)
        if manifest is None or agent_type in self.own:
            return manifest
        if not self.live_hosts(agent_type, now):
            raise no_host(agent_type)
        return manifest

    def validate(self, manifest: AgentTypeManifest, config: Mapping[str, Any]) -> None:
        """`invalid_config` naming each field the type's config schema refuses."""
        from jsonschema import Draft202012Validator  # only where spawns are checked, not in hosts

        validator = self._validators.get(manifest.name)
        if validator is None or validator.schema != manifest.config_schema:
            validator = self._validators[manifest.name] = Draft202012Validator(
                manifest.config_schema
            )
        problems = [
            {
                "field": ".".join(["config", *map(str, error.absolute_path)]),
                "message": error.message[:512],
            }
            for error in sorted(validator.iter_errors(dict(config)), key=lambda e: e.path)
        ][:20]
        if problems:
            raise invalid(problems)

    def _forget_silent(self, now: float) -> None:
        for instance, (last, _) in list(self.hosts.items()):
            if now - last > self.ttl_s:
                del self.hosts[instance]


def governance(config: Mapping[str, Any]) -> AgentConfig:
    """The allocation and algedonic limits a hosted agent's config sets (defaults otherwise)."""
    try:
        return AgentConfig.model_validate({k: v for k, v in config.items() if k in GOVERNANCE})
    except ValueError as error:
        raise invalid([{"field": "config", "message": str(error)[:512]}]) from None


def new_hosted_agent(
    manifest: AgentTypeManifest,
    offers: HostOffers,
    config: dict[str, Any],
    now: datetime,
    *,
    name: str | None = None,
    vsm_id: str = "root",
) -> AgentInfo:
    """A fresh agent of an SDK type, its config checked against the type's schema (the
    governance keys aside), served through the type's own partitions when hosts offer it,
    through operations' own when operations runs it."""
    limits = governance(config)
    offers.validate(manifest, {k: v for k, v in config.items() if k not in GOVERNANCE})
    return AgentInfo(
        agent_id=f"{manifest.name.replace('_', '-')}-{secrets.token_hex(6)}",
        agent_type=manifest.name,
        name=name,
        vsm_id=vsm_id,
        config=config,
        capabilities=sorted(manifest.commands),
        allocation=limits.allocation,
        max_allocation=limits.max_allocation,
        spawned_at=now,
        pool=None if manifest.name in offers.own else manifest.name,
    )
