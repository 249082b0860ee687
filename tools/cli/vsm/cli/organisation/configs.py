"""Does a running agent have the config its declaration asks for?

The registry stores each config with the type's defaults filled in and values normalised
(a URL gains its trailing `/`), so a declaration is completed from the type's JSON schema
(`GET /agent-types`) the same way before the two are compared. Keys the schema gives no
default for are compared only when declared.
"""

from __future__ import annotations

from typing import Any

from pydantic import AnyUrl, TypeAdapter, ValidationError

MISSING = object()
URL: TypeAdapter[AnyUrl] = TypeAdapter(AnyUrl)


def resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return resolve(defs.get(ref.removeprefix("#/$defs/"), {}), defs)
    return schema


def is_url(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    branches = [schema, *schema.get("anyOf", [])]
    return any(resolve(b, defs).get("format") == "uri" for b in branches)


def default_of(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """What the type fills in for an absent key, or MISSING when it cannot be told."""
    if "default" in schema:
        return schema["default"]
    target = resolve(schema, defs)
    if "default" in target:
        return target["default"]
    if "properties" in target and not target.get("required"):
        return complete({}, target, defs)
    return {"object": {}, "array": []}.get(target.get("type", ""), MISSING)


def complete(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """`value` as the registry will store it: defaults filled in, URLs normalised."""
    target = resolve(schema, defs)
    if isinstance(value, dict) and "properties" in target:
        filled = dict(value)
        for key, field in target["properties"].items():
            if key in filled:
                filled[key] = complete(filled[key], field, defs)
            elif (default := default_of(field, defs)) is not MISSING:
                filled[key] = default
        return filled
    if isinstance(value, list) and isinstance(target.get("items"), dict):
        return [complete(item, target["items"], defs) for item in value]
    if isinstance(value, str) and is_url(target, defs):
        try:
            return str(URL.validate_python(value))
        except ValidationError:
            return value
    return value


def matches(expected: Any, stored: Any) -> bool:
    """Everything `expected` says holds in `stored` (numbers compared as numbers)."""
    if isinstance(expected, dict):
        return isinstance(stored, dict) and all(
            key in stored and matches(value, stored[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(stored, list)
            and len(expected) == len(stored)
            and all(matches(e, s) for e, s in zip(expected, stored, strict=True))
        )
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(stored, numbers):
        bools = isinstance(expected, bool), isinstance(stored, bool)
        return bools[0] == bools[1] and float(expected) == float(stored)
    return bool(expected == stored)


def differing(
    declared: dict[str, Any], stored: dict[str, Any], schema: dict[str, Any]
) -> list[str]:
    """The top-level config keys whose running value is not what the declaration asks for."""
    expected = complete(declared, schema, schema.get("$defs", {}))
    return sorted(k for k, v in expected.items() if k not in stored or not matches(v, stored[k]))
