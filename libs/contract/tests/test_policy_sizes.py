"""The sizes of a policy's mappings are bounded, and a document outside them is refused
naming the field (checked by validators, so that the OpenAPI document calls them objects)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from vsm.contract.policy import Policy

POLICY: TypeAdapter[Any] = TypeAdapter(Policy)
ADAPTATION = {"policy_type": "adaptation", "mode": "expansive", "actions": ["a"], "rationale": "r"}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({**ADAPTATION, "scale": {f"t{i}": 1 for i in range(33)}}, "scale"),
        ({**ADAPTATION, "capacity": {f"t{i}": 1.0 for i in range(65)}}, "capacity"),
        ({"policy_type": "resource_allocation", "shares": {}}, "shares"),
        (
            {"policy_type": "resource_allocation", "shares": {f"u{i}": 0.001 for i in range(257)}},
            "shares",
        ),
    ],
)
def test_a_mapping_outside_its_size_is_refused_naming_the_field(
    document: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        POLICY.validate_python(document)

    assert any(error["loc"][-1] == field for error in refused.value.errors())


def test_mappings_within_their_sizes_are_taken() -> None:
    taken = POLICY.validate_python({**ADAPTATION, "scale": {"worker": 3}, "capacity": {"w": 2}})

    assert taken.scale == {"worker": 3}
    assert POLICY.validate_python({"policy_type": "resource_allocation", "shares": {"a": 0.5}})


def test_the_json_schema_calls_the_mappings_objects() -> None:
    schema = POLICY.json_schema()["$defs"]

    assert schema["AdaptationPolicy"]["properties"]["scale"]["type"] == "object"
    assert schema["ResourceAllocationPolicy"]["properties"]["shares"]["type"] == "object"
