"""`METRICS_PORT`: a request that arrives there gets `GET /metrics` and nothing else; one that
arrives on the app's own port is the app's (whatever it asks of a scraper there)."""

from __future__ import annotations

import httpx
import pytest
from litestar import Litestar, get
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from vsm.kit.http import metrics_port
from vsm.kit.settings import ServiceSettings

PORT = 9464


@get("/metrics", sync_to_thread=False)
def app_route() -> str:
    return "the app's own /metrics"


def client(port: int) -> httpx.AsyncClient:
    registry = CollectorRegistry()
    Counter("vsm_seen", "a counter", registry=registry).inc()
    app = metrics_port(Litestar([app_route]), registry, PORT)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://127.0.0.1:{port}"
    )


async def test_the_metrics_port_serves_only_the_metrics() -> None:
    async with client(PORT) as scraper:
        metrics = await scraper.get("/metrics")
        assert metrics.status_code == 200
        assert "vsm_seen_total 1.0" in metrics.text
        assert metrics.headers["content-type"].startswith("text/plain; version=")
        assert (await scraper.head("/metrics")).status_code == 200
        for path in ("/", "/api/vsm/status", "/metrics/x", "/healthz"):
            refused = await scraper.get(path)
            assert refused.status_code == 404
            assert refused.text == "this port serves GET /metrics only\n"
        assert (await scraper.post("/metrics")).status_code == 404


async def test_the_app_port_is_the_app() -> None:
    async with client(8000) as other:
        assert (await other.get("/metrics")).text == "the app's own /metrics"


def test_the_metrics_port_must_differ_from_the_http_port() -> None:
    with pytest.raises(ValidationError, match="METRICS_PORT must differ from HTTP_PORT"):
        ServiceSettings(http_port=9464, metrics_port=9464)
    assert ServiceSettings().metrics_port is None
