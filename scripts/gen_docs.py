"""Generate the contract's documents from the code: AsyncAPI per service, OpenAPI of the REST API.

`python scripts/gen_docs.py` writes them under docs/; the drift test fails when the
committed documents differ from what the code generates.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from vsm.kit.version import VERSION

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MODULES = {
    "queen": "vsm.queen",
    "intelligence": "vsm.intelligence",
    "control": "vsm.control",
    "coordinator": "vsm.coordinator",
    "operations": "vsm.operations",
    "telegram-gateway": "vsm.telegram_gateway",
    "mcp-gateway": "vsm.mcp_gateway",
}
FIXED = {
    "amqp_url": "amqp://guest:guest@127.0.0.1:5672/",
    "instance_id": "docs",
    "vsm_namespace": "",
    "vsm_id": "root",
}


def build_app(service: str) -> Any:
    """The service's app built from default settings, so documents don't depend on the env."""
    module = MODULES[service]
    settings_type = importlib.import_module(f"{module}.settings").Settings
    settings = settings_type.model_construct(**{**settings_type().model_dump(), **FIXED})
    return importlib.import_module(f"{module}.app").create_app(settings)


def asyncapi(service: str) -> dict[str, Any]:
    runtime = build_app(service).state.runtime
    spec = AsyncAPI(
        runtime.broker,
        title=f"vsm {service}",
        version=VERSION,
        description=f"AMQP interface of the vsm {service} service (generated from the code).",
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return document


def openapi() -> dict[str, Any]:
    document: dict[str, Any] = build_app("mcp-gateway").openapi_schema.to_schema()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def documents() -> dict[Path, str]:
    """Every generated document by its path under the repository root."""
    generated = {
        DOCS / "asyncapi" / f"{service}.json": render(asyncapi(service)) for service in MODULES
    }
    generated[DOCS / "openapi" / "mcp-gateway.json"] = render(openapi())
    return generated


def main() -> int:
    for path, text in documents().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
