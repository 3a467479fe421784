"""Use cases of the agencies service: agencies with their performance, vendor credentials,
pricing and agents. Reads go through the query cache; each write invalidates what it changes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from agencies.models import (
    Agency,
    AgencyCreate,
    AgencyFields,
    AgencyStatus,
    AgencyWithPerformance,
    Agent,
    AgentChanges,
    AgentCreate,
    Availability,
    Credential,
    Factors,
    Manager,
    ManagerChanges,
    ManagerCreate,
    NewAgent,
    NewManager,
    PricingSettingsView,
    PricingView,
    QuoteRequest,
    QuoteResponse,
    SettingsChanges,
    UserStatus,
    VendorPrice,
)
from agencies.performance import WINDOW_DAYS, performance
from agencies.repository import (
    AgencyNotFound,
    AgencyRepository,
    AgentNotFound,
    PricingRepository,
    UserDirectory,
)
from agencies.staff_pool import StaffPool
from shared import measures
from shared.acceptance import AcceptanceRules
from shared.auth import VENDOR_TOKEN_MAX_SECONDS
from shared.buckets import AGENTS, TOTALS, VENDORS, DayBuckets, days_ending, money, scoped, summed
from shared.cache import Namespace, QueryCache
from shared.dates import Clock, iso_timestamp
from shared.dynamo import ConditionFailed, Item
from shared.errors import Conflict, ValidationFailed
from shared.observability import logger
from shared.pagination import CursorCodec
from shared.pricing import Pricer, PricingSettings
from shared.records import DEFAULT_DEDUPE_WINDOW_DAYS, DEFAULT_RETURN_WINDOW_DAYS
from shared.security import Principal, Role

AGENT_STATS_DAYS = 30
DEFAULT_MONTHLY_GOAL = 600
AGENT_SELF_FIELDS = frozenset({"availability"})


def _agency(item: Item) -> Agency:
    return Agency(
        vendor_code=str(item["vendor_code"]),
        name=str(item.get("name", item["vendor_code"])),
        status=AgencyStatus(item.get("status", "active")),
        monthly_goal=int(item.get("monthly_goal", DEFAULT_MONTHLY_GOAL)),
        daily_cap=int(item["daily_cap"]) if item.get("daily_cap") is not None else None,
        monthly_cap=int(item["monthly_cap"]) if item.get("monthly_cap") is not None else None,
        hourly_cap=int(item["hourly_cap"]) if item.get("hourly_cap") is not None else None,
        acceptance=AcceptanceRules.from_item(item.get("acceptance")),
        dedupe_window_days=int(item.get("dedupe_window_days", DEFAULT_DEDUPE_WINDOW_DAYS)),
        return_window_days=int(item.get("return_window_days", DEFAULT_RETURN_WINDOW_DAYS)),
        test_mode=bool(item.get("test_mode", False)),
        contact_name=item.get("contact_name"),
        contact_email=item.get("contact_email"),
        contact_phone=item.get("contact_phone"),
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
    )


class AgencyService:
    def __init__(
        self,
        agencies: AgencyRepository,
        buckets: DayBuckets,
        cache: QueryCache,
        codec: CursorCodec,
        clock: Clock,
    ) -> None:
        self._agencies = agencies
        self._buckets = buckets
        self._cache = cache
        self._codec = codec
        self._clock = clock

    def page(self, principal: Principal, limit: int, cursor: str | None) -> dict[str, Any]:
        """Agencies by code with their performance: every agency for staff, its own for a vendor.
        Two reads whatever the number of agencies: the vendors and 90 day buckets."""
        scope = principal.lead_scope
        after = self._codec.decode(cursor, "agencies")
        today = self._clock.today()

        def load() -> dict[str, Any]:
            if scope.vendor_code is not None:
                own = self._agencies.get(scope.vendor_code)
                items = [own] if own else []
            else:
                items = self._agencies.all()
            if after is not None:
                items = [item for item in items if str(item["vendor_code"]) > str(after["code"])]
            chosen, more = items[:limit], len(items) > limit
            buckets = self._buckets.last_days(today, WINDOW_DAYS, (TOTALS, VENDORS)) if chosen else {}
            data = [self._with_performance(item, buckets, today) for item in chosen]
            next_key = {"code": chosen[-1]["vendor_code"]} if more else None
            return {
                "data": [entry.model_dump(mode="python") for entry in data],
                "pagination": {
                    "cursor": self._codec.encode(next_key, "agencies"),
                    "hasMore": more,
                    "count": len(data),
                },
            }

        params = {"limit": limit, "after": after, "today": today.isoformat()}
        return self._cache.get_or_load(Namespace.AGENCIES, scope.cache_key, params, load)

    def one(self, principal: Principal, code: str) -> dict[str, Any]:
        scope = principal.lead_scope
        if scope.vendor_code is not None and scope.vendor_code != code:
            raise AgencyNotFound(code)  # another agency's data does not exist for a vendor
        today = self._clock.today()

        def load() -> dict[str, Any]:
            item = self._agencies.get(code)
            if item is None:
                raise AgencyNotFound(code)
            buckets = self._buckets.last_days(today, WINDOW_DAYS, (TOTALS, VENDORS))
            return self._with_performance(item, buckets, today).model_dump(mode="python")

        params = {"code": code, "today": today.isoformat()}
        return self._cache.get_or_load(Namespace.AGENCIES, scope.cache_key, params, load)

    @staticmethod
    def _with_performance(item: Item, buckets: Any, today: date) -> AgencyWithPerformance:
        agency = _agency(item)
        block, insights = performance(buckets, agency.vendor_code, agency.name, agency.monthly_goal, today)
        return AgencyWithPerformance(**agency.model_dump(), performance=block, insights=insights)

    def create(self, body: AgencyCreate) -> Agency:
        values = {
            "status": AgencyStatus.ACTIVE.value,
            "monthly_goal": DEFAULT_MONTHLY_GOAL,
            "dedupe_window_days": DEFAULT_DEDUPE_WINDOW_DAYS,
            "return_window_days": DEFAULT_RETURN_WINDOW_DAYS,
            "test_mode": False,
            **body.model_dump(mode="json", exclude_none=True),
        }
        created = _agency(self._agencies.create(values))
        self._invalidate()
        return created

    def update(self, code: str, changes: AgencyFields) -> Agency:
        fields = changes.model_dump(mode="json", exclude_unset=True)
        if not fields:
            raise ValidationFailed("Nothing to change", details=[{"field": "body", "message": "no fields"}])
        updated = _agency(self._agencies.update(code, fields))
        self._invalidate()
        return updated

    def _invalidate(self) -> None:
        # the vendors report shows agencies' names
        self._cache.invalidate_namespaces([Namespace.AGENCIES, Namespace.REPORTS])


class CredentialService:
    """Integration users of an agency: a vendor user per credential, revoked by disabling it."""

    def __init__(
        self,
        agencies: AgencyRepository,
        users: UserDirectory,
        issue_token: Callable[[str, int], str],
    ) -> None:
        self._agencies = agencies
        self._users = users
        self._issue_token = issue_token

    def issue(self, code: str) -> Credential:
        agency = self._agencies.get(code)
        if agency is None:
            raise AgencyNotFound(code)
        user_id = f"vendor-{code.lower()}-{secrets.token_hex(6)}"
        self._users.create(
            {
                "user_id": user_id,
                "role": Role.VENDOR.value,
                "vendor_code": code,
                "name": f"{agency.get('name', code)} integration",
                "status": UserStatus.ACTIVE.value,
            }
        )
        # Issued for the longest lifetime a vendor token may have: rotation is a new credential.
        ttl = VENDOR_TOKEN_MAX_SECONDS
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        return Credential(
            user_id=user_id,
            vendor_code=code,
            token=self._issue_token(user_id, ttl),
            expires_at=iso_timestamp(expires, timespec="seconds"),
        )

    def revoke(self, code: str, user_id: str) -> None:
        self._users.disable_vendor_user(user_id, code)


class PricingService:
    def __init__(
        self, pricing: PricingRepository, agencies: AgencyRepository, pricer: Pricer, cache: QueryCache
    ):
        self._pricing = pricing
        self._agencies = agencies
        self._pricer = pricer
        self._cache = cache

    def view(self) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            settings, prices = self._pricing.everything()
            return PricingView(
                settings=PricingSettingsView(**settings.model_dump()),
                vendors=[VendorPrice(vendor_code=code, price=price) for code, price in prices.items()],
            ).model_dump(mode="python")

        return self._cache.get_or_load(Namespace.PRICING, "all", {"view": "pricing"}, load)

    def set_vendor_price(self, code: str, price: Decimal) -> VendorPrice:
        if self._agencies.get(code) is None:
            raise AgencyNotFound(code)
        self._pricing.set_vendor_price(code, price)
        self._cache.invalidate(Namespace.PRICING)
        return VendorPrice(vendor_code=code, price=price)

    def change_settings(self, changes: SettingsChanges) -> PricingSettingsView:
        """Merges `changes` (consistent in themselves, or 422) into the stored settings; the result
        must be consistent as a whole (e.g. a min_price above the stored max_price), else 409 and
        nothing stored."""
        item = self._pricing.settings_item()
        current = PricingSettings.from_item(item)
        merged = {**current.model_dump(), **changes.model_dump(exclude_unset=True)}
        try:
            settings = PricingSettings.model_validate(merged)
        except ValueError as exc:
            raise Conflict(
                "The change does not fit the stored settings", details=[{"message": str(exc)}]
            ) from exc
        revision = item.get("revision")
        try:
            self._pricing.replace_settings(settings, int(revision) if revision is not None else None)
        except ConditionFailed as exc:
            raise Conflict("The pricing settings changed meanwhile; read them and try again") from exc
        self._cache.invalidate(Namespace.PRICING)
        return PricingSettingsView(**settings.model_dump())

    def quote(self, request: QuoteRequest, now: datetime | None = None) -> QuoteResponse:
        if self._agencies.get(request.vendor_code) is None:
            raise AgencyNotFound(request.vendor_code)
        settings = PricingSettings.from_item(self._pricing.settings_item())
        price = self._pricing.vendor_price(request.vendor_code)
        result = self._pricer.quote(
            settings, request.vendor_code, price, request.quality_score, now or datetime.now(UTC)
        )
        return QuoteResponse(
            vendor_code=request.vendor_code,
            quality_score=request.quality_score,
            price=result.price,
            base=result.base,
            smart_pricing_enabled=result.smart,
            factors=Factors(**result.factors) if result.factors is not None else None,
        )


class StaffAccounts:
    """A staff member's users-table record and user pool account, kept in step.

    Creating one makes the pool account first (the pool refuses an email it has: nothing is
    written), then the record; if the record cannot be written the account is removed again.
    A status change is written to the record first (the API refuses a disabled user's tokens from
    it within USER_CACHE_SECONDS), then to the account; if the pool fails the answer says so and
    repeating the change (it is idempotent) completes it."""

    def __init__(self, users: UserDirectory, pool: StaffPool) -> None:
        self._users = users
        self._pool = pool

    def create(self, record: dict[str, Any], role: Role) -> tuple[Item, str]:
        """Stores `record` (user_id, name, email, ...) with its account in `role`'s group.
        Returns the stored item and the account's temporary password."""
        user_id, email = str(record["user_id"]), str(record["email"])
        account = self._pool.create_account(
            email=email, name=str(record["name"]), user_id=user_id, group=role.value
        )
        try:
            item = self._users.create({**record, "role": role.value})
        except Exception:
            self._pool.delete_account(email, user_id)
            raise
        return item, account.temporary_password

    def apply_status(self, item: Item) -> None:
        """Brings the pool account of a changed record to the record's status: disabled, it can
        no longer sign in and its refresh tokens stop working; active, it can sign in again."""
        email = item.get("email")
        if not email:
            return  # no account can exist without an email
        if item.get("status") == UserStatus.DISABLED:
            found = self._pool.disable_account(str(email))
        else:
            found = self._pool.enable_account(str(email))
        if not found:  # a user made before the pool: it never had an account to sign in with
            logger.info("no user pool account to change", extra={"user_id": item.get("user_id")})


