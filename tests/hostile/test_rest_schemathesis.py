"""REST: schemathesis fuzzes every operation of the running gateway's OpenAPI document.

Generated requests, valid (positive) and invalid (negative), go to the real gateway with the
operate token and through it, over AMQP, to the services. No answer may be a 5xx, and every
answer must conform to the document: a documented status code, its content type, a body that
matches its schema.
Every generated request is tried (a finding does not stop the exploration) and the findings
are reported together: the test fails on any of them.

(Schemathesis' pytest loader reads a private pytest attribute that pytest 9 no longer has,
so the operations are driven here through its strategies and Hypothesis directly.)
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from scripts.localrun import LocalSystem
from tests.support.hostile import assert_all_alive
from tests.support.tokens import bearer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

EXAMPLES = 10
"""Generated requests per operation and mode (a bound: the module runs in a few minutes)."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the repository
    derandomize=True,  # the same inputs on every run: a finding here is reproducible
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
Finding = tuple[str, int]


def findings_in(error: BaseException) -> list[str]:
    failures = error.exceptions if isinstance(error, FailureGroup) else (error,)
    return [type(failure).__name__ for failure in failures]


def judge(case: Case, response: requests.Response) -> list[Finding]:
    """What is wrong with `response`: a 5xx, an undocumented status, a body or content type
    other than documented."""
    status = response.status_code
    if status >= 500:
        return [("server error", status)]
    documented = case.operation.definition.raw.get("responses", {})
    if str(status) not in documented and "default" not in documented:
        return [("undocumented status", status)]
    try:
        case.validate_response(
            response, checks=[content_type_conformance, response_schema_conformance]
        )
    except (Failure, FailureGroup) as error:
        return [
            (
                "content type"
                if "ContentType" in name or "MediaType" in name
                else "response schema",
                status,
            )
            for name in findings_in(error)
        ]
    return []


def fuzz(operation: Any, mode: GenerationMode, url: str, log: dict[str, Counter[Any]]) -> None:
    label = f"{operation.method.upper()} {operation.path} ({mode.value})"

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Case) -> None:
        log["tried"][label] += 1
        response = case.call(base_url=url, headers=bearer(), timeout=30)
        log["statuses"][response.status_code] += 1
        for finding in judge(case, response):
            log["findings"][finding] += 1
            log["where"][(finding, label, case.as_curl_command())] += 1

    try:
        one()
    except Unsatisfiable:  # nothing to break: no parameters, or none that can be invalid
        log["unsatisfiable"][label] += 1


def test_every_operation_answers_within_its_schema_and_never_5xx(
    hostile_system: LocalSystem,
) -> None:
    url = hostile_system.url("mcp-gateway")
    schema = schemathesis.openapi.from_url(
        f"{url}/schema/openapi.json", headers=bearer(), timeout=30
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    log: dict[str, Counter[Any]] = {
        name: Counter() for name in ("tried", "statuses", "findings", "where", "unsatisfiable")
    }

    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, url, log)

    tried = log["tried"]
    print(
        f"\nREST fuzzing: {sum(tried.values())} generated requests over {len(operations)} "
        f"operations (positive and negative) in {time.monotonic() - started:.0f} s; "
        f"statuses {dict(sorted(log['statuses'].items()))}"
    )
    for label, count in sorted(tried.items()):
        print(f"  {count:4d}  {label}")
    print(f"  no invalid input to generate: {sorted(log['unsatisfiable'])}")
    for finding, count in sorted(log["findings"].items()):
        labels = sorted({label for (f, label, _) in log["where"] if f == finding})
        print(f"  {finding[0]} {finding[1]}: {count} responses, {len(labels)} operations")
    found = [f"{f[0]} {f[1]} on {label}\n    {curl}" for (f, label, curl) in log["where"]]
    assert not found, "\n".join(found)
    assert sum(tried.values()) >= len(operations)
    assert_all_alive(hostile_system)
