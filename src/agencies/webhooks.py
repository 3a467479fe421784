"""Postbacks to vendors, the rules that need no table or network: which lead events a vendor is
told about and what it is told, how a delivery is signed (Standard Webhooks, with the
`standardwebhooks` library), where a postback may go, and when a failed one is tried again.

A postback's body is the Standard Webhooks payload `{"type", "timestamp", "data"}`. `data` tells
the vendor what it may know of its own lead: never the sale amount, the agent or who asked for a
return."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, urlsplit

from standardwebhooks import Webhook
from ulid import ULID

SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105  # the format's prefix, not a secret
SECRET_BYTES = 32
MAX_URL_LENGTH = 2048


class PostbackEvent(StrEnum):
    ACCEPTED = "lead.accepted"
    STATUS_CHANGED = "lead.status_changed"
    RETURNED = "lead.returned"


# The lead's disposition as a vendor reads it: `closed` is a sale, told as `converted`.
VENDOR_STATUS = {"contacted": "contacted", "qualified": "qualified", "closed": "converted", "lost": "lost"}


@dataclass(frozen=True)
class Notice:
    """One postback a lead event calls for: its type, the vendor it goes to, what it says."""

    event: PostbackEvent
    vendor_code: str
    data: dict[str, Any]


def notices(detail_type: str, detail: Mapping[str, Any]) -> list[Notice]:
    """The postbacks a lead event (`leads.events.lead_event`'s detail) calls for: a new lead is
    `lead.accepted`; a change of disposition to contacted, qualified, closed or lost is
    `lead.status_changed`; a decided return is `lead.returned` (its `reason_code` is the return's,
    added by the delivery function). A deleted lead tells nothing."""
    after, before = detail.get("after"), detail.get("before")
    if not after or after.get("deleted") or not after.get("vendor_code"):
        return []
    lead = {
        "lead_id": detail["lead_id"],
        "campaign_source": after.get("campaign_source"),
        "is_test": bool(after.get("is_test")),
    }
    vendor = str(after["vendor_code"])
    if detail_type == "LeadCreated" and before is None:
        accepted = {
            **lead,
            "status": VENDOR_STATUS.get(str(after.get("disposition")), "new"),
            "price": _number(after.get("lead_value")),
            "created_at": after.get("created_at"),
        }
        return [Notice(PostbackEvent.ACCEPTED, vendor, accepted)]
    if detail_type != "LeadUpdated" or before is None:
        return []
    found = []
    status, previous = after.get("disposition"), before.get("disposition")
    if status != previous and status in VENDOR_STATUS:
        changed = {
            **lead,
            "status": VENDOR_STATUS[status],
            "previous_status": VENDOR_STATUS.get(previous, "new"),
        }
        found.append(Notice(PostbackEvent.STATUS_CHANGED, vendor, changed))
    decision = after.get("return_status")
    if decision in ("approved", "rejected") and before.get("return_status") != decision:
        returned = {**lead, "status": decision, "credit": _number(after.get("credit"))}
        found.append(Notice(PostbackEvent.RETURNED, vendor, returned))
    return found


def _number(value: Any) -> float | None:
    return float(value) if value is not None else None


def delivery_id(event_id: str, event: PostbackEvent, at: datetime) -> str:
    """The delivery's id (and `webhook-id`): time-ordered, and the same for one bus event and type
    however often the bus delivers it, so a redelivered event makes no second postback."""
    digest = hashlib.sha256(f"{event_id}|{event.value}".encode()).digest()[:10]
    milliseconds = int(at.timestamp() * 1000).to_bytes(6, "big")
    return f"msg_{ULID.from_bytes(milliseconds + digest)}"


def payload(notice: Notice, at: datetime) -> str:
    """The body of the postback, as it is signed and sent on every attempt."""
    timestamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {
        "type": notice.event.value,
        "timestamp": timestamp,
        "data": {**notice.data, "vendor_code": notice.vendor_code},
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def new_secret() -> str:
    """A signing secret, as Standard Webhooks writes it: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secrets_in_use: Sequence[str], message_id: str, at: datetime, body: str) -> str:
    """The `webhook-signature` header: a `v1,` signature per secret, space separated (after a
    rotation, the new secret's and, for a day, the previous one's)."""
    return " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets_in_use)


def signed_headers(secrets_in_use: Sequence[str], message_id: str, at: datetime, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "lead-crm-postbacks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(secrets_in_use, message_id, at, body),
    }


def next_delay(retry_seconds: Sequence[int], attempts_made: int) -> int | None:
    """Seconds to wait before the next attempt, after `attempts_made` failed ones; None when they
    are spent (the delivery is dead-lettered)."""
    if attempts_made < 1 or attempts_made > len(retry_seconds):
        return None
    return retry_seconds[attempts_made - 1]


# -- where a postback may go ---------------------------------------------------------------------
class DestinationRefused(Exception):
    """A postback URL this stack will not call; the message says why."""


@dataclass(frozen=True)
class Destination:
    """A postback URL with the address it is called on: connecting to `address` (checked) rather
    than resolving the host again means a DNS answer that changes after the check (rebinding)
    cannot send the request elsewhere."""

    url: str
    scheme: str
    host: str
    port: int
    target: str  # path and query
    address: str


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (each of them must be allowed)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DestinationRefused(f"the host {host} does not resolve") from exc
    return sorted({str(entry[4][0]) for entry in found})


def check_destination(url: str, allow_loopback: bool, resolver: Resolver = resolve) -> Destination:
    """The destination of `url`, or `DestinationRefused`: only `https` to a host whose every
    address is public (no private, loopback, link-local, metadata, shared or reserved address),
    without credentials in the URL. `allow_loopback` (the local stack only) also lets `http` and
    `https` reach the loopback address, so a receiver on this machine can be called."""
    parts, port = _read_url(url)
    host = str(parts.hostname)
    addresses = resolver(host, port)
    if not addresses:
        raise DestinationRefused(f"the host {host} does not resolve")
    loopback = all(ipaddress.ip_address(address).is_loopback for address in addresses)
    if not (allow_loopback and loopback):
        if parts.scheme != "https":
            raise DestinationRefused("the URL must use https")
        refused = [address for address in addresses if not is_public(address)]
        if refused:
            raise DestinationRefused(f"the host {host} resolves to a non-public address ({refused[0]})")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(url, parts.scheme, host, port, target, addresses[0])


def _read_url(url: str) -> tuple[SplitResult, int]:
    """The URL's parts and port, if it is an http(s) URL to a host, without credentials or a
    fragment."""
    if len(url) > MAX_URL_LENGTH:
        raise DestinationRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused("the URL cannot be read") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationRefused("the URL must be https://host/...")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("the URL must not carry credentials")
    if parts.fragment:
        raise DestinationRefused("the URL must not have a fragment")
    return parts, port or (443 if parts.scheme == "https" else 80)


def is_public(address: str) -> bool:
    """A globally routable unicast address: not private, loopback, link-local (the instance
    metadata service, 169.254.169.254 and fd00:ec2::254, included), shared, multicast or reserved;
    an IPv6 address that embeds an IPv4 one is judged by it."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return is_public(str(embedded))
    return ip.is_global and not ip.is_multicast
