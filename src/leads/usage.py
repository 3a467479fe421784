"""Data access for vendor usage: how many leads each vendor posted per hour, business day and
month, counted in the transaction that stores each lead, against the vendor's caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from leads.directory import Vendor
from shared.dynamo import Table, Write

RETENTION_DAYS = 400
HOUR_RETENTION_DAYS = 2


class VendorUsage:
    ITEM = "vendor usage"  # the name of its transaction items: one fails when a cap is reached

    def __init__(self, table: Table, zone: ZoneInfo) -> None:
        self._table = table
        self._zone = zone

    def count(self, vendor: Vendor, now: datetime) -> list[Write]:
        """One more lead this hour (a UTC hour: a local one repeats when clocks go back), today
        and this month (business days), each only while under its cap."""
        local = now.astimezone(self._zone)
        expires = int((now + timedelta(days=RETENTION_DAYS)).timestamp())
        hour_expires = int((now + timedelta(days=HOUR_RETENTION_DAYS)).timestamp())
        return [
            self._count_one(f"{vendor.vendor_code}#{period}", cap, until)
            for period, cap, until in (
                (now.astimezone(UTC).strftime("hour#%Y-%m-%dT%HZ"), vendor.hourly_cap, hour_expires),
                (local.strftime("day#%Y-%m-%d"), vendor.daily_cap, expires),
                (local.strftime("month#%Y-%m"), vendor.monthly_cap, expires),
            )
        ]

    def _count_one(self, usage_key: str, cap: int | None, expires: int) -> Write:
        values: dict[str, Any] = {":one": 1, ":zero": 0, ":expires": expires}
        condition = None
        if cap is not None:
            condition = "attribute_not_exists(lead_count) OR lead_count < :cap"
            values[":cap"] = cap
        return Write(
            "Update",
            self._table.name,
            key={"usage_key": usage_key},
            update="SET lead_count = if_not_exists(lead_count, :zero) + :one, expires_at = :expires",
            condition=condition,
            values=values,
            name=self.ITEM,
        )
