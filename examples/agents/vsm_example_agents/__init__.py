"""vsm example agents: two agent types written against the SDK (`vsm.agent`) only.

- `csv-summary` (`CsvSummary`): reads CSV text or a file under its data directory and
  summarises each column (counts; minimum, maximum and mean of numbers).
- `researcher` (`Researcher`): asks an LLM through the host's client, answering its tool
  calls (`word_count`, `lookup` in a glossary) for a bounded number of turns.

A host offers them with `vsm-agent run vsm_example_agents`, or, with this package installed,
with no module named at all (the `vsm.agent_types` entry points of its pyproject).
"""

from vsm_example_agents.csv_summary import CsvSummary
from vsm_example_agents.researcher import Researcher

__all__ = ["AGENT_TYPES", "CsvSummary", "Researcher"]

AGENT_TYPES = (CsvSummary, Researcher)
"""The types this package offers."""
