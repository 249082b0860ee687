"""S3 carries adaptation policies out: the I/O around `adaptation`, `adjustments`, `quotas`.

Every step is said on `vsm.control` as an `AdaptationAction` caused by the policy (done, or
refused with its reason); spawns and retirements are requests to operations (S1's registry)
caused by the policy too. A refused step is also raised to S5 as pain (reason
`adaptation_refused`), so nothing the policy asked for is silently dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from vsm.contract import topology
from vsm.contract.adaptation import ActionOutcome, AdaptationAction, action_key
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.control import Resources
from vsm.contract.envelope import Envelope
from vsm.contract.operations import AgentDescription, SpawnAgent, TerminateAgent
from vsm.contract.performance import UnitPerformance
from vsm.contract.policy import AdaptationPolicy, PolicyRecord
from vsm.control import adjustments
from vsm.control.adaptation import OWNER, Action, Fleet, Refusal, Step, plan
from vsm.control.adjustments import Breaker
from vsm.control.outlets import Outlets
from vsm.control.policies import Desired
from vsm.control.quotas import AdaptationQuota, Deed
from vsm.control.system3 import System3
from vsm.kit.bus import Bus, NotRoutable, RequestFailed
from vsm.kit.rpc import RequestTimeout

log = structlog.get_logger("vsm.control.adapter")
AnyEnvelope = Envelope[Any]
REFUSAL_PAIN = 0.5
"""Pain of a refused step: felt by S5, below its default intervention threshold alone."""


def scale_subject(agent_type: str) -> str:
    """S2's damping subject for the scale of an agent type."""
    return f"scale:{agent_type}"


