"""Envelope signatures: any changed byte or destination is caught, keys rotate, secrets never
leak."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from vsm.contract.envelope import Envelope
from vsm.contract.health import HealthReport
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings
from vsm.kit.signing import (
    KEY_ID_HEADER,
    PREFIX,
    SIGNATURE_HEADER,
    BadSignature,
    Keyring,
    canonical,
    parse_keyring,
    signature_format,
)

SECRET_0 = base64.b64encode(b"0" * 32).decode()
SECRET_1 = base64.b64encode(b"1" * 32).decode()
OLD = parse_keyring(f"k0:{SECRET_0}")
NEW = parse_keyring(f"k1:{SECRET_1},k0:{SECRET_0}")  # k1 signs, k0 still verifies
RETIRED = parse_keyring(f"k1:{SECRET_1}")
TO = ("t1.vsm.s1.commands", "worker.a1.process_data")
"""Where the test's messages are published: an exchange and a routing key, as the broker names
them."""


def keyring(ring: Keyring | None) -> Keyring:
    assert ring is not None
    return ring


def body() -> bytes:
    report = HealthReport(
        service="queen",
        instance="queen-1",
        role="S5",
        state="up",
        interval_s=0.5,
        started_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        details={"agents": 3, "note": "ünïcode ✓"},
    )
    return Envelope.wrap(report, source="vsm/queen").model_dump_json().encode()


def test_a_signed_envelope_verifies_and_comes_back_parsed() -> None:
    data = body()
    headers = keyring(OLD).sign(data, *TO)

    assert headers[KEY_ID_HEADER] == "k0"
    assert keyring(OLD).verify(data, headers, *TO) == json.loads(data)


def test_the_signature_covers_the_meaning_not_the_layout() -> None:
    data = body()
    headers = keyring(OLD).sign(data, *TO)
    relaid = json.dumps(json.loads(data), indent=2, ensure_ascii=False).encode()
    reordered = json.dumps(dict(reversed(list(json.loads(data).items())))).encode()

    assert keyring(OLD).verify(relaid, headers, *TO)
    assert keyring(OLD).verify(reordered, headers, *TO)


@pytest.mark.parametrize("mask", [0x01, 0x02, 0x20, 0x80])
def test_flipping_any_bit_of_any_byte_is_caught(mask: int) -> None:
    data = body()
    headers = keyring(OLD).sign(data, *TO)
    caught = 0
    for position in range(len(data)):
        tampered = bytearray(data)
        tampered[position] ^= mask
        with pytest.raises(BadSignature):
            keyring(OLD).verify(bytes(tampered), headers, *TO)
        caught += 1
    print(f"\nmask {mask:#04x}: {caught} of {len(data)} one-byte changes refused")
    assert caught == len(data)


def test_a_changed_signature_or_key_id_is_caught() -> None:
    data = body()
    headers = keyring(OLD).sign(data, *TO)
    signature = bytearray(base64.b64decode(headers[SIGNATURE_HEADER].removeprefix(PREFIX)))
    signature[7] ^= 0x01
    forged = {**headers, SIGNATURE_HEADER: PREFIX + base64.b64encode(bytes(signature)).decode()}

    with pytest.raises(BadSignature, match="does not match"):
        keyring(OLD).verify(data, forged, *TO)
    with pytest.raises(BadSignature, match="cannot check"):
        keyring(OLD).verify(data, {**headers, SIGNATURE_HEADER: f"{PREFIX}not base64!"}, *TO)
    with pytest.raises(BadSignature, match="unknown key id"):
        keyring(OLD).verify(data, {**headers, KEY_ID_HEADER: "k9"}, *TO)


@pytest.mark.parametrize(
    "elsewhere",
    [
        ("t1.vsm.s1.commands", "worker.a2.process_data"),  # another agent
        ("t1.vsm.s1.commands", "worker.a1.transform"),  # another command
        ("t1.vsm.requests", "worker.a1.process_data"),  # another exchange
        ("", "t1.vsm.s1.a1.command"),  # straight to the agent's queue
        ("t2.vsm.s1.commands", "worker.a1.process_data"),  # another namespace
    ],
    ids=["agent", "command", "exchange", "default-exchange", "namespace"],
)
def test_the_signature_binds_the_destination(elsewhere: tuple[str, str]) -> None:
    data = body()
    headers = keyring(OLD).sign(data, *TO)

    with pytest.raises(BadSignature, match="another destination"):
        keyring(OLD).verify(data, headers, *elsewhere)
    assert keyring(OLD).verify(data, headers, *TO)


def test_a_signature_of_the_body_alone_is_read_in_a_log_history_only() -> None:
    """Format 1 (earlier releases) signed the body alone: it binds no destination, so live
    traffic refuses it; an event log's history may still hold it."""
    data = body()
    digest = hmac.digest(b"0" * 32, canonical(json.loads(data)), hashlib.sha256)
    headers = {KEY_ID_HEADER: "k0", SIGNATURE_HEADER: base64.b64encode(digest).decode()}

    assert signature_format(headers) == 1
    assert signature_format(keyring(OLD).sign(data, *TO)) == 2
    assert signature_format({}) == 0
    with pytest.raises(BadSignature, match="covers the body alone"):
        keyring(OLD).verify(data, headers, *TO)
    assert keyring(OLD).verify(data, headers, "any", "where", body_only=True)
    with pytest.raises(BadSignature, match="does not match"):
        keyring(OLD).verify(data.replace(b"queen-1", b"queen-2"), headers, *TO, body_only=True)


