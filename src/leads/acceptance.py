"""A vendor's acceptance rules applied to one lead post, before anything is written. The rules
are checked in this order and the first one failed is the answer (docs/vendor-posting.md):

1. `NO_CONSENT`: the rules require consent and `tcpa_consent` is not true;
2. `MISSING_FIELD`: a required field is absent (every one missing is listed), counting `state`
   when states are restricted and `submitted_at` when the lead age is limited;
3. `STATE_NOT_ALLOWED`: the lead's state is not among the allowed ones;
4. `LEAD_TOO_OLD`: more than `max_lead_age_minutes` passed since `submitted_at`;
5. `OUTSIDE_HOURS`: the post arrives outside the hours of operation.

The hourly, daily and monthly caps come last: they are counted in the transaction that stores
the lead (`leads.usage`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leads.models import LeadSubmission, ReasonCode
from shared.acceptance import AcceptanceRules


@dataclass(frozen=True)
class Refusal:
    """A failed rule: its reason code, what to tell the poster, and the fields concerned."""

    code: ReasonCode
    reason: str
    details: list[dict[str, Any]] = field(default_factory=list)


def _fields_needed(rules: AcceptanceRules) -> list[str]:
    implied = [
        name
        for name, applies in (("state", rules.allowed_states), ("submitted_at", rules.max_lead_age_minutes))
        if applies and name not in rules.required_fields
    ]
    return [*rules.required_fields, *implied]


def refusal(rules: AcceptanceRules, lead: LeadSubmission, now: datetime) -> Refusal | None:
    """The first rule `lead`, posted at `now`, fails; None when it meets them all."""
    if rules.require_consent and lead.tcpa_consent is not True:
        return Refusal(
            ReasonCode.NO_CONSENT,
            "This vendor's leads need TCPA consent (tcpa_consent: true)",
            [{"field": "tcpa_consent", "message": "must be true"}],
        )
    missing = [name for name in _fields_needed(rules) if getattr(lead, name) is None]
    if missing:
        return Refusal(
            ReasonCode.MISSING_FIELD,
            f"Required by this vendor's rules: {', '.join(missing)}",
            [{"field": name, "message": "required by the vendor's rules"} for name in missing],
        )
    if rules.allowed_states and lead.state not in rules.allowed_states:
        return Refusal(
            ReasonCode.STATE_NOT_ALLOWED,
            f"Leads from {lead.state} are not accepted from this vendor",
            [{"field": "state", "message": f"allowed: {', '.join(rules.allowed_states)}"}],
        )
    if rules.max_lead_age_minutes is not None and lead.submitted_at is not None:
        age = now - datetime.fromisoformat(lead.submitted_at)
        if age > timedelta(minutes=rules.max_lead_age_minutes):
            return Refusal(
                ReasonCode.LEAD_TOO_OLD,
                f"The lead is older than {rules.max_lead_age_minutes} minutes",
                [{"field": "submitted_at", "message": f"at most {rules.max_lead_age_minutes} minutes old"}],
            )
    if rules.hours is not None and not rules.hours.is_open(now):
        hours = rules.hours
        window = f"{hours.from_}-{hours.to} {hours.time_zone} on {', '.join(hours.days)}"
        return Refusal(ReasonCode.OUTSIDE_HOURS, f"Leads are taken {window}", [])
    return None
