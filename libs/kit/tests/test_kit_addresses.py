"""Several broker addresses: how `AMQP_URL` is read, and which node each attempt goes to."""

from __future__ import annotations

import aio_pika
import pytest
from pydantic import ValidationError
from yarl import URL

from vsm.kit.addresses import BrokerAddresses, broker_urls
from vsm.kit.settings import ServiceSettings

NODES = "amqp://u:secret@rabbit-0:5672/, amqp://u:secret@rabbit-1:5673/,amqp://u:secret@rabbit-2/"


def test_one_url_is_read_as_it_is() -> None:
    assert broker_urls("amqp://guest:guest@127.0.0.1:5672/") == (
        "amqp://guest:guest@127.0.0.1:5672/",
    )


def test_several_urls_are_split_on_commas_and_trimmed() -> None:
    assert broker_urls(NODES) == (
        "amqp://u:secret@rabbit-0:5672/",
        "amqp://u:secret@rabbit-1:5673/",
        "amqp://u:secret@rabbit-2/",
    )


@pytest.mark.parametrize(
    ("value", "position"),
    [
        ("amqp://u:secret@rabbit-0/,", "2 of 2"),  # a trailing comma
        ("http://u:secret@rabbit-0/", "1 of 1"),  # not AMQP
        ("amqp://u:se,cret@rabbit-0/", "1 of 2"),  # a comma inside a password, not %2C
        ("amqp://u:secret@rabbit-0:port/", "1 of 1"),
        ("amqp:///", "1 of 1"),  # no host
    ],
)
def test_a_bad_address_is_named_by_its_position_and_never_shown(value: str, position: str) -> None:
    with pytest.raises(ValueError, match=f"broker address {position} ") as raised:
        broker_urls(value)
    assert "secret" not in str(raised.value)


def test_the_settings_refuse_a_bad_address_without_showing_the_password() -> None:
    with pytest.raises(ValidationError, match="amqp_url") as raised:
        ServiceSettings(amqp_url="amqp://u:secret@rabbit-0/,amqps://u:secret@/")
    assert "broker address 2 of 2" in str(raised.value)
    assert "secret" not in str(raised.value)
    assert ServiceSettings(amqp_url=NODES).amqp_url == NODES


def test_the_addresses_print_without_passwords() -> None:
    assert str(BrokerAddresses(NODES)) == (
        "amqp://u:***@rabbit-0:5672/,amqp://u:***@rabbit-1:5673/,amqp://u:***@rabbit-2/"
    )


async def test_each_close_points_the_next_attempt_at_the_next_node_round_the_list() -> None:
    addresses = BrokerAddresses(NODES)
    # As aio-pika and FastStream build it: the first URL with the client's options added.
    connection = aio_pika.Connection(
        URL("amqp://u:secret@rabbit-0:5672/").update_query(reconnect_interval=1)
    )
    visited = []
    for _ in range(4):
        addresses.next_node(connection, ConnectionRefusedError())
        visited.append(connection.url.host)
    assert visited == ["rabbit-1", "rabbit-2", "rabbit-0", "rabbit-1"]
    assert connection.url == URL("amqp://u:secret@rabbit-1:5673/")


async def test_one_node_is_never_left() -> None:
    url = URL("amqp://guest:guest@127.0.0.1:5672/?heartbeat=30")
    connection = aio_pika.Connection(url)
    BrokerAddresses(str(url)).next_node(connection, ConnectionResetError())
    assert connection.url is url