class AgentService:
    def __init__(
        self,
        users: UserDirectory,
        buckets: DayBuckets,
        cache: QueryCache,
        clock: Clock,
        accounts: StaffAccounts,
    ) -> None:
        self._users = users
        self._buckets = buckets
        self._cache = cache
        self._clock = clock
        self._accounts = accounts

    def _stats(self) -> tuple[dict[str, Any], date]:
        today = self._clock.today()
        days = days_ending(today, AGENT_STATS_DAYS)
        return summed(self._buckets.last_days(today, AGENT_STATS_DAYS, (AGENTS,)), days), today

    @staticmethod
    def _agent(item: Item, window: dict[str, Any]) -> Agent:
        own = scoped(window, "a", str(item["user_id"]))
        capacity, open_leads = int(item.get("capacity", 0)), max(0, int(item.get("open_leads", 0)))
        return Agent(
            user_id=str(item["user_id"]),
            name=str(item.get("name", item["user_id"])),
            email=item.get("email"),
            status=UserStatus(item.get("status", UserStatus.ACTIVE)),
            availability=Availability(item.get("availability", Availability.OFFLINE)),
            capacity=capacity,
            open_leads=open_leads,
            utilization=measures.as_percent(Decimal(open_leads) / capacity if capacity else None),
            leads=measures.leads(own),
            conversions=measures.conversions(own),
            converted=measures.converted(own),
            conversion_rate=measures.as_percent(measures.conversion_rate(own)),
            sales=money(measures.sales(own)),
        )

    def all(self) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            window, _ = self._stats()
            agents = sorted(self._users.agents(), key=lambda item: str(item["user_id"]))
            data = [self._agent(item, window).model_dump(mode="python") for item in agents]
            return {"data": data, "pagination": {"cursor": None, "hasMore": False, "count": len(data)}}

        return self._cache.get_or_load(
            Namespace.AGENTS, "all", {"view": "agents", "today": str(self._clock.today())}, load
        )

    def one(self, principal: Principal, user_id: str) -> dict[str, Any]:
        if principal.role is Role.AGENT and principal.user_id != user_id:
            raise AgentNotFound(user_id)  # another agent's record does not exist for an agent

        def load() -> dict[str, Any]:
            window, _ = self._stats()
            return self._agent(self._users.agent(user_id), window).model_dump(mode="python")

        params = {"agent": user_id, "today": str(self._clock.today())}
        return self._cache.get_or_load(Namespace.AGENTS, f"agent:{user_id}", params, load)

    def create(self, body: AgentCreate) -> NewAgent:
        """The agent's record and its user pool account (group agent), or neither."""
        availability = body.availability.value
        item, password = self._accounts.create(
            {
                "user_id": f"agent-{secrets.token_hex(6)}",
                "name": body.name,
                "email": str(body.email).lower(),
                "status": UserStatus.ACTIVE.value,
                "availability": availability,
                "capacity": body.capacity,
                "open_leads": 0,
                **({"assignable": availability} if availability == Availability.ONLINE else {}),
            },
            Role.AGENT,
        )
        self._invalidate()
        return NewAgent(**self._agent(item, {}).model_dump(), temporary_password=password)

    def update(self, principal: Principal, user_id: str, changes: AgentChanges) -> Agent:
        fields = changes.model_dump(mode="json", exclude_unset=True)
        if principal.role is Role.AGENT:
            if principal.user_id != user_id:
                raise AgentNotFound(user_id)
            refused = sorted(set(fields) - AGENT_SELF_FIELDS)
            if refused:
                raise ValidationFailed(
                    "An agent may set only its own availability",
                    details=[{"field": name, "message": "may not be set by an agent"} for name in refused],
                )
        item = self._users.update_agent(user_id, fields)
        self._invalidate()
        if "status" in fields:
            self._accounts.apply_status(item)
        window, _ = self._stats()
        return self._agent(item, window)

    def _invalidate(self) -> None:
        self._cache.invalidate_namespaces([Namespace.AGENTS, Namespace.STATS])  # the dashboard's agents block


class ManagerService:
    """Managers: created by an administrator with their user pool account (group manager), and
    disabled or enabled with it."""

    def __init__(self, users: UserDirectory, accounts: StaffAccounts) -> None:
        self._users = users
        self._accounts = accounts

    @staticmethod
    def _manager(item: Item) -> Manager:
        return Manager(
            user_id=str(item["user_id"]),
            name=str(item.get("name", item["user_id"])),
            email=item.get("email"),
            status=UserStatus(item.get("status", UserStatus.ACTIVE)),
        )

    def create(self, body: ManagerCreate) -> NewManager:
        item, password = self._accounts.create(
            {
                "user_id": f"manager-{secrets.token_hex(6)}",
                "name": body.name,
                "email": str(body.email).lower(),
                "status": UserStatus.ACTIVE.value,
            },
            Role.MANAGER,
        )
        return NewManager(**self._manager(item).model_dump(), temporary_password=password)

    def update(self, user_id: str, changes: ManagerChanges) -> Manager:
        fields = changes.model_dump(mode="json", exclude_unset=True)
        item = self._users.update_manager(user_id, fields)
        if "status" in fields:
            self._accounts.apply_status(item)
        return self._manager(item)
