"""The rules every viable system's S4 judges: the operator's standing rules (compiled once
at start-up) and each system's own, declared through `intelligence.rules` (from `vsm
apply`); and the status of a system with its rules and outside sources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from vsm.contract.errors import ErrorReply
from vsm.contract.intelligence import SourceStatus, System4Status
from vsm.contract.rules import (
    Limits,
    Rule,
    RuleBook,
    RuleDeclaration,
    Vocabulary,
    any_reading,
    compile_rules,
)
from vsm.intelligence.judgement import Judgement
from vsm.intelligence.sources import SourceConfig, SourceState
from vsm.intelligence.system4 import System4


@dataclass
class RuleSets:
    limits: Limits = field(default_factory=Limits)
    vocabulary: Vocabulary = any_reading
    standing: Sequence[Rule] = ()
    sources: Sequence[SourceConfig] = ()
    polls: dict[str, SourceState] = field(default_factory=dict)
    root: str = "root"
    kept: dict[str, list[RuleDeclaration]] = field(default_factory=dict)
    """Rules read back from the journal for children S4 has not met again yet (it meets
    them when it reads S5's tree): each is adopted when its system is made (`resume`)."""

    keep: Callable[[], Awaitable[bool]] | None = None
    """Writes every system's own rules to S4's journal (the app sets it)."""

    async def kept_now(self) -> None:
        """The rules as they are now in the journal, before a change is answered."""
        if self.keep is not None:
            await self.keep()

    def resume(self, system: System4) -> None:
        """Give a system made again the rules it had before the restart, if any."""
        declared = self.kept.pop(system.vsm_id, None)
        if declared is not None:
            self.adopt(system, declared)

    def judgement(self) -> Judgement:
        """A new system's rules: the standing ones, with a memory of their own."""
        return Judgement(limits=self.limits, standing=RuleBook(self.standing, self.limits))

    def adopt(self, system: System4, declared: list[RuleDeclaration]) -> ErrorReply | None:
        """Replace the system's own rules; an `invalid_rules` refusal changes nothing."""
        try:
            compiled = compile_rules(declared, self.limits, self.vocabulary)
        except ValidationError as refused:
            errors = [
                {
                    "field": ".".join(map(str, e["loc"])),
                    "message": e["msg"],
                    **{k: v for k, v in e.get("ctx", {}).items() if k in ("line", "column")},
                }
                for e in refused.errors(include_url=False)
            ]
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
            return ErrorReply(
                code="invalid_rules", message=summary[:4096], details={"errors": errors}
            )
        system.judgement.adopt(declared, compiled)
        return None

    def status(self, system: System4, now: float, *, llm_enabled: bool) -> System4Status:
        status = system.status(now, llm_enabled=llm_enabled)
        return status.model_copy(update={"sources": self.sources_of(system.vsm_id)})

    def sources_of(self, vsm_id: str) -> list[SourceStatus]:
        found = []
        for source in self.sources:
            state = self.polls.get(source.name)
            if (source.vsm_id or self.root) != vsm_id or state is None:
                continue
            found.append(
                SourceStatus(
                    name=source.name,
                    url=str(source.url),
                    polls=state.polls,
                    failures=state.failures,
                    last_failure=state.last_failure,
                    last_readings=state.last_readings,
                )
            )
        return found
