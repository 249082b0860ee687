"""Agent hosts in the chart (`agentHosts`): each a Deployment running `vsm-agent run <modules>`
with the services' broker, identity and keys, scaled by KEDA on its types' partition queues
when asked, and refused by the schema when an entry is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.chart import (
    COMPONENTS,
    HOSTS,
    component_of,
    env_of,
    lint,
    lint_problems,
    notes,
    objects,
    render,
    render_error,
)

Render = list[dict[str, Any]]
HOST_WORKLOADS = ("host-ledger", "host-research")


def container(manifests: Render, name: str) -> dict[str, Any]:
    deployment = objects(manifests, "Deployment")[f"vsm-{name}"]
    first: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return first


def test_each_host_is_a_deployment_running_vsm_agent_on_its_modules(hosts_render: Render) -> None:
    deployments = objects(hosts_render, "Deployment")
    assert {f"vsm-{name}" for name in (*COMPONENTS, *HOST_WORKLOADS)} == set(deployments)
    research = container(hosts_render, "host-research")
    assert research["image"] == "vsm-operations:0.1.0"  # the vsm-agent script ships there
    assert research["command"] == ["vsm-agent", "run"]
    assert research["args"] == ["vsm_example_agents.researcher", "vsm_example_agents.csv_summary"]
    ledger = container(hosts_render, "host-ledger")
    assert ledger["image"] == "registry.example.com/ledger-agents:2.1.0"
    assert ledger["args"] == ["ledger.agents", "ledger.extra:Reconciler"]
    assert ledger["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}  # over `default`
    assert deployments["vsm-host-ledger"]["spec"]["replicas"] == 3
    annotations = deployments["vsm-host-research"]["metadata"]["annotations"]
    assert annotations["vsm/agent-types"] == "researcher,csv-summary"


def test_a_host_gets_the_environment_of_a_service(hosts_render: Render) -> None:
    operations = env_of(container(hosts_render, "operations"))
    for name in HOST_WORKLOADS:
        env = env_of(container(hosts_render, name))
        assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "vsm-broker",
            "key": "AMQP_URL",
        }
        assert env["VSM_NAMESPACE"]["value"] == "logistics"
        assert env["INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["HTTP_PORT"]["value"] == "8080"
        for key in ("VSM_SIGNING_KEYS", "VSM_LOG_KEYS"):
            assert env[key]["valueFrom"] == operations[key]["valueFrom"], (name, key)
        # operations and every host agree on the partitions of an offered type
        assert env["S1_TYPE_PARTITIONS"]["value"] == "6"
    assert operations["S1_TYPE_PARTITIONS"]["value"] == "6"
    research = env_of(container(hosts_render, "host-research"))
    assert research["AGENT_TYPES"]["value"] == '["researcher","csv-summary"]'
    assert "ANTHROPIC_API_KEY" in research  # the LLM client it lends its agents
    ledger = env_of(container(hosts_render, "host-ledger"))
    assert ledger["LOG_LEVEL"]["value"] == "DEBUG"
    assert ledger["LOG_FORMAT"]["value"] == "json"
    assert ledger["LEDGER_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "ledger", "key": "dsn"}
    assert "ANTHROPIC_API_KEY" not in ledger  # secretEnv: []


def test_operations_gets_the_type_partitions_by_default(default_render: Render) -> None:
    env = env_of(container(default_render, "operations"))
    assert env["S1_TYPE_PARTITIONS"]["value"] == "4"
    queen = env_of(container(default_render, "queen"))
    assert "S1_TYPE_PARTITIONS" not in queen


def test_keda_scales_a_host_on_its_types_partition_queues(hosts_render: Render) -> None:
    scaled = objects(hosts_render, "ScaledObject")
    assert set(scaled) == {"vsm-host-research"}  # ledger is not scaled, operations neither
    spec = scaled["vsm-host-research"]["spec"]
    assert spec["scaleTargetRef"]["name"] == "vsm-host-research"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    queues = [trigger["metadata"]["queueName"] for trigger in spec["triggers"]]
    assert queues == [
        f"logistics.vsm.s1.pool.{agent_type}.{k}"
        for agent_type in ("researcher", "csv-summary")
        for k in range(6)
    ]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["value"] == "20"
        auth = objects(hosts_render, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
        assert auth["spec"]["secretTargetRef"] == [
            {"parameter": "host", "name": "vsm-broker", "key": "KEDA_HOST"}
        ]
    research = objects(hosts_render, "Deployment")["vsm-host-research"]["spec"]
    assert "replicas" not in research  # KEDA owns the count
    broker = objects(hosts_render, "NetworkPolicy")["vsm-rabbitmq"]["spec"]["ingress"][0]
    keda = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    assert keda in broker["from"]  # KEDA reads the queue depths


def test_a_host_reaches_the_broker_and_is_scraped_and_budgeted(hosts_render: Render) -> None:
    workloads = sorted((*COMPONENTS, *HOST_WORKLOADS))
    broker = objects(hosts_render, "NetworkPolicy")["vsm-rabbitmq"]["spec"]["ingress"][0]
    selector = broker["from"][0]["podSelector"]["matchExpressions"][0]
    assert selector["values"] == workloads
    monitor = objects(hosts_render, "ServiceMonitor")["vsm"]["spec"]["selector"]
    assert monitor["matchExpressions"][0]["values"] == workloads
    services = objects(hosts_render, "Service")
    budgets = objects(hosts_render, "PodDisruptionBudget")
    policies = objects(hosts_render, "NetworkPolicy")
    for name in HOST_WORKLOADS:
        assert component_of(services[f"vsm-{name}"]) == name
        assert [p["name"] for p in services[f"vsm-{name}"]["spec"]["ports"]] == ["http", "metrics"]
        assert budgets[f"vsm-{name}"]["spec"]["maxUnavailable"] == 1
        probes = container(hosts_render, name)
        assert probes["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert probes["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    internet = [
        rule
        for rule in policies["vsm-host-research"]["spec"]["egress"]
        if "ipBlock" in rule["to"][0]
    ]
    assert internet  # the Anthropic API, like operations
    ledger = policies["vsm-host-ledger"]["spec"]["egress"]
    assert not [rule for rule in ledger if "ipBlock" in rule.get("to", [{}])[0]]


def test_a_host_down_is_alerted_like_a_service(hosts_render: Render) -> None:
    rules = objects(hosts_render, "PrometheusRule")["vsm"]["spec"]["groups"][0]["rules"]
    down = next(rule for rule in rules if rule["alert"] == "VsmServiceDown")["expr"]
    for name in HOST_WORKLOADS:
        assert f'absent(up{{namespace="vsm", service="vsm-{name}"}})' in down


def test_the_install_notes_list_the_hosts() -> None:
    text = notes(HOSTS)
    research = "vsm_example_agents.researcher vsm_example_agents.csv_summary"
    assert f"vsm-host-research: vsm-agent run {research}  (offers researcher, csv-summary)" in text
    assert "vsm-host-ledger: vsm-agent run ledger.agents ledger.extra:Reconciler" in text
    assert "Agent hosts" not in notes()


def test_no_hosts_by_default(default_render: Render) -> None:
    assert not [m for m in default_render if component_of(m).startswith("host-")]


@pytest.mark.parametrize(
    ("values", "where", "says"),
    [
        ({"research": {"types": ["researcher"], "replica": 2}}, "/agentHosts/research", "replica"),
        ({"Research_1": {"types": ["researcher"]}}, "invalid propertyName", "Research_1"),
        ({"research": {"replicas": -1}}, "/agentHosts/research/replicas", "minimum"),
        ({"research": {"types": ["Research.v1"]}}, "/agentHosts/research/types/0", "pattern"),
        ({"research": {"keda": {"minReplicas": 0}}}, "/agentHosts/research/keda/minReplicas", ""),
        ({"research": {"env": {"S1_TYPE_PARTITIONS": "8"}}}, "invalid propertyName", "S1_TYPE"),
        ({"research": {"command": []}}, "/agentHosts/research/command", ""),
    ],
)
def test_the_schema_refuses_a_bad_host(values: dict[str, Any], where: str, says: str) -> None:
    problems = lint_problems(lint({"agentHosts": values}))
    assert any(where in p and says in p for p in problems), problems
    assert "don't meet the specifications of the schema" in render_error({"agentHosts": values})


def test_the_schema_refuses_a_bad_partition_count() -> None:
    values = {"agentHostDefaults": {"typePartitions": 0}}
    problems = lint_problems(lint(values))
    assert any("/agentHostDefaults/typePartitions" in p for p in problems), problems


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"agentHosts": {"research": {"keda": {"enabled": True}}}},
            "agentHosts.research.keda.enabled scales on the partition queues of the host's "
            "agent types: list them in agentHosts.research.types",
        ),
        (
            {
                "components": {"operations": {"enabled": False}},
                "agentHosts": {"research": {"types": ["researcher"]}},
            },
            "agentHosts register with operations",
        ),
    ],
)
def test_contradictory_host_values_fail_with_what_to_change(
    values: dict[str, Any], message: str
) -> None:
    assert message in render_error(values)


def test_a_host_can_turn_off_keda_the_defaults_turn_on() -> None:
    values = {
        "agentHostDefaults": {"keda": {"enabled": True}},
        "agentHosts": {
            "research": {"types": ["researcher"]},
            "ledger": {"types": ["reconciler"], "keda": {"enabled": False}, "replicas": 2},
        },
    }
    manifests = render(values)
    assert set(objects(manifests, "ScaledObject")) == {"vsm-host-research"}
    assert objects(manifests, "Deployment")["vsm-host-ledger"]["spec"]["replicas"] == 2


def test_hosts_values_are_the_docs_example() -> None:
    """The example render names only keys the schema knows (lint is strict)."""
    assert lint_problems(lint(HOSTS)) == []
