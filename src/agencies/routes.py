"""Routes of the agencies service: /agencies*, /pricing*, /agents*, /managers*. Thin: read the input, call the
service, return the output."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from agencies.dependencies import (
    agency_service,
    agent_service,
    credential_service,
    manager_service,
    postback_service,
    pricing_service,
    vendor_returns,
)
from agencies.models import (
    VENDOR_CODE_PATTERN,
    Agency,
    AgencyCreate,
    AgencyFields,
    AgencyPage,
    AgencyWithPerformance,
    Agent,
    AgentChanges,
    AgentCreate,
    AgentPage,
    Credential,
    DeliveryPage,
    DeliveryStatus,
    Manager,
    ManagerChanges,
    ManagerCreate,
    NewAgent,
    NewManager,
    PostbackDelivery,
    PostbackEndpoint,
    PostbackEndpointBody,
    PricingSettingsView,
    PricingView,
    QuoteRequest,
    QuoteResponse,
    SettingsChanges,
    VendorPrice,
    VendorPriceBody,
)
from shared.http import endpoint, json_response
from shared.params import Body, Path, Query
from shared.records import USER_ID_PATTERN
from shared.returns import ReturnPage, ReturnStatus
from shared.security import STAFF, STAFF_AND_AGENTS, STAFF_AND_VENDORS, Role, current_principal

router = Router()
# Each group of routes is published under its own tag.
agencies_endpoint = partial(endpoint, router, tags=["agencies"])
pricing_endpoint = partial(endpoint, router, tags=["pricing"])
agents_endpoint = partial(endpoint, router, tags=["agents"])
managers_endpoint = partial(endpoint, router, tags=["managers"])
postbacks_endpoint = partial(endpoint, router, tags=["postbacks"])

ADMIN = (Role.ADMIN,)
AGENCY_READERS = STAFF_AND_VENDORS
AGENT_READERS = STAFF_AND_AGENTS
# A vendor manages its own postbacks; an admin any vendor's.
POSTBACK_MANAGERS = (Role.ADMIN, Role.VENDOR)
NO_STORE = {"Cache-Control": "no-store"}
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


Code = Annotated[str, Path(pattern=VENDOR_CODE_PATTERN)]
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN)]
DeliveryId = Annotated[str, Path(pattern=r"^msg_[0-9A-HJKMNP-TV-Z]{26}$")]


# -- agencies -------------------------------------------------------------------------------------
@agencies_endpoint("GET", "/agencies", roles=AGENCY_READERS, response_model=AgencyPage)
def list_agencies(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[Any]:
    """Agencies with performance and insights (a vendor sees its own)"""
    return json_response(agency_service().page(current_principal(), limit, cursor))


@agencies_endpoint("POST", "/agencies", roles=ADMIN, response_model=Agency, status=201, errors=[409])
def create_agency(body: Annotated[AgencyCreate, Body()]) -> Response[Any]:
    """Create an agency"""
    return json_response(agency_service().create(body), status=201)


@agencies_endpoint(
    "GET", "/agencies/<code>", roles=AGENCY_READERS, response_model=AgencyWithPerformance, errors=[404]
)
def get_agency(code: Code) -> Response[Any]:
    """One agency with performance and insights"""
    return json_response(agency_service().one(current_principal(), code))


@agencies_endpoint(
    "GET", "/agencies/<code>/returns", roles=AGENCY_READERS, response_model=ReturnPage, errors=[404]
)
def list_agency_returns(
    code: Code,
    status: Annotated[ReturnStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[Any]:
    """An agency's lead returns, newest first

    A vendor lists its own (another agency is 404), without `requested_by` and `decided_by`."""
    return json_response(vendor_returns().page(current_principal(), code, status, limit, cursor))


@agencies_endpoint("PATCH", "/agencies/<code>", roles=ADMIN, response_model=Agency, errors=[404])
def update_agency(code: Code, changes: Annotated[AgencyFields, Body()]) -> Response[Any]:
    """Change an agency: name, status, goal, caps, dedupe window, test mode, contact"""
    return json_response(agency_service().update(code, changes))


@agencies_endpoint(
    "POST", "/agencies/<code>/credentials", roles=ADMIN, response_model=Credential, status=201, errors=[404]
)
def issue_credential(code: Code) -> Response[Any]:
    """Issue an integration token for the agency (shown once)

    The token is valid for 365 days, the longest lifetime of a vendor token. Issuing one does not
    revoke the agency's other credentials: to rotate, issue a new one, switch the integration to
    it, then revoke the old one.
    """
    credential = credential_service().issue(code)
    return json_response(credential, status=201, headers={"Cache-Control": "no-store"})


@agencies_endpoint(
    "DELETE",
    "/agencies/<code>/credentials/<user_id>",
    roles=ADMIN,
    response_model=None,
    status=204,
    errors=[404],
)
def revoke_credential(code: Code, user_id: UserId) -> Response[Any]:
    """Revoke an integration token (refused within 60 s)"""
    credential_service().revoke(code, user_id)
    return Response(status_code=204)


# -- postbacks ------------------------------------------------------------------------------------
@postbacks_endpoint(
    "GET",
    "/agencies/<code>/webhook",
    roles=POSTBACK_MANAGERS,
    response_model=PostbackEndpoint,
    errors=[404],
)
def get_postback_endpoint(code: Code) -> Response[Any]:
    """The agency's postback endpoint (never its secret)

    A vendor reads its own (another agency is 404); 404 `POSTBACK_NOT_REGISTERED` when none is set."""
    return json_response(postback_service().show(current_principal(), code))


@postbacks_endpoint(
    "PUT",
    "/agencies/<code>/webhook",
    roles=POSTBACK_MANAGERS,
    response_model=PostbackEndpoint,
    errors=[404, 409],
)
def put_postback_endpoint(code: Code, body: Annotated[PostbackEndpointBody, Body()]) -> Response[Any]:
    """Register or change the agency's postback endpoint

    The first registration's answer carries the signing `secret` (shown once), and so does a change
    with `rotate_secret: true` (for 24 hours the previous secret signs beside the new one: two
    `v1,` signatures in `webhook-signature`); any other change keeps the secret and does not show
    it. The URL must be https to a host that resolves to public addresses only (422
    `POSTBACK_URL_REFUSED` otherwise; the local stack also allows http://127.0.0.1). Events:
    `lead.accepted`, `lead.status_changed`, `lead.returned`."""
    shown = postback_service().register(current_principal(), code, body)
    return json_response(shown, headers=NO_STORE)


@postbacks_endpoint(
    "DELETE",
    "/agencies/<code>/webhook",
    roles=POSTBACK_MANAGERS,
    response_model=None,
    status=204,
    errors=[404],
)
def delete_postback_endpoint(code: Code) -> Response[Any]:
    """Remove the agency's postback endpoint (no further postbacks)"""
    postback_service().remove(current_principal(), code)
    return Response(status_code=204)


@postbacks_endpoint(
    "GET",
    "/agencies/<code>/webhook/deliveries",
    roles=POSTBACK_MANAGERS,
    response_model=DeliveryPage,
    errors=[404],
)
def list_postback_deliveries(
    code: Code,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[Any]:
    """The agency's postback deliveries, newest first, with their attempts

    `attempt_log` has every attempt: when, outcome, response code, latency; a pending delivery
    says when it is tried next. Attempts follow a back-off for up to 24 hours, then the delivery
    is `failed`."""
    return json_response(postback_service().deliveries(current_principal(), code, status, limit, cursor))


@postbacks_endpoint(
    "POST",
    "/agencies/<code>/webhook/deliveries/<delivery_id>/retry",
    roles=POSTBACK_MANAGERS,
    response_model=PostbackDelivery,
    status=202,
    errors=[404, 409],
)
def retry_postback_delivery(code: Code, delivery_id: DeliveryId) -> Response[Any]:
    """Try a delivered or failed postback once more, now

    409 `DELIVERY_PENDING` while it waits for an attempt."""
    return json_response(postback_service().retry(current_principal(), code, delivery_id), status=202)


# -- pricing --------------------------------------------------------------------------------------
@pricing_endpoint("GET", "/pricing", roles=STAFF, response_model=PricingView)
def get_pricing() -> Response[Any]:
    """Vendor prices and pricing settings"""
    return json_response(pricing_service().view())


@pricing_endpoint("PATCH", "/pricing/settings", roles=ADMIN, response_model=PricingSettingsView, errors=[409])
def change_pricing_settings(changes: Annotated[SettingsChanges, Body()]) -> Response[Any]:
    """Change the pricing settings"""
    return json_response(pricing_service().change_settings(changes))


@pricing_endpoint("POST", "/pricing/quote", roles=STAFF, response_model=QuoteResponse, errors=[404])
def quote_price(request: Annotated[QuoteRequest, Body()]) -> Response[Any]:
    """The price a lead would get now, with each factor"""
    return json_response(pricing_service().quote(request))


@pricing_endpoint("PUT", "/pricing/<vendor_code>", roles=ADMIN, response_model=VendorPrice, errors=[404])
def set_vendor_price(
    vendor_code: Annotated[str, Path(pattern=VENDOR_CODE_PATTERN)], body: Annotated[VendorPriceBody, Body()]
) -> Response[Any]:
    """Set a vendor's lead price"""
    return json_response(pricing_service().set_vendor_price(vendor_code, body.price))


# -- agents ---------------------------------------------------------------------------------------
@agents_endpoint("GET", "/agents", roles=STAFF, response_model=AgentPage)
def list_agents() -> Response[Any]:
    """Agents with availability, load and conversions"""
    return json_response(agent_service().all())


@agents_endpoint("POST", "/agents", roles=ADMIN, response_model=NewAgent, status=201, errors=[409, 503])
def create_agent(body: Annotated[AgentCreate, Body()]) -> Response[Any]:
    """Create an agent, with its staff sign-in account

    The user pool account (group `agent`) signs in with the email and the temporary password,
    which the pool emails and this answer carries once; the first sign-in sets a new password.
    409 `EMAIL_TAKEN` when the email has a staff account already. Nothing is kept of a creation
    that fails."""
    return json_response(agent_service().create(body), status=201, headers=NO_STORE)


@agents_endpoint("GET", "/agents/<user_id>", roles=AGENT_READERS, response_model=Agent, errors=[404])
def get_agent(user_id: UserId) -> Response[Any]:
    """One agent (an agent reads only itself)"""
    return json_response(agent_service().one(current_principal(), user_id))


@agents_endpoint(
    "PATCH", "/agents/<user_id>", roles=AGENT_READERS, response_model=Agent, errors=[404, 409, 503]
)
def update_agent(user_id: UserId, changes: Annotated[AgentChanges, Body()]) -> Response[Any]:
    """Change an agent: availability (an agent, its own), capacity and status (manager, admin)

    `status: disabled` refuses the agent's tokens within 60 s, disables its sign-in account and
    ends its sign-ins (refresh tokens stop working); `active` enables the account again. 503
    `USER_POOL_UNAVAILABLE`: the record changed but the account did not; repeat the request."""
    return json_response(agent_service().update(current_principal(), user_id, changes))


# -- managers -------------------------------------------------------------------------------------
@managers_endpoint("POST", "/managers", roles=ADMIN, response_model=NewManager, status=201, errors=[409, 503])
def create_manager(body: Annotated[ManagerCreate, Body()]) -> Response[Any]:
    """Create a manager, with its staff sign-in account

    As for an agent (`POST /agents`), in the user pool group `manager`."""
    return json_response(manager_service().create(body), status=201, headers=NO_STORE)


@managers_endpoint("PATCH", "/managers/<user_id>", roles=ADMIN, response_model=Manager, errors=[404, 503])
def update_manager(user_id: UserId, changes: Annotated[ManagerChanges, Body()]) -> Response[Any]:
    """Change a manager: name, status

    `status` disables or enables the manager and its sign-in account as for an agent."""
    return json_response(manager_service().update(user_id, changes))
