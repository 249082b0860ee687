"""Rules as people write them (in an organisation file, an agent's config, S4's settings),
and their compilation into the tree the evaluator runs.

A rule is a name, a condition (`when`) and an outcome (`then`):

    - name: hot-and-full
      when: load_per_cpu > 0.8 and memory_used_fraction > 0.9 for 30s
      then: pain 0.7

A rule that cannot be compiled is refused as a pydantic `ValidationError` located at its
text (`rules.0.when`), its message giving the line and column inside that text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from vsm.contract.rules import syntax as s
from vsm.contract.rules.lexer import RuleError, tokens
from vsm.contract.rules.parser import Limits, Parser, Vocabulary, any_reading, describe

__all__ = [
    "MAX_RULES",
    "RuleDeclaration",
    "RuleName",
    "compile_rule",
    "compile_rules",
    "parse_then",
    "parse_when",
    "problem",
]

RuleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""A stable code: the reason of the signals the rule raises."""
MAX_RULES = 64


class RuleDeclaration(BaseModel):
    """One declared rule (see docs/rules.md for the language)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RuleName
    when: str = Field(min_length=1, max_length=2048, examples=["cpu > 0.8 for 30s"])
    then: str = Field(min_length=1, max_length=128, examples=["pain 0.7"])


def parse_when(
    name: str, when: str, outcome: s.Outcome, limits: Limits, vocabulary: Vocabulary
) -> s.Rule:
    parser = Parser(when, limits, vocabulary)
    condition = parser.condition()
    sustained, group_by = 0.0, None
    while parser.at("for", "by"):
        keyword = parser.advance()
        if keyword.text == "for" and not sustained:
            sustained = parser.duration("duration")
        elif keyword.text == "by" and group_by is None:
            field = parser.token
            if field.kind != "name":
                raise field.fail(f"expected the field to group by, found {describe(field)}")
            group_by = str(parser.advance().value)
        else:
            raise keyword.fail(f"`{keyword.text}` is given twice")
    if parser.token.kind != "end":
        raise parser.token.fail(
            f"expected `and`, `or`, `for`, `by` or the end of the rule, "
            f"found {describe(parser.token)}"
        )
    return s.Rule(
        name=name,
        condition=condition,
        outcome=outcome,
        sustained_s=sustained,
        group_by=group_by,
        windows=tuple(parser.windows),
        readings=tuple(parser.readings),
        text=when,
    )


def parse_then(then: str) -> s.Outcome:
    """`pain <0..1>`, `pleasure <0..1>`, `observe`, or `alert <info|warning|critical>`."""
    found = tokens(then)
    verb, argument, rest = (found + [found[-1]] * 2)[:3]
    if verb.text in ("pain", "pleasure"):
        if argument.kind != "number" or not 0 <= float(argument.value) <= 1:
            raise argument.fail(f"`{verb.text}` takes an intensity from 0 to 1 (e.g. 0.7)")
        outcome = s.Outcome(cast(s.OutcomeKind, verb.text), intensity=float(argument.value))
    elif verb.text == "alert":
        if argument.text not in ("info", "warning", "critical"):
            raise argument.fail("`alert` takes a severity: info, warning or critical")
        outcome = s.Outcome("alert", severity=cast(s.Severity, argument.text))
    elif verb.text == "observe":
        outcome, rest = s.Outcome("observe"), argument
    else:
        raise verb.fail(
            f"expected `pain`, `pleasure`, `observe` or `alert`, found {describe(verb)}"
        )
    if rest.kind != "end":
        raise rest.fail(f"expected the end of the outcome, found {describe(rest)}")
    return outcome


def compile_rule(
    declared: RuleDeclaration,
    limits: Limits | None = None,
    vocabulary: Vocabulary = any_reading,
    outcomes: frozenset[str] = frozenset(s.OUTCOMES),
) -> s.Rule:
    """The rule, or `RuleError` (its `field` is `when` or `then`)."""
    try:
        outcome = parse_then(declared.then)
        if outcome.kind not in outcomes:
            raise RuleError(f"here a rule can only {' or '.join(sorted(outcomes))}")
    except RuleError as error:
        error.field = "then"
        raise
    try:
        return parse_when(declared.name, declared.when, outcome, limits or Limits(), vocabulary)
    except RuleError as error:
        error.field = "when"
        raise


def compile_rules(
    declared: Sequence[RuleDeclaration],
    limits: Limits | None = None,
    vocabulary: Vocabulary = any_reading,
    outcomes: frozenset[str] = frozenset(s.OUTCOMES),
    at: tuple[str | int, ...] = ("rules",),
) -> list[s.Rule]:
    """Every rule compiled, or one `ValidationError` listing each refused one at its field."""
    compiled, problems = [], []
    names: set[str] = set()
    for index, rule in enumerate(declared):
        if rule.name in names:
            problems.append(
                problem((*at, index, "name"), f"rule {rule.name!r} is declared twice", rule.name)
            )
        names.add(rule.name)
        try:
            compiled.append(compile_rule(rule, limits, vocabulary, outcomes))
        except RuleError as error:
            text = getattr(rule, error.field)
            problems.append(problem((*at, index, error.field), str(error), text, error))
    if problems:
        raise ValidationError.from_exception_data("rules", problems)
    return compiled


def problem(
    loc: tuple[str | int, ...], message: str, text: str, error: RuleError | None = None
) -> InitErrorDetails:
    where = {"line": error.line, "column": error.column} if error is not None else {}
    return InitErrorDetails(
        type=PydanticCustomError("rule_invalid", "{message}", {"message": message, **where}),
        loc=loc,
        input=text,
    )
