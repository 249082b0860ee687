"""What the chart enforces around the API and the agents: tokens, the metrics port, the
gateway's hosts and origins, the agents' egress allow-list, and the `helm test` hook."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.chart import (
    COMPONENTS,
    component_of,
    env_of,
    objects,
    render,
    render_error,
    renderer,
    secret_value,
)
from tests.deploy.test_manifests import validate_strictly

Render = list[dict[str, Any]]


def container(manifests: Render, name: str) -> dict[str, Any]:
    deployment = objects(manifests, "Deployment")[f"vsm-{name}"]
    found: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def test_a_token_is_generated_unless_one_is_given(default_render: Render) -> None:
    token = secret_value(objects(default_render, "Secret")["vsm-secrets"], "MCP_AUTH_TOKEN")
    assert len(token) == 40
    assert token.isalnum()
    other = secret_value(objects(render(), "Secret")["vsm-secrets"], "MCP_AUTH_TOKEN")
    assert other != token  # random per install (upgrades read it back with lookup)
    given = render({"secrets": {"mcpAuthToken": "a-token-of-my-own"}})
    assert secret_value(objects(given, "Secret")["vsm-secrets"], "MCP_AUTH_TOKEN") == (
        "a-token-of-my-own"
    )
    existing = render({"secrets": {"existingSecret": "mine"}})
    assert "vsm-secrets" not in objects(existing, "Secret")  # nothing generated beside it


def test_the_token_lists_are_comma_separated_and_refuse_commas_inside() -> None:
    assert "don't meet" in render_error({"secrets": {"readTokens": ["short"]}})
    assert "don't meet" in render_error({"secrets": {"readTokens": ["a-long-token,with-a-comma"]}})


def test_every_component_serves_metrics_on_a_port_of_its_own(default_render: Render) -> None:
    for name in COMPONENTS:
        env = env_of(container(default_render, name))
        assert env["METRICS_PORT"]["value"] == "9464"
        assert env["HTTP_PORT"]["value"] == "8080"
    assert "don't meet" in render_error({"default": {"metricsPort": 8080}})


def test_the_gateway_answers_its_service_names_loopback_and_the_ingress_hosts(
    default_render: Render, full_render: Render
) -> None:
    env = env_of(container(default_render, "mcp-gateway"))
    hosts = json.loads(env["MCP_ALLOWED_HOSTS"]["value"])
    assert {"localhost:*", "127.0.0.1:*", "vsm-mcp-gateway:*"} <= set(hosts)
    assert "vsm-mcp-gateway.vsm.svc.cluster.local:*" in hosts
    origins = json.loads(env["MCP_ALLOWED_ORIGINS"]["value"])
    assert origins == ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    full = env_of(container(full_render, "mcp-gateway"))
    assert "vsm.example.com" in json.loads(full["MCP_ALLOWED_HOSTS"]["value"])
    assert "https://vsm.example.com" in json.loads(full["MCP_ALLOWED_ORIGINS"]["value"])
    extra = {"hosts": ["vsm.internal:*"], "origins": ["https://ops.example.com"]}
    chosen = render({"components": {"mcp-gateway": {"enabled": True, "access": extra}}})
    env = env_of(container(chosen, "mcp-gateway"))
    assert "vsm.internal:*" in json.loads(env["MCP_ALLOWED_HOSTS"]["value"])
    assert "https://ops.example.com" in json.loads(env["MCP_ALLOWED_ORIGINS"]["value"])
    for name in set(COMPONENTS) - {"mcp-gateway"}:
        assert "MCP_ALLOWED_HOSTS" not in env_of(container(full_render, name))


def test_operations_gets_the_egress_allow_list(default_render: Render, full_render: Render) -> None:
    env = env_of(container(full_render, "operations"))
    # JSON lists, as the operations settings (pydantic list[str]) read them.
    assert json.loads(env["EGRESS_ALLOWED_URLS"]["value"]) == [
        "https://api.example.com/v1/",
        "https://status.example.org/",
    ]
    assert json.loads(env["EGRESS_ALLOWED_PRIVATE"]["value"]) == ["inventory.shop.svc:8080"]
    assert "EGRESS_ALLOWED_URLS" not in env_of(container(default_render, "operations"))
    for name in set(COMPONENTS) - {"operations"}:
        assert "EGRESS_ALLOWED_URLS" not in env_of(container(full_render, name))


@pytest.mark.parametrize(
    "egress",
    [
        {"allowedUrls": ["api.example.com/v1"]},
        {"allowedUrls": ["https://api.example.com/v1?key=1"]},
        {"allowedPrivate": ["127.0.0.1"]},
        {"allowedPrivate": ["http://127.0.0.1:8007"]},
        {"allowedHosts": []},
    ],
)
def test_the_schema_refuses_a_malformed_egress_entry(egress: dict[str, Any]) -> None:
    values = {"components": {"operations": {"enabled": True, "egress": egress}}}
    assert "schema" in render_error(values)


def test_the_chart_owned_variables_stay_out_of_env() -> None:
    for name in ("METRICS_PORT", "EGRESS_ALLOWED_URLS", "MCP_ALLOWED_HOSTS", "VSM_LOG_KEYS"):
        values = {"components": {"queen": {"enabled": True, "env": {name: "x"}}}}
        assert name in render_error(values)


def test_the_helm_test_pod_checks_every_component_and_one_authenticated_call(
    full_render: Render,
) -> None:
    hooks = [m for m in full_render if "helm.sh/hook" in m["metadata"].get("annotations", {})]
    assert {(m["kind"], m["metadata"]["annotations"]["helm.sh/hook"]) for m in hooks} == {
        ("Pod", "test"),
        ("NetworkPolicy", "test"),
    }
    validate_strictly(hooks)
    pod = objects(hooks, "Pod")["vsm-test"]["spec"]
    (tester,) = pod["containers"]
    assert tester["image"] == "vsm-mcp-gateway:0.1.0"  # the gateway's own image and Python
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert tester["securityContext"]["readOnlyRootFilesystem"] is True
    assert tester["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = env_of(tester)
    readyz = json.loads(env["READYZ"]["value"])
    assert readyz == {n: f"http://vsm-{n}.vsm.svc:8080/readyz" for n in COMPONENTS}
    assert env["STATUS_URL"]["value"] == "http://vsm-mcp-gateway.vsm.svc:8080/api/vsm/status"
    assert env["MCP_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "vsm-secrets"
    assert "Authorization" in tester["command"][2]
    policy = objects(hooks, "NetworkPolicy")["vsm-test"]["spec"]
    assert policy["ingress"] == []
    assert [rule["ports"] for rule in policy["egress"]][1] == [{"port": 8080, "protocol": "TCP"}]


def test_kubectl_manifests_leave_the_hook_out_and_the_token_to_the_operator() -> None:
    manifests = [m.obj for m in renderer().install_manifests(renderer().VALUES)]
    assert not [m for m in manifests if component_of(m) == "test"]
    assert objects(manifests, "Secret")["vsm-secrets"]["data"] == {}
