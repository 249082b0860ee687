"""Envelope signatures: HMAC-SHA256 over a canonical serialisation, with a key id for rotation.

The signature covers the envelope's meaning, not its bytes: the body is parsed and written
again as JSON with sorted keys, no whitespace and ASCII escapes, so a sender may serialise
as it likes. It travels in two AMQP headers (`x-vsm-key-id`, `x-vsm-signature`), outside the
envelope, so nothing has to be excluded from the signed form. Pure: no broker, no clock.
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

SIGNATURE_HEADER = "x-vsm-signature"
KEY_ID_HEADER = "x-vsm-key-id"
MIN_SECRET_BYTES = 16
KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BadSignature(ValueError):
    """The message is not signed, names an unknown key, or its signature does not match."""


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


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Keyring:
    """Signing keys by id; the first signs, all verify (rotation: add, promote, retire)."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")
        ids = [kid for kid, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("signing key ids must be unique")
        # Errors name keys by position, never by text that might be a misplaced secret.
        for number, (kid, secret) in enumerate(self.keys, 1):
            if not KEY_ID.match(kid):
                raise ValueError(f"signing key {number}: the id takes letters, digits, . _ -")
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"signing key {number}: at least {MIN_SECRET_BYTES} bytes")

    @property
    def key_id(self) -> str:
        return self.keys[0][0]

    def signature(self, value: Any, key_id: str | None = None) -> str:
        """The base64 HMAC-SHA256 of `value`'s canonical form under `key_id` (default: first)."""
        secret = dict(self.keys)[key_id or self.key_id]
        return base64.b64encode(hmac.digest(secret, canonical(value), hashlib.sha256)).decode()

    def sign(self, body: bytes) -> dict[str, str]:
        """The headers that sign `body` (a JSON document); `ValueError` if it is not one."""
        return {KEY_ID_HEADER: self.key_id, SIGNATURE_HEADER: self.signature(parse(body))}

    def verify(self, body: bytes, headers: Mapping[str, Any]) -> Any:
        """The parsed body when its signature holds under the key it names; else `BadSignature`."""
        key_id, given = _text(headers.get(KEY_ID_HEADER)), _text(headers.get(SIGNATURE_HEADER))
        if given is None or key_id is None:
            raise BadSignature("the message is not signed")
        secret = dict(self.keys).get(key_id)
        if secret is None:
            raise BadSignature(f"unknown key id {key_id[:64]!r}")
        try:
            value = parse(body)
            expected = hmac.digest(secret, canonical(value), hashlib.sha256)
            presented = base64.b64decode(given, validate=True)
        except (ValueError, binascii.Error) as error:
            raise BadSignature(f"cannot check the signature: {str(error)[:200]}") from error
        if not hmac.compare_digest(expected, presented):
            raise BadSignature(f"the signature does not match (key id {key_id!r})")
        return value


def _secret(text: str) -> bytes:
    padded = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)


def parse_keyring(text: str) -> Keyring | None:
    """`kid1:base64secret,kid0:base64secret` (first signs); empty text: no keys, no signing."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        return None
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(entries, 1):
        kid, colon, encoded = entry.partition(":")
        if not colon:
            raise ValueError(f"signing key {number}: expected `kid:base64secret`")
        try:
            keys.append((kid.strip(), _secret(encoded.strip())))
        except (ValueError, binascii.Error):
            raise ValueError(f"signing key {number}: the secret is not base64") from None
    return Keyring(tuple(keys))