def test_log_keys_verify_but_never_sign() -> None:
    log_only = keyring(parse_keyring(f"k0:{SECRET_0}", "log key"))
    ring = keyring(RETIRED).joined(log_only)
    data = body()

    assert ring.key_id == "k1"
    assert ring.verify(data, keyring(OLD).sign(data, *TO), *TO)
    with pytest.raises(ValueError, match="log key 1: its id is also a signing key's"):
        keyring(NEW).joined(log_only)


def test_an_unsigned_message_is_refused() -> None:
    with pytest.raises(BadSignature, match="not signed"):
        keyring(OLD).verify(body(), {}, *TO)
    with pytest.raises(BadSignature, match="not signed"):
        keyring(OLD).verify(body(), {SIGNATURE_HEADER: "x"}, *TO)


def test_rotation_the_first_key_signs_the_others_still_verify() -> None:
    data = body()
    signed_before = keyring(OLD).sign(data, *TO)
    signed_after = keyring(NEW).sign(data, *TO)

    assert signed_after[KEY_ID_HEADER] == "k1"
    assert keyring(NEW).verify(data, signed_before, *TO)  # old kid still verifies
    assert keyring(RETIRED).verify(data, signed_after, *TO)
    with pytest.raises(BadSignature, match="unknown key id 'k0'"):
        keyring(RETIRED).verify(data, signed_before, *TO)  # retired: unknown kid refused
    with pytest.raises(BadSignature, match="unknown key id 'k1'"):
        keyring(OLD).verify(data, signed_after, *TO)


def test_the_same_id_under_another_secret_does_not_verify() -> None:
    impostor = keyring(parse_keyring(f"k0:{base64.b64encode(b'2' * 32).decode()}"))
    data = body()
    with pytest.raises(BadSignature, match="does not match"):
        keyring(OLD).verify(data, impostor.sign(data, *TO), *TO)


@pytest.mark.parametrize(
    "data",
    [
        b'{"id": "a", "id": "b"}',  # two parsers could read two messages
        b'{"priority": NaN}',
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
        b"",
    ],
    ids=["duplicate-key", "nan", "not-utf8", "deep", "empty"],
)
def test_what_is_not_strict_json_cannot_be_signed_or_verified(data: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any refusal; the message says which
        keyring(OLD).sign(data, *TO)
    with pytest.raises(BadSignature):
        keyring(OLD).verify(data, {KEY_ID_HEADER: "k0", SIGNATURE_HEADER: f"{PREFIX}AAAA"}, *TO)


def test_keys_parse_from_the_setting() -> None:
    ring = keyring(parse_keyring(f" k1:{SECRET_1} , k0:{SECRET_0.rstrip('=')} "))

    assert [kid for kid, _ in ring.keys] == ["k1", "k0"]
    assert ring.keys[0][1] == b"1" * 32
    assert parse_keyring("") is None
    assert parse_keyring(" , ") is None
    urlsafe = base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()
    assert keyring(parse_keyring(f"u:{urlsafe}")).keys[0][1] == b"\xfb\xff" * 16


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (SECRET_0, "expected `kid:base64secret`"),
        (f"{SECRET_0}:{SECRET_0}", "the id takes"),
        ("k0:c2hvcnQ=", "at least 16 bytes"),
        ("k0:***", "not base64"),
        (f"k0:{SECRET_0},k0:{SECRET_1}", "unique"),
    ],
)
def test_bad_keys_fail_at_start_up_without_showing_the_secret(text: str, problem: str) -> None:
    settings = ServiceSettings(vsm_signing_keys=text)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as caught:  # noqa: PT011 - the message is checked below
        Runtime("control", settings)

    assert problem in str(caught.value)
    for secret in (SECRET_0, SECRET_1, SECRET_0.rstrip("=")):
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)


def test_the_settings_keep_the_keys_secret() -> None:
    settings = ServiceSettings(vsm_signing_keys=f"k0:{SECRET_0}")  # type: ignore[arg-type]

    assert SECRET_0 not in repr(settings)
    assert SECRET_0 not in settings.model_dump_json()
    assert keyring(settings.keyring()).key_id == "k0"
    assert ServiceSettings().keyring() is None  # the local default: no signing