class Adapter:
    def __init__(  # noqa: PLR0917 - the composition root names every part
        self,
        bus: Bus,
        s3: System3,
        out: Outlets,
        quota: AdaptationQuota,
        breaker: Breaker,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus, self.s3, self.out, self.quota, self.breaker = bus, s3, out, quota, breaker
        self.clock, self.monotonic = clock, monotonic
        self.adapted: set[str] = set()
        self.isolations: dict[str, tuple[PolicyRecord, AnyEnvelope]] = {}
        """Isolated agents, with the policy that isolated them (their readmission's cause)."""
        self.shed: dict[str, set[str]] = {}
        self.actions = bus.publisher(
            topology.CONTROL, AdaptationAction, routing_key=action_key("<kind>", "<outcome>")
        )
        self.pains = bus.publisher(topology.ALGEDONIC, AlgedonicSignal)

    def fleet(self, vsm_id: str) -> Fleet:
        system = self.s3.ledger.systems.get(vsm_id)
        running: dict[str, list[str]] = {}
        for account in system.accounts.values() if system else ():
            running.setdefault(account.agent_type, []).append(account.agent_id)
        return Fleet(running, frozenset(self.adapted))

    async def carry_out(self, record: PolicyRecord, cause: AnyEnvelope) -> None:
        policy = record.policy
        if not isinstance(policy, AdaptationPolicy) or record.source == "parent":
            return  # an inherited policy sets the direction; the parent's deeds are its own
        system = self.s3.ledger.systems.get(record.vsm_id)
        free = (
            Resources(**{k: max(0, v) for k, v in system.free().items()}) if system else Resources()
        )
        steps, refusals = plan(policy, self.fleet(record.vsm_id), record.vsm_id, free)
        steps += self._resumed(record.vsm_id, policy)
        if not steps and not refusals:
            return
        if not self.quota.take(record.vsm_id, "policies", 1, self.monotonic()):
            left = "adaptation policy versions per hour"
            refusals += [Refusal(s.action, s.target, "quota", f"no {left} left") for s in steps]
            steps = []
        for refusal in refusals:
            await self.refuse(record, refusal, cause)
        for step in steps:
            await self.take(record, step, cause)

    async def take(self, record: PolicyRecord, step: Step, cause: AnyEnvelope) -> None:
        if step.action in ("spawn", "retire"):
            await self.scale(record, step, cause)
        elif step.action == "reallocate" and step.factor is not None:
            system = self.s3.ledger.systems.get(record.vsm_id)
            label = f"adaptation v{record.version}"
            wanted = adjustments.capacity(system, step.target, step.factor, label) if system else []
            await self.settle(record, step, wanted, cause)
        elif step.action == "isolate":
            await self.isolate(record, step, cause)
        elif step.action == "meta_system":  # S5 decides: the proposal carries the request
            detail = f"a child viable system {step.target!r} for what overloads {record.vsm_id}"
            said = said_of(record, step.action, step.target, "proposed", detail=detail)
            await self._say(record, said.model_copy(update={"request": step.request}), cause)
        else:  # shed and resume: S2 acts on the announcement
            if step.action == "shed":
                self.shed.setdefault(record.vsm_id, set()).add(step.target)
            await self.done(record, step, cause, detail=f"lane {step.target} {step.action}")

    def _resumed(self, vsm_id: str, policy: AdaptationPolicy) -> list[Step]:
        gone = self.shed.get(vsm_id, set()) - set(policy.shed)
        self.shed[vsm_id] = self.shed.get(vsm_id, set()) - gone
        return [Step("resume", lane) for lane in sorted(gone)]

    async def scale(self, record: PolicyRecord, step: Step, cause: AnyEnvelope) -> None:
        now, vsm_id = self.clock(), record.vsm_id
        if scale_subject(step.target) in self.s3.damper.active(now):
            detail = f"S2 damps the scale of {step.target}: it reversed too often"
            await self.refuse(record, Refusal(step.action, step.target, "damped", detail), cause)
            return
        deed: Deed = "spawns" if step.action == "spawn" else "retirements"
        granted = self.quota.take(vsm_id, deed, step.count, self.monotonic())
        done: list[str] = []
        failure: Refusal | None = None
        for index in range(granted):
            try:
                done.append(await self._one(record, step, index, cause))
            except (RequestFailed, NotRoutable, RequestTimeout) as error:
                code = error.reply.code if isinstance(error, RequestFailed) else "unavailable"
                failure = Refusal(step.action, step.target, code[:64], str(error)[:1024])
                self.quota.give_back(vsm_id, deed, granted - len(done))
                break
        if done:
            await self.done(record, step, cause, agent_ids=done)
        if failure is not None:
            await self.refuse(record, failure, cause)
        elif granted < step.count:
            detail = f"{step.count - granted} of {step.count} {deed} over the hour's quota "
            detail += f"({self.quota.limits[deed]} per hour)"
            await self.refuse(record, Refusal(step.action, step.target, "quota", detail), cause)

    async def _one(self, record: PolicyRecord, step: Step, index: int, cause: AnyEnvelope) -> str:
        if step.action == "spawn":
            body: Any = SpawnAgent(agent_type=step.target)
            operation = "spawn"
        else:
            reason = f"adaptation v{record.version}: scale {step.target} down"
            body = TerminateAgent(agent_id=step.agent_ids[index], reason=reason)
            operation = "terminate"
        answer = await self.bus.ask(
            body,
            exchange=topology.REQUESTS,
            routing_key=topology.request_key("operations", operation),
            cause=cause,
            vsm_id=record.vsm_id,
        )
        assert isinstance(answer.data, AgentDescription)
        agent = answer.data.agent
        if step.action == "spawn":
            self.adapted.add(agent.agent_id)
            self.s3.admit(agent)  # before the registry event: a next policy counts it
        else:
            self.adapted.discard(agent.agent_id)
            self.s3.close(agent.agent_id)
        return agent.agent_id

    async def isolate(self, record: PolicyRecord, step: Step, cause: AnyEnvelope) -> None:
        account = self.s3.ledger.account(step.target)
        if account is None or account.vsm_id != record.vsm_id:
            detail = f"{record.vsm_id} runs no agent {step.target!r}"
            refusal = Refusal("isolate", step.target, "unknown_agent", detail)
            await self.refuse(record, refusal, cause)
            return
        label = f"adaptation v{record.version}"
        self.breaker.open(step.target, self.monotonic(), label)
        self.isolations[step.target] = (record, cause)
        await self.settle(record, step, [adjustments.isolate(account, label)], cause)

    async def settle(
        self, record: PolicyRecord, step: Step, wanted: list[Desired], cause: AnyEnvelope
    ) -> None:
        if not wanted:
            detail = f"{record.vsm_id} runs no agent named by {step.target!r}"
            refusal = Refusal(step.action, step.target, "no_agents", detail)
            await self.refuse(record, refusal, cause)
            return
        label = f"adaptation v{record.version}"
        changes = self.s3.settle(wanted, label, self.clock(), cause)
        await self.out.changed(changes)
        ids = [w.account.agent_id for w in wanted]
        await self.done(record, step, cause, agent_ids=ids, detail=wanted[0].reason)

    async def probe(self) -> bool:
        """The breaker's rhythm: readmit isolated agents on probation, then for good;
        whether any moved (nothing to keep otherwise)."""
        moved = self.breaker.due(self.monotonic())
        for agent_id, move, _ in moved:
            await self._breaker_moved(agent_id, move)
        return bool(moved)

    async def reported(self, report: UnitPerformance) -> None:
        """A report of an agent on probation decides whether it stays in."""
        move = self.breaker.reported(report, self.monotonic())
        if move is not None:
            await self._breaker_moved(report.agent_id, move)

    async def _breaker_moved(self, agent_id: str, move: str) -> None:
        """Probe (one slot), close (base slots) or reopen (none): said as a step of the
        policy that isolated the agent, and caused by it."""
        account = self.s3.ledger.account(agent_id)
        isolated = self.isolations.get(agent_id)
        if account is None or isolated is None:
            self.breaker.isolated.pop(agent_id, None)
            self.isolations.pop(agent_id, None)
            return
        record, cause = isolated
        label = f"adaptation v{record.version}"
        if move == "reopen":
            desired = adjustments.isolate(account, label)
            step = Step("isolate", agent_id)
        else:
            slots = 1 if move == "probe" else account.base_slots
            desired = adjustments.readmit(account, slots, label)
            step = Step("readmit", agent_id)
        if move == "close":
            del self.isolations[agent_id]
        await self.out.changed(self.s3.settle([desired], label, self.clock(), cause))
        await self.done(record, step, cause, agent_ids=[agent_id], detail=desired.reason)

    async def done(
        self,
        record: PolicyRecord,
        step: Step,
        cause: AnyEnvelope,
        *,
        agent_ids: list[str] | None = None,
        detail: str = "",
    ) -> None:
        said = said_of(record, step.action, step.target, "done", detail=detail)
        await self._say(record, said.model_copy(update={"agent_ids": agent_ids or []}), cause)

    async def refuse(self, record: PolicyRecord, refusal: Refusal, cause: AnyEnvelope) -> None:
        action, target = refusal.action, refusal.target
        said = said_of(
            record, action, target, "refused", reason=refusal.reason, detail=refusal.detail
        )
        sent = await self._say(record, said, cause)
        await self.pains.publish(
            AlgedonicSignal(
                kind="pain",
                intensity=REFUSAL_PAIN,
                origin="control/adaptation",
                reason="adaptation_refused",
                episode=f"adaptation:{action}:{target}"[:128],
                context={
                    "target": target,
                    "action": action,
                    "refusal": refusal.reason,
                    "policy_version": record.version,
                },
            ),
            cause=sent,
            vsm_id=record.vsm_id,
        )
        log.warning("adaptation_refused", target=target, reason=refusal.reason)

    async def _say(
        self, record: PolicyRecord, said: AdaptationAction, cause: AnyEnvelope
    ) -> AnyEnvelope:
        sent = await self.actions.publish(
            said,
            routing_key=action_key(said.kind, said.outcome),
            cause=cause,
            vsm_id=record.vsm_id,
            subject=said.target,
        )
        metrics = self.out.metrics
        metrics.adaptation_actions.labels(
            metrics.vsm_ids(record.vsm_id), said.kind, said.action, said.outcome
        ).inc()
        return sent


def said_of(
    record: PolicyRecord,
    action: Action,
    target: str,
    outcome: ActionOutcome,
    *,
    reason: str = "",
    detail: str = "",
) -> AdaptationAction:
    """The message saying one step of `record`'s policy (done, refused or proposed)."""
    policy = record.policy
    assert isinstance(policy, AdaptationPolicy)
    return AdaptationAction(
        kind=policy.mode,
        action=action,
        owner=OWNER[action],
        target=target,
        outcome=outcome,
        reason=reason,
        detail=detail[:1024],
        policy_version=record.version,
    )
