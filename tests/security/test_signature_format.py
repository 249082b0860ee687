"""The signature format as `docs/signatures.md` writes it down: its example is what the kit
computes, byte for byte, and verifies only on the route it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vsm.kit.signing import BadSignature, material, parse, parse_keyring

DOC = Path(__file__).parents[2] / "docs" / "signatures.md"
EXCHANGE, ROUTING_KEY = "prod.vsm.s1.commands", "worker.worker-1.process_data"


def vectors() -> dict[str, str]:
    """The code blocks of the example, by the name in the comment above each."""
    found = re.findall(r"<!-- vector: (\w+) -->\n```\w*\n(.*?)\n```", DOC.read_text(), re.S)
    return dict(found)


def test_the_documented_example_is_what_the_kit_signs() -> None:
    example = vectors()
    keyring = parse_keyring(f"k1:{example['secret']}")
    assert keyring is not None
    body = example["body"].encode()
    headers = dict(line.split(": ", 1) for line in example["headers"].splitlines())

    assert material(parse(body), EXCHANGE, ROUTING_KEY).decode() == example["material"]
    assert keyring.sign(body, EXCHANGE, ROUTING_KEY) == headers
    assert keyring.verify(body, headers, EXCHANGE, ROUTING_KEY)
    with pytest.raises(BadSignature, match="another destination"):
        keyring.verify(body, headers, EXCHANGE, "worker.worker-2.process_data")
