"""Reading an event log back: every entry verifies under the signing or the log keys, or it is
refused with an error naming it; the history (format 1, unsigned) only before newer entries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import CollectorRegistry

from vsm.kit.deadletter import MessageGuard
from vsm.kit.eventlog import OFFSET_HEADER, LogKeys, LogReading, RefusedEntry
from vsm.kit.replay import ReplayGuard
from vsm.kit.settings import ServiceSettings
from vsm.kit.signing import KEY_ID_HEADER, SIGNATURE_HEADER, Keyring, canonical, parse_keyring

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()
STREAM = "vsm.system5.policies"
EXCHANGE = "t1.vsm.policy"


@dataclass
class Entry:
    """What aio-pika delivers from a stream, as far as the check reads it."""

    body: bytes
    headers: dict[str, Any]
    exchange: str = EXCHANGE
    routing_key: str = ""
    message_id: str = "m-1"
    user_id: str | None = None
    app_id: str | None = None
    redelivered: bool = False


def ring(text: str, role: str = "signing key") -> Keyring:
    keys = parse_keyring(text, role)
    assert keys is not None
    return keys


def body(n: int) -> bytes:
    return json.dumps({"id": f"e-{n}", "data": {"n": n}}).encode()


def signed(n: int, keys: Keyring) -> dict[str, Any]:
    return {**keys.sign(body(n), EXCHANGE, ""), OFFSET_HEADER: n}


def body_only(n: int, secret: bytes) -> dict[str, Any]:
    digest = hmac.digest(secret, canonical(json.loads(body(n))), hashlib.sha256)
    signature = base64.b64encode(digest).decode()
    return {KEY_ID_HEADER: "k1", SIGNATURE_HEADER: signature, OFFSET_HEADER: n}


def unsigned(n: int) -> dict[str, Any]:
    return {OFFSET_HEADER: n}


def reading(
    live: str = f"k2:{K2}", log_keys: str = "", *, history: bool = False, skip: str = ""
) -> LogReading:
    keys = ring(live)
    verifying = keys.joined(ring(log_keys, "log key")) if log_keys else keys
    logs = LogKeys(verifying, unsigned_history=history, skip=frozenset(filter(None, [skip])))
    guard = MessageGuard("queen", keys, ReplayGuard(300, 30), CollectorRegistry(), logs)
    return LogReading(guard, STREAM)


def check(log: LogReading, n: int, headers: dict[str, Any]) -> bool:
    return log.check(cast(AbstractIncomingMessage, Entry(body(n), headers, message_id=f"e-{n}")))


def test_a_key_retired_from_live_traffic_still_reads_the_log() -> None:
    log = reading(f"k2:{K2}", f"k1:{K1}")

    assert check(log, 0, signed(0, ring(f"k1:{K1}")))
    assert check(log, 1, signed(1, ring(f"k2:{K2}")))


def test_an_entry_under_a_removed_key_stops_the_reading_naming_the_entry_and_key() -> None:
    log = reading(f"k2:{K2}")

    with pytest.raises(RefusedEntry) as refused:
        check(log, 7, signed(7, ring(f"k1:{K1}")))

    message = str(refused.value)
    assert "log vsm.system5.policies, entry at offset 7 (message id 'e-7', key id 'k1')" in message
    assert "unknown key id 'k1'" in message
    assert "add it to VSM_LOG_KEYS" in message
    assert "VSM_LOG_SKIP=vsm.system5.policies@7" in message


def test_a_tampered_entry_is_refused_and_can_be_disowned_by_the_operator() -> None:
    headers = signed(3, ring(f"k2:{K2}"))
    tampered = Entry(body(3).replace(b'"n": 3', b'"n": 4'), headers, message_id="e-3")

    with pytest.raises(RefusedEntry, match="does not match"):
        reading().check(cast(AbstractIncomingMessage, tampered))
    skipping = reading(skip=f"{STREAM}@3")
    assert skipping.check(cast(AbstractIncomingMessage, tampered)) is False


def test_an_entry_moved_to_another_log_does_not_verify() -> None:
    moved = Entry(body(1), signed(1, ring(f"k2:{K2}")), exchange="t1.vsm.s1.registry")

    with pytest.raises(RefusedEntry, match="another destination"):
        reading().check(cast(AbstractIncomingMessage, moved))


def marker(log: LogReading, n: int, keys: Keyring, live: list[str]) -> None:
    """A service opened the log at offset `n`, signing with `keys`, `live` keys verifying."""
    message = cast(AbstractIncomingMessage, Entry(body(n), signed(n, keys)))
    assert log.check(message)
    log.opened(message, live)


def test_a_retired_key_vouches_only_for_what_it_signed_before_its_retirement() -> None:
    """A leaked retired key cannot add to a log: a marker signed with a newer key that
    leaves it out retires it there; an older replica's marker retires nothing newer."""
    log = reading(f"k2:{K2}", f"k1:{K1}")
    k1, k2 = ring(f"k1:{K1}"), ring(f"k2:{K2}")

    marker(log, 0, k1, ["k1"])
    assert check(log, 1, signed(1, k1))
    marker(log, 2, k1, ["k1", "k2"])  # rotation, step 1: k2 verifies too
    marker(log, 3, k2, ["k2", "k1"])  # step 2: k2 signs
    assert check(log, 4, signed(4, k2))
    assert check(log, 5, signed(5, k1))  # a replica not restarted yet: k1 still live
    marker(log, 6, k1, ["k1"])  # an older replica restarting: retires nothing newer
    assert check(log, 7, signed(7, k2))
    marker(log, 8, k2, ["k2"])  # step 3: k1 retired from live traffic
    assert check(log, 9, signed(9, k2))
    with pytest.raises(RefusedEntry, match="the marker at offset 8 leaves it out") as late:
        check(log, 10, signed(10, k1))
    assert "VSM_LOG_KEYS" not in str(late.value)  # k1 is known: adding it would not help
    with pytest.raises(RefusedEntry, match="after its retirement"):
        marker(log, 11, k1, ["k1"])  # nor can it bring itself back
    assert check(log, 5, signed(5, k1))  # read again from the start: judged the same
    log.opened(cast(AbstractIncomingMessage, Entry(body(12), unsigned(12))), [])  # says nothing
    with pytest.raises(RefusedEntry, match="after its retirement"):
        check(log, 13, signed(13, k1))


