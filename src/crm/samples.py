"""`crm event NAME`: an API Gateway sample of `events/` carrying a fresh token, for
`sam local invoke -e`. Tokens expire, so the committed samples hold a placeholder instead."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from crm.stack import SignInRefused, local_token
from crm.template import PROJECT_ROOT

EVENTS_DIR = PROJECT_ROOT / "events"


class SampleError(Exception):
    """The sample cannot carry a token: missing, unreadable, or not an API Gateway request."""


def read_sample(name: str, events_dir: Path = EVENTS_DIR) -> dict[str, Any]:
    path = events_dir / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(sample.stem for sample in events_dir.glob("*.json")))
        raise SampleError(f"no sample {path} (samples: {known})")
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SampleError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(event, dict) or "httpMethod" not in event:
        raise SampleError(f"{path} is not an API Gateway request: it carries no token")
    return event


def with_token(event: dict[str, Any], token: str) -> dict[str, Any]:
    """The event with `Authorization: Bearer <token>`, in both header maps as API Gateway sends it
    (in place of any Authorization header it had)."""
    authorization = f"Bearer {token}"

    def replaced(headers: dict[str, Any] | None, value: Any) -> dict[str, Any]:
        kept = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        return {"Authorization": value, **kept}

    return {
        **event,
        "headers": replaced(event.get("headers"), authorization),
        "multiValueHeaders": replaced(event.get("multiValueHeaders"), [authorization]),
    }


def cmd_event(args: argparse.Namespace) -> int:
    try:
        event = read_sample(args.name)
    except SampleError as problem:
        print(f"crm event: {problem}", file=sys.stderr)
        return 2
    try:
        token = local_token(args.user, ttl_seconds=args.ttl)
    except SignInRefused as refused:
        print(f"crm event: {refused}", file=sys.stderr)
        return 2
    text = json.dumps(with_token(event, token), indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    target = Path(args.out) if args.out else EVENTS_DIR / f"{args.name}.json"
    target.write_text(text, encoding="utf-8")
    print(target)
    return 0
