"""The organisation file's JSON schema, generated from the models (published in docs/)."""

from __future__ import annotations

import json
from typing import Any

from vsm.cli.organisation.model import Organisation

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema() -> dict[str, Any]:
    generated = Organisation.model_json_schema()
    generated.pop("title", None)
    return {"$schema": DRAFT, "title": "vsm organisation file", **generated}


def schema_text() -> str:
    """The exact text of docs/organisation.schema.json (the drift test compares them)."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
