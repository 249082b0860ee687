"""The rule language: declarative rules over readings and events, parsed (never `eval`ed),
evaluated incrementally in bounded memory. Pure: no I/O, time comes in with each call.

Shared by everyone who writes or runs rules: sensors (operations), S4 (intelligence), the
CLI that validates organisation files. The grammar, with examples, is in docs/rules.md.
"""

from vsm.contract.rules.declared import (
    MAX_RULES,
    RuleDeclaration,
    compile_rule,
    compile_rules,
    parse_then,
    parse_when,
)
from vsm.contract.rules.evaluate import Fact, Firing, RuleBook
from vsm.contract.rules.lexer import RuleError
from vsm.contract.rules.parser import Limits, Vocabulary, any_reading, closed
from vsm.contract.rules.syntax import OUTCOMES, Outcome, Rule

__all__ = [
    "MAX_RULES",
    "OUTCOMES",
    "Fact",
    "Firing",
    "Limits",
    "Outcome",
    "Rule",
    "RuleBook",
    "RuleDeclaration",
    "RuleError",
    "Vocabulary",
    "any_reading",
    "closed",
    "compile_rule",
    "compile_rules",
    "parse_then",
    "parse_when",
]
