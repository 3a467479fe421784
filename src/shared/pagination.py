"""Opaque, tamper-evident list cursors.

A cursor is `base64url(json(last_key)) . base64url(hmac)`; the MAC covers the key and the query it
belongs to, so a cursor cannot be edited, forged, or replayed against another filter or scope.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import simplejson

from shared.errors import InvalidCursor

MAX_CURSOR_LENGTH = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        # A key of its own, derived from the signing secret, so cursors and tokens never share one.
        self._key = hmac.new(secret, b"crm-list-cursor-v1", hashlib.sha256).digest()

    def _mac(self, payload: bytes, query: str) -> bytes:
        return hmac.new(self._key, payload + b"|" + query.encode(), hashlib.sha256).digest()[:20]

    def encode(self, last_key: dict[str, Any] | None, query: str) -> str | None:
        if last_key is None:
            return None
        payload = simplejson.dumps(last_key, sort_keys=True, separators=(",", ":"), use_decimal=True).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload, query))}"

    def decode(self, cursor: str | None, query: str) -> dict[str, Any] | None:
        if not cursor:
            return None
        try:
            if len(cursor) > MAX_CURSOR_LENGTH:
                raise ValueError("too long")
            encoded_payload, encoded_mac = cursor.split(".")
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
            if not hmac.compare_digest(mac, self._mac(payload, query)):
                raise ValueError("bad signature")
            key = simplejson.loads(payload, use_decimal=True)
            if not isinstance(key, dict):
                raise ValueError("not a key")
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidCursor("The cursor is invalid or belongs to another query") from exc
        return key
