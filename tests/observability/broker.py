"""A private RabbitMQ node with its Prometheus plugin on, so its own metrics can be scraped.

The shared test broker (tests/support/rabbitmq.py) runs without plugins; this one adds
`rabbitmq_prometheus` on a free loopback port, as the bundled chart and compose brokers
have it on 15692.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.rabbitmq import PrivateRabbitMQ, free_ports


class MonitoredRabbitMQ(PrivateRabbitMQ):
    def __init__(self) -> None:
        super().__init__()
        (self.metrics_port,) = free_ports(1)

    @property
    def metrics_address(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def _prepare(self) -> Path:
        directory = super()._prepare()
        (directory / "enabled_plugins").write_text("[rabbitmq_prometheus].\n")
        with (directory / "rabbitmq.conf").open("a") as conf:
            conf.write(
                f"prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {self.metrics_port}\n"
            )
        return directory