def test_unsigned_history_is_read_only_when_the_operator_says_so() -> None:
    with pytest.raises(RefusedEntry, match="VSM_LOG_UNSIGNED_HISTORY=accept"):
        check(reading(), 0, unsigned(0))

    log = reading(history=True)
    assert check(log, 0, unsigned(0))
    assert check(log, 1, unsigned(1))
    assert check(log, 2, signed(2, ring(f"k2:{K2}")))
    with pytest.raises(RefusedEntry, match="signed entries come before it"):
        check(log, 3, unsigned(3))  # after the first signed entry: a forgery
    assert check(log, 1, unsigned(1))  # read again from the start: still history


def test_body_only_signatures_are_history_until_the_first_bound_one() -> None:
    log = reading(f"k2:{K2}", f"k1:{K1}")

    assert check(log, 0, body_only(0, b"1" * 32))
    assert check(log, 1, signed(1, ring(f"k2:{K2}")))
    with pytest.raises(RefusedEntry, match="covers the body alone"):
        check(log, 2, body_only(2, b"1" * 32))
    assert check(log, 0, body_only(0, b"1" * 32))


def test_without_keys_every_entry_is_read() -> None:
    assert LogReading(None, STREAM).check(cast(AbstractIncomingMessage, Entry(body(0), {})))


def test_the_settings_name_the_log_keys_and_the_disowned_entries() -> None:
    settings = ServiceSettings(
        vsm_signing_keys=f"k2:{K2}",  # type: ignore[arg-type]
        vsm_log_keys=f"k1:{K1}",  # type: ignore[arg-type]
        vsm_log_skip=f" {STREAM}@3 , vsm.operations.registry@0",
    )
    log_keys = settings.log_keyring()

    assert log_keys is not None
    assert [kid for kid, _ in log_keys.keys] == ["k2", "k1"]
    assert settings.log_skip() == {f"{STREAM}@3", "vsm.operations.registry@0"}
    assert K1 not in repr(settings)
    with pytest.raises(ValueError, match="vsm_log_skip"):
        ServiceSettings(vsm_log_skip="policies")
    with pytest.raises(ValueError, match="log key 1: its id is also a signing key's"):
        ServiceSettings(
            vsm_signing_keys=f"k1:{K1}",  # type: ignore[arg-type]
            vsm_log_keys=f"k1:{K2}",  # type: ignore[arg-type]
        ).log_keyring()
