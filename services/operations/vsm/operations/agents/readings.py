"""Where a sensor's readings come from: this host's metrics, or a JSON document over HTTP."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from vsm.operations.agents.outbound import Outbound

MEMINFO = Path("/proc/meminfo")
HOST_READINGS = frozenset(
    {"load1", "load5", "load_per_cpu", "disk_used_fraction", "memory_used_fraction"}
)
"""What `host_metrics` reads: the only names a host sensor's rules may use."""


def host_metrics() -> dict[str, float]:
    """Load, memory and disk use of the host, from the standard library and /proc."""
    load1, load5, _ = os.getloadavg()
    cpus = os.cpu_count() or 1
    disk = shutil.disk_usage("/")
    metrics = {
        "load1": load1,
        "load5": load5,
        "load_per_cpu": load1 / cpus,
        "disk_used_fraction": disk.used / disk.total if disk.total else 0.0,
    }
    memory = _meminfo()
    if memory.get("MemTotal"):
        metrics["memory_used_fraction"] = 1 - memory.get("MemAvailable", 0) / memory["MemTotal"]
    return metrics


def _meminfo() -> dict[str, float]:
    try:
        lines = MEMINFO.read_text().splitlines()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        number = rest.split()[0] if rest.split() else ""
        if number.isdigit():
            values[name] = float(number)
    return values


def numbers(document: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a JSON document, keyed by its dotted path."""
    found: dict[str, float] = {}
    if isinstance(document, bool):
        return found
    if isinstance(document, int | float):
        found[prefix or "value"] = float(document)
    elif isinstance(document, dict):
        for key, value in document.items():
            found |= numbers(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found |= numbers(value, f"{prefix}.{index}" if prefix else str(index))
    return found


async def http_metrics(
    outbound: Outbound, agent_type: str, url: str, timeout_s: float
) -> dict[str, float]:
    """The numbers of the JSON document at `url`; `ValueError` for an error status, or for a
    body that is no JSON or longer than the operator's cap."""
    response = await outbound.fetch(agent_type, "GET", url, timeout=timeout_s)
    if response.status_code >= 400:
        raise ValueError(f"the source answered {response.status_code}")
    return numbers(response.json())
