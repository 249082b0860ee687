"""Variety overload grows structure, on the broker: S5 carries out the transformational
adaptations it adopted, and proposes folding a child back once it is idle.

Grow: S4 proposes a transformational `adaptation` naming the agent types to `delegate`; S5
adopts it (through an approval when governance says so); S3 answers with the spawn request
of the child (a `meta_system` step, `proposed`, its budget carved from the parent's free
one); S5 spawns the child and asks operations to re-home the agents of those types into it,
after which S2 dispatches their lane there. Fold: a child idle for STRUCTURE_IDLE_S makes S5
propose (adopt, under the same decision rights) an `adaptation` of the parent that names it
in `fold`; adopted, the agents return to the parent and the child is retired. Each step is
caused by the one before; a step S5 cannot take is raised as pain with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from vsm.contract import topology
from vsm.contract.adaptation import AdaptationAction
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.envelope import Envelope
from vsm.contract.errors import Refused
from vsm.contract.operations import RehomeAgents
from vsm.contract.policy import AdaptationPolicy, PolicyRecord
from vsm.contract.recursion import SpawnMetaSystem
from vsm.kit.bus import Bus, NotRoutable, RequestFailed
from vsm.kit.rpc import RequestTimeout
from vsm.queen.delegations import Delegation, Delegations
from vsm.queen.journal import PolicyJournal
from vsm.queen.policies import PolicyRejected
from vsm.queen.recursion import MetaSystems

log = structlog.get_logger("vsm.queen.structure")
AnyEnvelope = Envelope[Any]
SOURCE = "rules"
"""S5's own rules fold a child back (governance may ask a person for `rules` adaptations)."""
REFUSAL_PAIN = 0.5
FAILED = (Refused, RequestFailed, NotRoutable, RequestTimeout, PolicyRejected)


def fold_policy(delegation: Delegation, idle_s: float) -> dict[str, Any]:
    """The adaptation S5 proposes for the parent of an idle child: fold it back."""
    types = ", ".join(delegation.agent_types)
    return AdaptationPolicy(
        policy_type="adaptation",
        mode="transformational",
        actions=[f"S5: retire {delegation.child}; its {types} work returns to {delegation.parent}"],
        rationale=(
            f"{delegation.child} did no work for {idle_s:g}s: the variety it took over is "
            f"gone, so {delegation.parent} absorbs its {types} work again"
        ),
        fold=[delegation.child],
    ).model_dump(mode="json")


class Structure:
    def __init__(
        self,
        bus: Bus,
        journal: PolicyJournal,
        meta: MetaSystems,
        delegations: Delegations,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus, self.journal, self.meta = bus, journal, meta
        self.delegations, self.clock = delegations, clock
        self.pains = bus.publisher(topology.ALGEDONIC, AlgedonicSignal)
        journal.adopted.append(self.adopted)

    # Grow ---------------------------------------------------------------------------------
    async def proposed(self, envelope: Envelope[AdaptationAction]) -> None:
        """S3's spawn request for a transformational policy: spawn the child and move the
        work it names (a policy naming none leaves the request to a person)."""
        step, parent = envelope.data, envelope.vsm_id
        if (step.action, step.outcome) != ("meta_system", "proposed"):
            return
        try:
            policy = self.journal.store.get(parent, "adaptation", step.policy_version).policy
        except PolicyRejected:  # not a version of this S5's (another release's child)
            return
        if not isinstance(policy, AdaptationPolicy) or not policy.delegate:
            return
        why = self.delegations.refusal(parent, policy.delegate, self.clock())
        if why is not None:
            await self.refuse(parent, step.target, "quota", why, envelope)
            return
        try:
            request = SpawnMetaSystem.model_validate(step.request)
            info, spawned = await self.meta.spawn_child(request, parent, envelope)
        except (ValueError, *FAILED) as refused:
            await self.refuse(parent, step.target, code_of(refused), str(refused), envelope)
            return
        delegation = self.delegations.open(
            info.vsm_id, parent, policy.delegate, self.clock(), spawned
        )
        await self.move(delegation, parent, info.vsm_id, spawned)

    async def move(
        self, delegation: Delegation, from_vsm_id: str, to_vsm_id: str, cause: AnyEnvelope
    ) -> None:
        """Ask operations to re-home the delegated agent types (each a registry event)."""
        for agent_type in delegation.agent_types:
            reason = f"structure: {agent_type} work of {delegation.parent} in {delegation.child}"
            try:
                await self.bus.ask(
                    RehomeAgents(agent_type=agent_type, to_vsm_id=to_vsm_id, reason=reason),
                    exchange=topology.REQUESTS,
                    routing_key=topology.request_key("operations", "rehome"),
                    cause=cause,
                    vsm_id=from_vsm_id,
                )
            except FAILED as failed:
                await self.refuse(from_vsm_id, agent_type, code_of(failed), str(failed), cause)

    # Fold ---------------------------------------------------------------------------------
    def worked(self, vsm_id: str, done: int) -> None:
        """A performance report: work done in `vsm_id` keeps a grown child alive."""
        if done:
            self.delegations.worked(vsm_id, self.clock())

    async def tick(self) -> None:
        """Propose folding every child idle for STRUCTURE_IDLE_S (once each)."""
        for delegation in self.delegations.idle(self.clock()):
            document = fold_policy(delegation, self.delegations.idle_s)
            try:
                await self.journal.adopt(
                    delegation.parent,
                    "adaptation",
                    document,
                    source=SOURCE,
                    reason=f"{delegation.child} is idle",
                    cause=delegation.spawned,
                )
            except PolicyRejected as held:
                if held.code != "approval_pending":  # held: the decision is a person's
                    delegation.retiring = False
                    log.warning("fold_refused", child=delegation.child, code=held.code)

    async def adopted(self, record: PolicyRecord, changed: AnyEnvelope) -> None:
        """An adopted policy that folds children: the work returns, then each is retired."""
        policy = record.policy
        if not isinstance(policy, AdaptationPolicy) or record.source == "parent":
            return
        for child in policy.fold:
            delegation = self.delegations.children.get(child)
            if delegation is None or delegation.parent != record.vsm_id:
                continue
            await self.move(delegation, child, delegation.parent, changed)
            self.delegations.close(child)  # the work is back, whatever becomes of the child
            try:
                await self.meta.retire_child(changed, child)
            except FAILED as refused:  # e.g. an operator retired it, or gave it children
                await self.refuse(record.vsm_id, child, code_of(refused), str(refused), changed)

    async def refuse(
        self, vsm_id: str, target: str, code: str, detail: str, cause: AnyEnvelope
    ) -> None:
        """A structural step S5 could not take: pain with the reason, on the trail."""
        log.warning("structure_refused", vsm_id=vsm_id, target=target, code=code)
        await self.pains.publish(
            AlgedonicSignal(
                kind="pain",
                intensity=REFUSAL_PAIN,
                origin="queen/structure",
                reason="structure_refused",
                episode=f"structure:{target}"[:128],
                context={"target": target, "refusal": code, "detail": detail[:512]},
            ),
            cause=cause,
            vsm_id=vsm_id,
        )


def code_of(error: Exception) -> str:
    if isinstance(error, Refused | PolicyRejected):
        return error.code[:64]
    if isinstance(error, RequestFailed):
        return error.reply.code[:64]
    return "unavailable" if isinstance(error, NotRoutable | RequestTimeout) else "invalid_request"
