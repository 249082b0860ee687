"""The chart lints, its schema refuses bad values, and what it renders is what operators need."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.chart import (
    CHART,
    CHILD,
    COMPONENTS,
    FULL,
    RENDERS,
    component_of,
    env_of,
    lint,
    lint_problems,
    objects,
    render,
    render_error,
    renderer,
    secret_value,
    workloads,
)

Render = list[dict[str, Any]]
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
INTERNET = {"queen", "intelligence", "operations", "telegram-gateway"}
TEST_POD = {"app.kubernetes.io/name": "vsm", "app.kubernetes.io/component": "test"}


@pytest.mark.parametrize("name", list(RENDERS))
def test_chart_lints_clean(name: str) -> None:
    report = lint(RENDERS[name])
    assert report["total_charts_linted"] == 1
    assert lint_problems(report) == []


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"replicaCount": 2}, "''"),
        ({"components": {"queeen": {"enabled": True}}}, "/components"),
        ({"components": {"queen": {"enabled": True, "replica": 2}}}, "/components/queen"),
        ({"default": {"image": {"registry": "ghcr.io"}}}, "/default/image"),
        ({"rabbitmq": {"persistence": {"enabled": False}}}, "/rabbitmq/persistence"),
        (
            {"default": {"securityContext": {"readOnlyRootFileSystem": True}}},
            "/default/securityContext",
        ),
        ({"monitoring": {"from": [{"namespaceSelectors": {}}]}}, "/monitoring/from/0"),
    ],
)
def test_schema_rejects_an_unknown_key(values: dict[str, Any], where: str) -> None:
    problems = lint_problems(lint(values))
    assert any("additional properties" in p and where in p for p in problems), problems
    assert "additional properties" in render_error(values)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"default": {"replicas": "two"}}, "/default/replicas"),
        ({"components": {"queen": {"enabled": "yes"}}}, "/components/queen/enabled"),
        ({"default": {"env": {"LOG_LEVEL": 10}}}, "/default/env/LOG_LEVEL"),
        ({"default": {"image": {"pullPolicy": "Sometimes"}}}, "/default/image/pullPolicy"),
        ({"default": {"resources": {"limits": {"cpu": "lots"}}}}, "/default/resources/limits"),
        ({"vsm": {"id": "logistics"}}, "/vsm/id"),
        ({"rabbitmq": {"securityContext": {"runAsUser": "root"}}}, "/rabbitmq/securityContext"),
        ({"keda": {"enabled": True, "maxReplicas": 0}}, "/keda/maxReplicas"),
        ({"components": {"queen": {"enabled": True, "secretEnv": ["AWS_KEY"]}}}, "secretEnv"),
    ],
)
def test_schema_rejects_a_mistyped_value(values: dict[str, Any], where: str) -> None:
    problems = lint_problems(lint(values))
    assert any(where in p for p in problems), problems
    assert "don't meet the specifications of the schema" in render_error(values)


def test_schema_keeps_the_chart_owned_variables_out_of_env() -> None:
    values = {"components": {"queen": {"enabled": True, "env": {"AMQP_URL": "amqp://x"}}}}
    assert "AMQP_URL" in render_error(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rabbitmq": {"enabled": False}}, "no broker"),
        ({"broker": {"external": {"url": "amqp://u:p@broker:5672/"}}}, "rabbitmq.enabled=false"),
        (
            {
                "components": {"mcp-gateway": {"enabled": True, "ingress": {"enabled": True}}},
                "secrets": {"generateMcpAuthToken": False},
            },
            "secrets.mcpAuthToken",
        ),
        (
            {"components": {"queen": {"enabled": True, "egress": {"allowedUrls": []}}}},
            "only operations",
        ),
        (
            {"components": {"control": {"enabled": True, "access": {"hosts": ["x"]}}}},
            "only mcp-gateway",
        ),
        ({"rabbitmq": {"mode": "cluster"}}, "set rabbitmq.auth.password"),
        (
            {"monitoring": {"prometheusRule": {"enabled": True}}},
            "monitoring.serviceMonitor.enabled=true",
        ),
    ],
)
def test_contradictory_values_fail_with_what_to_change(
    values: dict[str, Any], message: str
) -> None:
    assert message in render_error(values)


def test_one_deployment_and_service_per_component(default_render: Render) -> None:
    deployments = objects(default_render, "Deployment")
    services = objects(default_render, "Service")
    assert sorted(deployments) == sorted(f"vsm-{name}" for name in COMPONENTS)
    for name in COMPONENTS:
        deployment, service = deployments[f"vsm-{name}"], services[f"vsm-{name}"]
        pod = deployment["spec"]["template"]
        assert component_of(deployment) == name
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert pod["spec"]["containers"][0]["image"] == f"vsm-{name}:0.1.0"
        assert service["spec"]["ports"] == [
            {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"},
            {"name": "metrics", "port": 9464, "targetPort": "metrics", "protocol": "TCP"},
        ]


def test_a_component_can_be_switched_off() -> None:
    manifests = render({"components": {"telegram-gateway": {"enabled": False}}})
    names = {m["metadata"]["name"] for m in manifests}
    assert "vsm-telegram-gateway" not in names
    assert "vsm-queen" in names


def test_every_object_has_the_standard_labels(any_render: Render) -> None:
    for obj in any_render:
        labels = obj["metadata"].get("labels", {})
        missing = [label for label in STANDARD_LABELS if label not in labels]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/part-of"] == "vsm"


def test_every_container_has_probes_resources_and_the_restricted_context(
    any_render: Render,
) -> None:
    for name, workload in workloads(any_render).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == 10001, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["privileged"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, where
            assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container), where
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp, f"{where} has no writable /tmp"
            assert tmp[0]["name"] in empty_dirs, where


def test_components_probe_healthz_and_readyz(default_render: Render) -> None:
    for name, deployment in objects(default_render, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["ports"] == [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9464, "protocol": "TCP"},
        ]
        for probe, path in (
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}, name


def test_components_take_the_broker_and_identity_from_the_release(
    default_render: Render, full_render: Render
) -> None:
    broker = objects(default_render, "Secret")["vsm-broker"]
    assert secret_value(broker, "AMQP_URL") == "amqp://vsm:vsm@vsm-rabbitmq.vsm.svc:5672/"
    for manifests, vsm_id, namespace in (
        (default_render, "root", ""),
        (full_render, "root/logistics", "logistics"),
    ):
        for deployment in objects(manifests, "Deployment").values():
            env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
            assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": "vsm-broker",
                "key": "AMQP_URL",
            }
            assert env["VSM_ID"]["value"] == vsm_id
            assert env["VSM_NAMESPACE"]["value"] == namespace
            assert env["HTTP_HOST"]["value"] == "0.0.0.0"
            assert env["HTTP_PORT"]["value"] == "8080"
            assert env["INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_a_component_entry_overrides_the_default(full_render: Render) -> None:
    operations = objects(full_render, "Deployment")["vsm-operations"]
    env = env_of(operations["spec"]["template"]["spec"]["containers"][0])
    assert env["LOG_LEVEL"]["value"] == "DEBUG"
    assert env["LOG_FORMAT"]["value"] == "json"
    queen = objects(full_render, "Deployment")["vsm-queen"]
    assert env_of(queen["spec"]["template"]["spec"]["containers"][0])["LOG_LEVEL"]["value"] == (
        "INFO"
    )


def test_secrets_reach_only_the_components_that_use_them(full_render: Render) -> None:
    secret = objects(full_render, "Secret")["vsm-secrets"]
    assert secret_value(secret, "ANTHROPIC_API_KEY") == "sk-ant-test"
    assert secret_value(secret, "VSM_SIGNING_KEYS") == "k1:c2lnbmluZy1rZXktb2YtdGhlLXRlc3Q="
    assert secret_value(secret, "VSM_LOG_KEYS") == FULL["secrets"]["logKeys"]
    assert secret_value(secret, "VSM_READ_TOKENS") == "read-token-number-one,read-token-number-two"
    assert secret_value(secret, "VSM_OPERATE_TOKENS") == "operate-token-number-2"
    signing = {"VSM_SIGNING_KEYS", "VSM_LOG_KEYS"}  # every component signs, verifies, replays
    tokens = {"MCP_AUTH_TOKEN", "VSM_OPERATE_TOKENS", "VSM_READ_TOKENS"}
    expected = {
        "queen": {"ANTHROPIC_API_KEY"} | signing,
        "intelligence": {"ANTHROPIC_API_KEY"} | signing,
        "operations": {"ANTHROPIC_API_KEY"} | signing,
        "telegram-gateway": {"TELEGRAM_BOT_TOKEN"} | signing,
        "mcp-gateway": tokens | signing,
        "control": signing,
        "coordinator": signing,
    }
    for deployment in objects(full_render, "Deployment").values():
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
        from_secrets = {
            name: entry["valueFrom"]["secretKeyRef"]
            for name, entry in env.items()
            if entry.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "vsm-secrets"
        }
        assert set(from_secrets) == expected[component_of(deployment)]
        assert all(ref["optional"] is True for ref in from_secrets.values())


def test_unset_secrets_stay_out_of_the_secret(default_render: Render) -> None:
    assert set(objects(default_render, "Secret")["vsm-secrets"]["data"]) == {"MCP_AUTH_TOKEN"}
    quiet = render({"secrets": {"generateMcpAuthToken": False}})
    assert objects(quiet, "Secret")["vsm-secrets"]["data"] == {}


def test_existing_secrets_replace_the_charts(child_render: Render) -> None:
    assert set(objects(child_render, "Secret")) == set()
    for deployment in objects(child_render, "Deployment").values():
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
        assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "parent-broker",
            "key": "url",
        }
        refs = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in env.values()
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert refs - {"parent-broker"} <= {"logistics-secrets"}


def test_bundled_rabbitmq_is_a_single_node_statefulset(default_render: Render) -> None:
    statefulset = objects(default_render, "StatefulSet")["vsm-rabbitmq"]
    pod = statefulset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert statefulset["spec"]["replicas"] == 1
    assert container["image"] == "rabbitmq:4.3-management"
    assert "env" not in container  # credentials come as a file, not as variables
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/lib/rabbitmq"] == claim["metadata"]["name"]
    auth = objects(default_render, "Secret")["vsm-rabbitmq"]
    assert secret_value(auth, "91-vsm-auth.conf") == "default_user = vsm\ndefault_pass = vsm\n"
    config = objects(default_render, "ConfigMap")["vsm-rabbitmq"]["data"]["90-vsm.conf"]
    assert "vm_memory_high_watermark.absolute = 400MiB" in config


def test_a_child_release_beside_its_parent_as_deploy_readme_shows() -> None:
    child = {
        "vsm": {"id": "root/logistics", "namespace": "logistics", "parentNamespace": "vsm"},
        "rabbitmq": {"enabled": False},
        "broker": {"external": {"existingSecret": "vsm-broker", "ports": [5672]}},
        "components": {"telegram-gateway": {"enabled": False}},
    }
    manifests = [m.obj for m in renderer().render(child, release="logistics", namespace="vsm")]
    deployments = objects(manifests, "Deployment")
    assert len(deployments) == 6
    assert all(name.startswith("logistics-vsm-") for name in deployments)
    queen = env_of(deployments["logistics-vsm-queen"]["spec"]["template"]["spec"]["containers"][0])
    assert queen["AMQP_URL"]["valueFrom"]["secretKeyRef"]["name"] == "vsm-broker"
    assert queen["VSM_NAMESPACE"]["value"] == "logistics"
    assert queen["PARENT_NAMESPACE"]["value"] == "vsm"  # queen bridges vsm.recursive
    # The parent lets the child's pods reach its broker.
    peer = {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "logistics"}}}
    parent = render({"rabbitmq": {"extraIngressFrom": [peer]}})
    amqp = objects(parent, "NetworkPolicy")["vsm-rabbitmq"]["spec"]["ingress"][0]
    assert peer in amqp["from"]


def test_the_child_release_has_no_broker_of_its_own(child_render: Render) -> None:
    assert not objects(child_render, "StatefulSet")
    assert not [m for m in child_render if component_of(m) == "rabbitmq"]


def policy_for(manifests: Render, name: str) -> dict[str, Any]:
    return objects(manifests, "NetworkPolicy")[f"vsm-{name}"]["spec"]


def ports(rule: dict[str, Any]) -> set[Any]:
    return {p["port"] for p in rule["ports"]}


def test_every_pod_is_isolated_by_a_network_policy(any_render: Render) -> None:
    policies = objects(any_render, "NetworkPolicy").values()
    for name, workload in workloads(any_render).items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        selecting = [
            p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(selecting) == 1, name
        assert selecting[0]["spec"]["policyTypes"] == ["Ingress", "Egress"], name


def test_components_reach_only_dns_the_broker_and_where_allowed_the_internet(
    default_render: Render,
) -> None:
    for name in COMPONENTS:
        egress = policy_for(default_render, name)["egress"]
        assert ports(egress[0]) == {53}
        broker = egress[1]["to"][0]["podSelector"]["matchLabels"]
        assert broker["app.kubernetes.io/component"] == "rabbitmq"
        assert ports(egress[1]) == {5672}
        internet = [rule for rule in egress[2:] if "ipBlock" in rule["to"][0]]
        assert len(egress) == 2 + len(internet)
        if name in INTERNET:
            block = internet[0]["to"][0]["ipBlock"]
            assert block["cidr"] == "0.0.0.0/0"
            assert "10.0.0.0/8" in block["except"]
            assert ports(internet[0]) == {443}
        else:
            assert internet == [], name


def test_only_the_gateway_takes_ingress_besides_metrics_scrapes_and_helm_test(
    default_render: Render, full_render: Render
) -> None:
    monitoring = {"kubernetes.io/metadata.name": "monitoring"}
    tester = {"podSelector": {"matchLabels": {**TEST_POD, "app.kubernetes.io/instance": "vsm"}}}
    for manifests in (default_render, full_render):
        for name in COMPONENTS:
            rules = policy_for(manifests, name)["ingress"]
            scrape = rules[0]
            assert scrape["from"] == [{"namespaceSelector": {"matchLabels": monitoring}}]
            assert ports(scrape) == {"metrics"}  # the metrics port only, never the API's
            assert rules[-1] == {"from": [tester], "ports": [{"port": "http", "protocol": "TCP"}]}
            expected = 3 if name == "mcp-gateway" else 2
            assert len(rules) == expected, name
    gateway = policy_for(default_render, "mcp-gateway")["ingress"][1]
    ingress_nginx = {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert gateway["from"] == [{"namespaceSelector": {"matchLabels": ingress_nginx}}]
    assert ports(gateway) == {"http"}


def test_rabbitmq_takes_amqp_only_from_the_components(
    default_render: Render, full_render: Render
) -> None:
    rules = objects(default_render, "NetworkPolicy")["vsm-rabbitmq"]["spec"]["ingress"]
    amqp = rules[0]
    assert ports(amqp) == {"amqp"}
    assert len(amqp["from"]) == 1
    selector = amqp["from"][0]["podSelector"]
    assert selector["matchLabels"]["app.kubernetes.io/instance"] == "vsm"
    assert selector["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": sorted(COMPONENTS)}
    ]
    assert ports(rules[1]) == {"prometheus"}
    full = objects(full_render, "NetworkPolicy")["vsm-rabbitmq"]["spec"]["ingress"][0]
    keda = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    assert keda in full["from"]  # KEDA reads the queue depth when it scales operations


def test_the_child_reaches_its_parents_broker(child_render: Render) -> None:
    broker = policy_for(child_render, "queen")["egress"][1]
    assert broker["to"] == CHILD["broker"]["external"]["to"]
    assert ports(broker) == {5671, 5672}


def test_optional_objects_are_off_by_default(default_render: Render) -> None:
    kinds = {m["kind"] for m in default_render}
    optional = {"Ingress", "ServiceMonitor", "PrometheusRule", "ScaledObject", "RabbitmqCluster"}
    assert kinds.isdisjoint(optional | {"TriggerAuthentication"})


def test_mcp_gateway_ingress(full_render: Render) -> None:
    ingress = objects(full_render, "Ingress")["vsm-mcp-gateway"]["spec"]
    assert ingress["ingressClassName"] == "nginx"
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "vsm-mcp-gateway", "port": {"name": "http"}}}
    assert ingress["tls"] == FULL["components"]["mcp-gateway"]["ingress"]["tls"]


def test_service_monitors_scrape_every_component_and_rabbitmq(full_render: Render) -> None:
    monitors = objects(full_render, "ServiceMonitor")
    components = monitors["vsm"]["spec"]
    assert monitors["vsm"]["metadata"]["labels"]["release"] == "prom"
    (endpoint,) = components["endpoints"]
    assert endpoint["port"] == "metrics"  # the port without a token (the API's needs one)
    assert endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True  # the kit's `service` label is not renamed
    selected = components["selector"]["matchExpressions"][0]["values"]
    assert sorted(selected) == sorted(COMPONENTS)
    assert monitors["vsm-rabbitmq"]["spec"]["endpoints"][0]["port"] == "prometheus"


def test_keda_scales_operations_on_its_namespaced_queue(full_render: Render) -> None:
    scaled = objects(full_render, "ScaledObject")["vsm-operations"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "vsm-operations"
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == "logistics.vsm.operations.requests"
    auth = objects(full_render, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "vsm-broker", "key": "KEDA_HOST"}
    ]
    broker = objects(full_render, "Secret")["vsm-broker"]
    assert secret_value(broker, "KEDA_HOST") == "amqp://vsm:vsm@vsm-rabbitmq.vsm.svc:5672/"
    operations = objects(full_render, "Deployment")["vsm-operations"]["spec"]
    assert "replicas" not in operations  # KEDA owns the count; an upgrade must not reset it


def test_pod_disruption_budgets_cover_every_component(default_render: Render) -> None:
    budgets = objects(default_render, "PodDisruptionBudget")
    deployments = objects(default_render, "Deployment")
    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        assert budget["spec"]["maxUnavailable"] == 1
        selector = deployments[name]["spec"]["selector"]["matchLabels"]
        assert budget["spec"]["selector"]["matchLabels"] == selector


def test_dashboards_are_labelled_for_grafana_and_shipped_as_generated(
    default_render: Render,
) -> None:
    """Every generated dashboard is a ConfigMap the Grafana sidecar picks up, unchanged.

    Whether each panel's query returns data is tests/observability/test_prometheus.py's
    question (a real Prometheus scraping a running system)."""
    dashboards = {
        name: cm
        for name, cm in objects(default_render, "ConfigMap").items()
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1"
    }
    shipped = {
        file: json.loads(content)
        for configmap in dashboards.values()
        for file, content in configmap["data"].items()
    }
    generated = {
        path.name: json.loads(path.read_text()) for path in (CHART / "dashboards").glob("*.json")
    }
    assert shipped == generated
    for dashboard in shipped.values():
        assert dashboard["uid"]
        assert dashboard["title"]
        assert [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
