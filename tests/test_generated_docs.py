"""The committed AsyncAPI and OpenAPI documents are what the code generates (no drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.gen_docs import ROOT, documents

GENERATED = documents()


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_document_matches_the_code(path: Path) -> None:
    committed = path.read_text() if path.exists() else ""
    assert committed == GENERATED[path], f"{path} is stale: run `make docs` and commit it"


def test_asyncapi_documents_name_the_contract_queues() -> None:
    queen = next(text for path, text in GENERATED.items() if path.name == "queen.json")
    assert "vsm.system5.health" in queen
    assert "vsm.health.report.v1" in queen or "HealthReport" in queen
