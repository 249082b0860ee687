"""The scrape configuration prometheus-operator generates for the chart's ServiceMonitors,
with static targets standing in for Kubernetes' service discovery.

prometheus-operator turns each endpoint of a ServiceMonitor into one scrape job whose
relabelling keeps the selected Services' endpoints on the named port and gives every series
the target labels namespace, service, pod, container, job and endpoint
(pkg/prometheus/promcfg.go, generateServiceMonitorConfig, role `endpoints`, one shard).
Here each (Service, port) of the rendered chart becomes a static target carrying the
`__meta_kubernetes_*` labels that discovery would give it, so a real Prometheus applies
the same relabelling to real scrapes of a running system.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from tests.observability.prometheus import SCRAPE_INTERVAL, PrivatePrometheus

Manifest = dict[str, Any]
Address = Callable[[Manifest, str], str]
"""(Service, port name) -> the host:port serving it on this machine."""


def sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def selector_relabelling(selector: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Keep the endpoints of the Services the ServiceMonitor's selector selects."""
    for key in sorted(selector.get("matchLabels", {})):
        name = sanitize(key)
        yield {
            "action": "keep",
            "source_labels": [
                f"__meta_kubernetes_service_label_{name}",
                f"__meta_kubernetes_service_labelpresent_{name}",
            ],
            "regex": f"({selector['matchLabels'][key]});true",
        }
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression  # the only one the chart uses
        name = sanitize(expression["key"])
        yield {
            "action": "keep",
            "source_labels": [
                f"__meta_kubernetes_service_label_{name}",
                f"__meta_kubernetes_service_labelpresent_{name}",
            ],
            "regex": f"({'|'.join(expression['values'])});true",
        }


def target_relabelling(port: str) -> list[dict[str, Any]]:
    """The port filter and the target labels, in the operator's order."""
    kind = ["__meta_kubernetes_endpoint_address_target_kind"]
    kind += ["__meta_kubernetes_endpoint_address_target_name"]
    return [
        {
            "action": "keep",
            "source_labels": ["__meta_kubernetes_endpoint_port_name"],
            "regex": port,
        },
        {
            "source_labels": kind,
            "separator": ";",
            "regex": "Node;(.*)",
            "replacement": "${1}",
            "target_label": "node",
        },
        {
            "source_labels": kind,
            "separator": ";",
            "regex": "Pod;(.*)",
            "replacement": "${1}",
            "target_label": "pod",
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {
            "action": "drop",
            "source_labels": ["__meta_kubernetes_pod_phase"],
            "regex": "(Failed|Succeeded)",
        },
        {
            "source_labels": ["__meta_kubernetes_service_name"],
            "target_label": "job",
            "replacement": "${1}",
        },
        {"target_label": "endpoint", "replacement": port},
        {
            "source_labels": ["__address__"],
            "target_label": "__tmp_hash",
            "modulus": 1,
            "action": "hashmod",
        },
        {"source_labels": ["__tmp_hash"], "regex": "0", "action": "keep"},
    ]


def discovered(services: list[Manifest], namespace: str, address: Address) -> list[dict[str, Any]]:
    """One static target per port of every Service, labelled as endpoints discovery would."""
    targets = []
    for service in services:
        name = service["metadata"]["name"]
        component = service["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = f"{name}-5d9c7b6f4-x2x7q"
        labels = {
            "__meta_kubernetes_namespace": namespace,
            "__meta_kubernetes_service_name": name,
            "__meta_kubernetes_endpoint_address_target_kind": "Pod",
            "__meta_kubernetes_endpoint_address_target_name": pod,
            "__meta_kubernetes_pod_name": pod,
            "__meta_kubernetes_pod_container_name": component,
            "__meta_kubernetes_pod_phase": "Running",
        }
        for key, value in service["metadata"]["labels"].items():
            labels[f"__meta_kubernetes_service_label_{sanitize(key)}"] = value
            labels[f"__meta_kubernetes_service_labelpresent_{sanitize(key)}"] = "true"
        for port in service["spec"]["ports"]:
            port_labels = {**labels, "__meta_kubernetes_endpoint_port_name": port["name"]}
            targets.append({"targets": [address(service, port["name"])], "labels": port_labels})
    return targets


def scrape_configs(
    monitor: Manifest, services: list[Manifest], address: Address
) -> list[dict[str, Any]]:
    """The operator's scrape jobs for one ServiceMonitor (one per endpoint)."""
    namespace = monitor["metadata"]["namespace"]
    jobs = []
    for index, endpoint in enumerate(monitor["spec"]["endpoints"]):
        relabelling = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
        relabelling += list(selector_relabelling(monitor["spec"]["selector"]))
        relabelling += target_relabelling(endpoint["port"])
        jobs.append(
            {
                "job_name": f"serviceMonitor/{namespace}/{monitor['metadata']['name']}/{index}",
                "honor_labels": endpoint.get("honorLabels", False),
                "scrape_interval": SCRAPE_INTERVAL,  # the chart's 30 s, shortened for the test
                "metrics_path": endpoint["path"],
                "static_configs": discovered(services, namespace, address),
                "relabel_configs": relabelling,
            }
        )
    return jobs


class OperatorPrometheus(PrivatePrometheus):
    """A private Prometheus scraping as prometheus-operator would configure it, with rules."""

    def __init__(self, scrape: list[dict[str, Any]], groups: list[dict[str, Any]]) -> None:
        super().__init__({})
        self.scrape = scrape
        (self.directory / "rules.yml").write_text(json.dumps({"groups": groups}))

    def configuration(self) -> str:
        document = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(self.directory / "rules.yml")],
            "scrape_configs": self.scrape,
        }
        return json.dumps(document, indent=2)

    def wait_targets(self, count: int, timeout: float = 60) -> None:
        """Until `count` targets survive the relabelling, each scraped once (static targets
        reach the scrape manager a few seconds after start-up)."""
        deadline = time.monotonic() + timeout
        while True:
            active = self.api("targets", state="active")["activeTargets"]
            scraped = [t for t in active if t["health"] == "up"]
            if len(active) == count and len(scraped) == count:
                return
            if time.monotonic() > deadline:
                states = [f"{t['scrapeUrl']}: {t['health']} {t['lastError']}" for t in active]
                raise TimeoutError(f"{len(active)} of {count} targets:\n" + "\n".join(states))
            time.sleep(0.5)
