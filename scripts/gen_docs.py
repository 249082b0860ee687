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

from vsm.contract import topology
from vsm.kit import asyncapi as spec
from vsm.kit.interface import Interface
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


HOST = "agent-host"
"""An agent host (`vsm-agent run`): operations' code offering SDK types; its document is
built with an example type (the routes are the same for every type)."""


def build_app(service: str) -> Any:
    """The service's app built from default settings, so documents don't depend on the env."""
    module = MODULES["operations" if service == HOST else service]
    settings_type = importlib.import_module(f"{module}.settings").Settings
    settings = settings_type.model_construct(**{**settings_type().model_dump(), **FIXED})
    create_app = importlib.import_module(f"{module}.app").create_app
    if service == HOST:
        from vsm_example_agents.csv_summary import CsvSummary

        return create_app(settings, [CsvSummary])
    return create_app(settings)


def interfaces() -> dict[str, Interface]:
    """What each service (and an agent host) sends and receives; a service's request queue is
    told the answers that the services asking it wait for."""
    found = {
        service: build_app(service).state.runtime.bus.interface for service in [*MODULES, HOST]
    }
    for asker in found.values():
        for use in asker.uses:
            if use.exchange == topology.REQUESTS and use.replies:
                service = use.routing_key.split(".", 1)[0]
                found[service].answers(topology.requests_queue(service), *use.replies.values())
    return found


def asyncapi(service: str, interface: Interface) -> dict[str, Any]:
    what = "a vsm agent host (`vsm-agent run`)" if service == HOST else f"the vsm {service} service"
    return spec.document(
        interface,
        title=f"vsm {service}",
        version=VERSION,
        description=f"AMQP interface of {what}, generated from the code: every channel it "
        "sends to or receives from. Every message is a CloudEvents 1.0 event in structured "
        "mode; `data` is the typed body.",
    )


def openapi() -> dict[str, Any]:
    document: dict[str, Any] = build_app("mcp-gateway").openapi_schema.to_schema()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def documents() -> dict[Path, str]:
    """Every generated document by its path under the repository root."""
    generated = {
        DOCS / "asyncapi" / f"{service}.json": render(asyncapi(service, interface))
        for service, interface in interfaces().items()
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
