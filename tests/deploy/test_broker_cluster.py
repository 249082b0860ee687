"""The production broker: a RabbitmqCluster for the RabbitMQ Cluster Operator, every node's
URL given to the services, or an external broker by several URLs.

No registry package ships the RabbitmqCluster CRD's schema (kubernetes-validate knows only
Kubernetes' own kinds), so its shape is checked here against the fields of
rabbitmq.com/v1beta1 the chart uses, unknown ones refused, as the operator's CRD types them.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.deploy.chart import (
    COMPONENTS,
    component_of,
    objects,
    render,
    render_error,
    secret_value,
)

Render = list[dict[str, Any]]
NODES = [f"vsm-rabbitmq-server-{i}.vsm-rabbitmq-nodes.vsm.svc:5672" for i in range(3)]
OBJECT = {"type": "object"}
QUANTITY = {"type": ["string", "integer"]}
RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "requests": {"type": "object", "additionalProperties": QUANTITY},
        "limits": {"type": "object", "additionalProperties": QUANTITY},
    },
}
# The subset of the CRD's openAPIV3Schema (spec of rabbitmq.com/v1beta1 RabbitmqCluster)
# that the chart renders.
RABBITMQ_CLUSTER_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["replicas", "image", "secretBackend"],
    "properties": {
        "replicas": {"type": "integer", "minimum": 0},
        "image": {"type": "string"},
        "resources": RESOURCES,
        "persistence": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"storage": QUANTITY, "storageClassName": {"type": "string"}},
        },
        "secretBackend": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "externalSecret": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "minLength": 1}},
                }
            },
        },
        "rabbitmq": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"additionalConfig": {"type": "string", "maxLength": 100000}},
        },
        "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0},
        "affinity": OBJECT,
        "tolerations": {"type": "array", "items": OBJECT},
        "override": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"statefulSet": OBJECT, "service": OBJECT},
        },
    },
}


def test_cluster_mode_makes_a_rabbitmq_cluster_and_no_statefulset(cluster_render: Render) -> None:
    assert not objects(cluster_render, "StatefulSet")
    (cluster,) = objects(cluster_render, "RabbitmqCluster").values()
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"
    jsonschema.validate(cluster["spec"], RABBITMQ_CLUSTER_SPEC)
    spec = cluster["spec"]
    assert spec["replicas"] == 3
    assert spec["image"] == "rabbitmq:4.3-management"
    assert "cluster_partition_handling = pause_minority" in spec["rabbitmq"]["additionalConfig"]
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_the_shape_check_refuses_an_unknown_field(cluster_render: Render) -> None:
    (cluster,) = objects(cluster_render, "RabbitmqCluster").values()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**cluster["spec"], "replica": 3}, RABBITMQ_CLUSTER_SPEC)


def test_the_services_get_every_node_and_the_operator_the_charts_user(
    cluster_render: Render,
) -> None:
    (cluster,) = objects(cluster_render, "RabbitmqCluster").values()
    secrets = objects(cluster_render, "Secret")
    user = secrets[cluster["spec"]["secretBackend"]["externalSecret"]["name"]]
    data = user["stringData"]
    assert (data["username"], data["password"]) == ("vsm", "a-cluster-password")
    assert "default_pass = a-cluster-password" in data["default_user.conf"]
    assert (data["provider"], data["type"], data["port"]) == ("rabbitmq", "rabbitmq", "5672")
    urls = secret_value(secrets["vsm-broker"], "AMQP_URL").split(",")
    assert urls == [f"amqp://vsm:a-cluster-password@{node}/" for node in NODES]
    keda = secret_value(secrets["vsm-broker"], "KEDA_HOST")
    assert keda == "amqp://vsm:a-cluster-password@vsm-rabbitmq.vsm.svc:5672/"


def test_the_cluster_is_reached_monitored_and_kept_available(cluster_render: Render) -> None:
    operator_pods = {
        "app.kubernetes.io/name": "vsm-rabbitmq",
        "app.kubernetes.io/component": "rabbitmq",
    }
    for policy in objects(cluster_render, "NetworkPolicy").values():
        if component_of(policy) in COMPONENTS:
            broker = policy["spec"]["egress"][1]
            assert broker["to"] == [{"podSelector": {"matchLabels": operator_pods}}]
    policy = objects(cluster_render, "NetworkPolicy")["vsm-rabbitmq"]["spec"]
    assert policy["podSelector"]["matchLabels"] == operator_pods
    assert policy["policyTypes"] == ["Ingress"]
    ports = [{p["port"] for p in rule["ports"]} for rule in policy["ingress"]]
    assert ports == [{5672}, {15692}, {15672}, {4369, 6000, 25672, 35672}]
    budget = objects(cluster_render, "PodDisruptionBudget")["vsm-rabbitmq"]["spec"]
    assert budget == {"maxUnavailable": 1, "selector": {"matchLabels": operator_pods}}
    monitor = objects(cluster_render, "ServiceMonitor")["vsm-rabbitmq"]["spec"]
    assert monitor["selector"]["matchLabels"] == operator_pods


def test_an_external_broker_by_several_urls() -> None:
    urls = "amqp://u:p@rabbit-0:5672/,amqps://u:p@rabbit-1:5671/"
    values = {"rabbitmq": {"enabled": False}, "broker": {"external": {"url": urls}}}
    secret = objects(render(values), "Secret")["vsm-broker"]
    assert secret_value(secret, "AMQP_URL") == urls
    assert secret_value(secret, "KEDA_HOST") == "amqp://u:p@rabbit-0:5672/"
    bad = {"rabbitmq": {"enabled": False}, "broker": {"external": {"url": "amqp://a/,http://b/"}}}
    assert "schema" in render_error(bad)
