"""Renders of the chart, once per session: default values, every feature on, a child system,
the production broker, two agent hosts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.chart import CHILD, CLUSTER, FULL, HOSTS, RENDERS, render


@pytest.fixture(scope="session")
def default_render() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="session")
def full_render() -> list[dict[str, Any]]:
    return render(FULL)


@pytest.fixture(scope="session")
def child_render() -> list[dict[str, Any]]:
    return render(CHILD)


@pytest.fixture(scope="session")
def cluster_render() -> list[dict[str, Any]]:
    return render(CLUSTER)


@pytest.fixture(scope="session")
def hosts_render() -> list[dict[str, Any]]:
    return render(HOSTS)


@pytest.fixture(scope="session", params=list(RENDERS))
def any_render(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """Each of the renders in turn."""
    return render(RENDERS[request.param])
