"""Every rendered object is valid Kubernetes, and deploy/k8s is what the chart renders."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.chart import K8S, KUBERNETES_VERSION, renderer

# Kinds of custom resources (prometheus-operator, KEDA, the RabbitMQ Cluster Operator):
# kubernetes-validate has no schema for them; the tests of tests/deploy check their fields.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}
OPERATOR_KINDS = {"RabbitmqCluster"}


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(
            "kubernetes-validate is not installed: it belongs in the root pyproject's dev group "
            '("kubernetes-validate==1.37.0"); for a one-off: uv pip install kubernetes-validate'
        )
    return kubernetes_validate


def validate_strictly(manifests: list[dict[str, Any]]) -> set[str]:
    """Validate each object against Kubernetes' schema, unknown fields refused; kinds skipped."""
    validator = kubernetes_validate()
    skipped = set()
    for obj in manifests:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            validator.validate(obj, KUBERNETES_VERSION, strict=True)
        except validator.SchemaNotFoundError:
            assert obj["kind"] in CUSTOM_KINDS | OPERATOR_KINDS, f"no schema for {name}"
            skipped.add(obj["kind"])
        except validator.ValidationError as error:
            pytest.fail(f"{name} is not valid Kubernetes {KUBERNETES_VERSION}: {error.message}")
    return skipped


def test_every_rendered_object_validates_strictly(any_render: list[dict[str, Any]]) -> None:
    validate_strictly(any_render)


def test_only_custom_resources_go_without_a_schema(
    full_render: list[dict[str, Any]], cluster_render: list[dict[str, Any]]
) -> None:
    assert validate_strictly(full_render) == CUSTOM_KINDS
    assert validate_strictly(cluster_render) - CUSTOM_KINDS == OPERATOR_KINDS


def test_the_validator_refuses_an_unknown_field(default_render: list[dict[str, Any]]) -> None:
    """Guards the guard: strict validation really rejects what Kubernetes would not know."""
    deployment = next(m for m in default_render if m["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 1}}
    validator = kubernetes_validate()
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, KUBERNETES_VERSION, strict=True)


def test_committed_manifests_are_what_the_chart_renders() -> None:
    diffs = renderer().stale_files(renderer().manifest_files())
    assert not diffs, (
        "deploy/k8s/ differs from the chart's render; run `uv run scripts/render-manifests`.\n"
        + "".join(diffs.values())[:4000]
    )


def test_committed_manifests_validate_strictly() -> None:
    documents = [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    assert {d["kind"] for d in documents} >= {"Namespace", "Deployment", "StatefulSet"}
    validate_strictly(documents)
    namespaced = [d for d in documents if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"vsm"}
