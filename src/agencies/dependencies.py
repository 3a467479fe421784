"""The agencies service's collaborators, built from the process-wide objects of
`shared.dependencies`. The routes ask for them here; nothing else in the service constructs a
table or a time zone."""

from __future__ import annotations

from agencies.postbacks import DeliveryQueue, PostbackService, PostbackStore
from agencies.repository import AgencyRepository, PricingRepository, UserDirectory
from agencies.returns import VendorReturns
from agencies.service import (
    AgencyService,
    AgentService,
    CredentialService,
    ManagerService,
    PricingService,
    StaffAccounts,
)
from agencies.staff_pool import CognitoStaffPool
from shared import dependencies
from shared.auth import issue_token
from shared.config import get_settings
from shared.dates import Clock
from shared.returns import ReturnRecords


def clock() -> Clock:
    return Clock(dependencies.business_zone())


def agency_service() -> AgencyService:
    return AgencyService(
        AgencyRepository(dependencies.vendors_table()),
        dependencies.day_buckets(),
        dependencies.query_cache(),
        dependencies.cursor_codec(),
        clock(),
    )


def credential_service() -> CredentialService:
    return CredentialService(
        AgencyRepository(dependencies.vendors_table()),
        UserDirectory(dependencies.users_table()),
        lambda user_id, ttl: issue_token(dependencies.token_settings(), user_id, ttl_seconds=ttl),
    )


def pricing_service() -> PricingService:
    return PricingService(
        PricingRepository(dependencies.pricing_table()),
        AgencyRepository(dependencies.vendors_table()),
        dependencies.pricer(),
        dependencies.query_cache(),
    )


def staff_accounts() -> StaffAccounts:
    return StaffAccounts(
        UserDirectory(dependencies.users_table()), CognitoStaffPool(get_settings().user_pool_id)
    )


def agent_service() -> AgentService:
    return AgentService(
        UserDirectory(dependencies.users_table()),
        dependencies.day_buckets(),
        dependencies.query_cache(),
        clock(),
        staff_accounts(),
    )


def manager_service() -> ManagerService:
    return ManagerService(UserDirectory(dependencies.users_table()), staff_accounts())


def vendor_returns() -> VendorReturns:
    return VendorReturns(
        AgencyRepository(dependencies.vendors_table()),
        ReturnRecords(dependencies.returns_table()),
        dependencies.cursor_codec(),
    )


def postback_service() -> PostbackService:
    settings = get_settings()
    return PostbackService(
        AgencyRepository(dependencies.vendors_table()),
        PostbackStore(dependencies.postbacks_table()),
        DeliveryQueue(settings.postback_queue, settings.postback_dead_letter_queue),
        dependencies.cursor_codec(),
        settings.postback_allow_loopback,
    )
