"""Envelope signatures: HMAC-SHA256 over the envelope and its destination, with a key id.

The signature covers the envelope's meaning, not its bytes: the body is parsed and written
again as JSON with sorted keys, no whitespace and ASCII escapes, so a sender may serialise
as it likes. It also covers where the message was published (the exchange and routing key,
as the broker names them), so a captured message replayed to another route, another agent or
another namespace is refused. It travels in two AMQP headers (`x-vsm-key-id`,
`x-vsm-signature`), outside the envelope. The format is written down in `docs/signatures.md`.
Pure: no broker, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORMAT",
    "KEY_ID",
    "KEY_ID_HEADER",
    "MIN_SECRET_BYTES",
    "PREFIX",
    "SIGNATURE_HEADER",
    "BadSignature",
    "Keyring",
    "canonical",
    "key_id_of",
    "material",
    "parse",
    "parse_keyring",
    "signature_format",
]

SIGNATURE_HEADER = "x-vsm-signature"
KEY_ID_HEADER = "x-vsm-key-id"
FORMAT = 2
PREFIX = f"v{FORMAT}:"
"""A signature of the current format starts with this; one without it covers the body alone
(format 1, written by earlier releases), which only the event logs' history may still hold."""
MIN_SECRET_BYTES = 16
KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BadSignature(ValueError):
    """The message is not signed, names an unknown key, or its signature does not match."""

    def __init__(self, detail: str, key_id: str | None = None) -> None:
        super().__init__(detail)
        self.key_id = key_id


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers may keep different copies of a duplicated key: refuse the ambiguity.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(body: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity; `ValueError` otherwise."""
    try:
        return json.loads(
            body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constants
        )
    except RecursionError as error:
        raise ValueError("nested too deeply") from error


def canonical(value: Any) -> bytes:
    """The signed form of a parsed envelope: sorted keys, no whitespace, ASCII escapes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def material(value: Any, exchange: str, routing_key: str) -> bytes:
    """What a signature covers: the parsed envelope and the destination it was published to."""
    return canonical(
        {"body": value, "exchange": exchange, "routing_key": routing_key, "version": FORMAT}
    )


def signature_format(headers: Mapping[str, Any]) -> int:
    """0: not signed; 1: the body alone (earlier releases); 2: the body and its destination."""
    given = _text(headers.get(SIGNATURE_HEADER))
    if given is None or _text(headers.get(KEY_ID_HEADER)) is None:
        return 0
    return FORMAT if given.startswith(PREFIX) else 1


def key_id_of(headers: Mapping[str, Any]) -> str | None:
    """The key id a message names, if any."""
    return _text(headers.get(KEY_ID_HEADER))


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Keyring:
    """Keys by id: the first signs, all verify (rotation: add, promote, retire)."""

    keys: tuple[tuple[str, bytes], ...]
    role: str = "signing key"
    """What the keys are called in errors (`signing key 2: ...`)."""

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")
        ids = [kid for kid, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.role} ids must be unique")
        # Errors name keys by position, never by text that might be a misplaced secret.
        for number, (kid, secret) in enumerate(self.keys, 1):
            if not KEY_ID.match(kid):
                raise ValueError(f"{self.role} {number}: the id takes letters, digits, . _ -")
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"{self.role} {number}: at least {MIN_SECRET_BYTES} bytes")

    @property
    def key_id(self) -> str:
        return self.keys[0][0]

    def joined(self, verifying: Keyring) -> Keyring:
        """These keys and `verifying` (which then verify, never sign); a shared id is refused."""
        shared = {kid for kid, _ in self.keys} & {kid for kid, _ in verifying.keys}
        if shared:
            number = next(n for n, (kid, _) in enumerate(verifying.keys, 1) if kid in shared)
            raise ValueError(f"{verifying.role} {number}: its id is also a {self.role}'s")
        return Keyring(self.keys + verifying.keys, self.role)

    def signature(
        self, value: Any, exchange: str, routing_key: str, key_id: str | None = None
    ) -> str:
        """The signature of `value` published to `exchange` with `routing_key`, under `key_id`
        (default: the first key)."""
        secret = dict(self.keys)[key_id or self.key_id]
        digest = hmac.digest(secret, material(value, exchange, routing_key), hashlib.sha256)
        return PREFIX + base64.b64encode(digest).decode()

    def sign(self, body: bytes, exchange: str, routing_key: str) -> dict[str, str]:
        """The headers that sign `body` (a JSON document) for its destination; `ValueError` if
        it is not one."""
        return {
            KEY_ID_HEADER: self.key_id,
            SIGNATURE_HEADER: self.signature(parse(body), exchange, routing_key),
        }

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, Any],
        exchange: str,
        routing_key: str,
        *,
        body_only: bool = False,
    ) -> Any:
        """The parsed body when its signature holds under the key it names, for the destination
        it was delivered from; else `BadSignature`. A signature of the body alone (format 1) is
        accepted only with `body_only` (an event log's history)."""
        key_id, given = _text(headers.get(KEY_ID_HEADER)), _text(headers.get(SIGNATURE_HEADER))
        if given is None or key_id is None:
            raise BadSignature("the message is not signed")
        key_id = key_id[:64]
        secret = dict(self.keys).get(key_id)
        if secret is None:
            raise BadSignature(f"unknown key id {key_id!r}", key_id)
        bound = given.startswith(PREFIX)
        if not bound and not body_only:
            raise BadSignature(
                f"the signature (key id {key_id!r}) covers the body alone, not its destination",
                key_id,
            )
        try:
            value = parse(body)
            signed = material(value, exchange, routing_key) if bound else canonical(value)
            expected = hmac.digest(secret, signed, hashlib.sha256)
            presented = base64.b64decode(given.removeprefix(PREFIX), validate=True)
        except (ValueError, binascii.Error) as error:
            detail = f"cannot check the signature: {str(error)[:200]}"
            raise BadSignature(detail, key_id) from error
        if not hmac.compare_digest(expected, presented):
            raise BadSignature(
                f"the signature does not match (key id {key_id!r}): the message was changed, "
                f"or was signed for another destination than {exchange or '(default)'!r} "
                f"{routing_key!r}",
                key_id,
            )
        return value


def _secret(text: str) -> bytes:
    padded = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)


def parse_keyring(text: str, role: str = "signing key") -> Keyring | None:
    """`kid1:base64secret,kid0:base64secret` (first signs); empty text: no keys, no signing."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        return None
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(entries, 1):
        kid, colon, encoded = entry.partition(":")
        if not colon:
            raise ValueError(f"{role} {number}: expected `kid:base64secret`")
        try:
            keys.append((kid.strip(), _secret(encoded.strip())))
        except (ValueError, binascii.Error):
            raise ValueError(f"{role} {number}: the secret is not base64") from None
    return Keyring(tuple(keys), role)
