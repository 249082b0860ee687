"""The chart under test, rendered by Helm's own engine, and lookups over what it renders.

Rendering goes through scripts/render-manifests (the generator of deploy/k8s), so the tests
and the committed manifests share one code path. A missing Helm engine fails the test.
"""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "vsm"
K8S = ROOT / "deploy" / "k8s"
SCRIPT = ROOT / "scripts" / "render-manifests"
KUBERNETES_VERSION = "1.30.0"
RELEASE = "vsm"
NAMESPACE = "vsm"
COMPONENTS = (
    "queen",
    "intelligence",
    "control",
    "coordinator",
    "operations",
    "telegram-gateway",
    "mcp-gateway",
)

# Every optional feature on, and values that differ from the defaults where it shows.
FULL: dict[str, Any] = {
    "vsm": {"id": "root/logistics", "namespace": "logistics", "parentNamespace": "vsm"},
    "secrets": {
        "anthropicApiKey": "sk-ant-test",
        "telegramBotToken": "123:test",
        "mcpAuthToken": "mcp-test",
        "operateTokens": ["operate-token-number-2"],
        "readTokens": ["read-token-number-one", "read-token-number-two"],
        "signingKeys": "k1:c2lnbmluZy1rZXktb2YtdGhlLXRlc3Q=",
        "logKeys": "k0:b2xkLXNpZ25pbmcta2V5LW9mLXRoZS10ZXN0",
    },
    "components": {
        "mcp-gateway": {
            "enabled": True,
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "hosts": [
                    {"host": "vsm.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
                ],
                "tls": [{"secretName": "vsm-tls", "hosts": ["vsm.example.com"]}],
            },
        },
        "operations": {
            "enabled": True,
            "replicas": 2,
            "env": {"LOG_LEVEL": "DEBUG"},
            "egress": {
                "allowedUrls": ["https://api.example.com/v1/", "https://status.example.org/"],
                "allowedPrivate": ["inventory.shop.svc:8080"],
            },
        },
    },
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
    },
    "keda": {"enabled": True},
}
# A child system: its own release, no broker of its own, the parent's broker from a Secret.
CHILD: dict[str, Any] = {
    "vsm": {"id": "root/logistics", "namespace": "logistics", "parentNamespace": "vsm"},
    "rabbitmq": {"enabled": False},
    "broker": {
        "external": {
            "existingSecret": "parent-broker",
            "existingSecretKey": "url",
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "vsm"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/component": "rabbitmq"}},
                }
            ],
        }
    },
    "secrets": {"existingSecret": "logistics-secrets"},
}
# The production broker: a RabbitmqCluster of the RabbitMQ Cluster Operator.
CLUSTER: dict[str, Any] = {
    "rabbitmq": {"mode": "cluster", "auth": {"password": "a-cluster-password"}},
    "monitoring": {"serviceMonitor": {"enabled": True}},
    "keda": {"enabled": True},
}
# Two agent hosts (docs/agent-hosts.md): one on the operations image scaled by KEDA, one on an
# image of its own with extra environment, no internet and a type partition count of 6.
HOSTS: dict[str, Any] = {
    "vsm": {"namespace": "logistics"},
    "secrets": {"signingKeys": "k1:c2lnbmluZy1rZXktb2YtdGhlLXRlc3Q="},
    "agentHostDefaults": {"typePartitions": 6},
    "agentHosts": {
        "research": {
            "args": ["vsm_example_agents.researcher", "vsm_example_agents.csv_summary"],
            "types": ["researcher", "csv-summary"],
            "keda": {"enabled": True, "maxReplicas": 3},
        },
        "ledger": {
            "image": {"repository": "registry.example.com/ledger-agents", "tag": "2.1.0"},
            "command": ["vsm-agent", "run"],
            "args": ["ledger.agents", "ledger.extra:Reconciler"],
            "types": ["reconciler"],
            "replicas": 3,
            "env": {"LOG_LEVEL": "DEBUG"},
            "extraEnv": [
                {
                    "name": "LEDGER_DSN",
                    "valueFrom": {"secretKeyRef": {"name": "ledger", "key": "dsn"}},
                }
            ],
            "resources": {"limits": {"memory": "1Gi"}},
            "secretEnv": [],
            "networkPolicy": {"internetEgress": False},
        },
    },
    "monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
}
RENDERS: dict[str, dict[str, Any] | None] = {
    "default": None,
    "full": FULL,
    "child": CHILD,
    "cluster": CLUSTER,
    "hosts": HOSTS,
}


@cache
def renderer() -> ModuleType:
    """scripts/render-manifests as a module (its file name is not importable as is)."""
    loader = importlib.machinery.SourceFileLoader("render_manifests", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module


def helm() -> Any:
    """helm_python, or a failed test that says how to install it."""
    script = renderer()
    try:
        return script.helm()
    except script.HelmEngineMissing as error:
        pytest.fail(str(error))


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    helm()
    return [m.obj for m in renderer().render(values, release=RELEASE, namespace=NAMESPACE)]


def notes(values: dict[str, Any] | None = None) -> str:
    """The NOTES.txt `helm install` prints for `values`."""
    with helm().Chart.load(str(CHART)) as chart:
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return str(files["vsm/templates/NOTES.txt"])


def render_error(values: dict[str, Any]) -> str:
    """The message of the error Helm raises rendering `values` (fails if it renders)."""
    engine = helm()
    with pytest.raises(engine.HelmError) as caught:
        renderer().render(values, release=RELEASE, namespace=NAMESPACE)
    return str(caught.value)


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    report: dict[str, Any] = helm().lint(
        str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBERNETES_VERSION}"
    )
    return report


def lint_problems(report: dict[str, Any]) -> list[str]:
    """Errors and warnings (severity 2 and 3) of a lint report."""
    messages = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    return messages + list(report["errors"])


def objects(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """name -> object, for every object of `kind`."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def workloads(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return objects(manifests, "Deployment") | objects(manifests, "StatefulSet")


def component_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def secret_value(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()
