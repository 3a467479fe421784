"""Staff accounts kept in step with the user pool, against an in-memory pool: a creation is the
record and the pool account or neither, a taken email is a 409 that writes nothing, a status change
reaches the account, and the temporary password meets the pool's policy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agencies.models import AgentChanges, AgentCreate, ManagerChanges, ManagerCreate
from agencies.repository import AgentNotFound, ManagerNotFound
from agencies.service import AgentService, ManagerService, StaffAccounts
from agencies.staff_pool import (
    AccountRefused,
    EmailTaken,
    NewAccount,
    StaffPoolUnavailable,
    temporary_password,
)
from crm.template import Template
from shared.cache import DisabledBackend, QueryCache
from shared.dates import Clock
from shared.errors import Conflict
from shared.security import Principal, Role

POLICY = Template.load({"Stage": "test"}).user_pool().properties["Policies"]["PasswordPolicy"]
COGNITO_SYMBOLS = re.compile(r"[\^$*.\[\]{}()?\"!@#%&/\\,><':;|_~`=+\-]")


@dataclass
class Account:
    name: str
    user_id: str
    group: str
    password: str
    enabled: bool = True
    signed_out: int = 0


@dataclass
class MemoryPool:
    """The user pool in memory: accounts by email. `fail` names an operation that raises
    `StaffPoolUnavailable`; `refuse` makes creation raise `AccountRefused`."""

    accounts: dict[str, Account] = field(default_factory=dict)
    fail: str | None = None
    refuse: bool = False
    calls: list[str] = field(default_factory=list)

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        if self.fail == operation:
            raise StaffPoolUnavailable(f"The user pool failed: {operation}")

    def create_account(self, *, email: str, name: str, user_id: str, group: str) -> NewAccount:
        self._call("create")
        if self.refuse:
            raise AccountRefused("Invalid email address format.")
        if email in self.accounts:
            raise EmailTaken()
        password = temporary_password()
        self.accounts[email] = Account(name, user_id, group, password)
        return NewAccount(username=f"sub-{user_id}", temporary_password=password)

    def delete_account(self, email: str, user_id: str) -> None:
        self.calls.append("delete")
        self.accounts.pop(email, None)

    def disable_account(self, email: str) -> bool:
        self._call("disable")
        if email not in self.accounts:
            return False
        self.accounts[email].enabled = False
        self.accounts[email].signed_out += 1
        return True

    def enable_account(self, email: str) -> bool:
        self._call("enable")
        if email not in self.accounts:
            return False
        self.accounts[email].enabled = True
        return True


class MemoryUsers:
    """The users table's staff records in memory. `fail_create` makes the next write raise it."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.fail_create: Exception | None = None

    def create(self, item: Mapping[str, Any]) -> dict[str, Any]:
        if self.fail_create is not None:
            raise self.fail_create
        self.items[str(item["user_id"])] = dict(item)
        return dict(item)

    def _update(
        self, user_id: str, role: str, changes: Mapping[str, Any], missing: Exception
    ) -> dict[str, Any]:
        item = self.items.get(user_id)
        if item is None or item["role"] != role:
            raise missing
        item.update(changes)
        return dict(item)

    def update_agent(self, user_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._update(user_id, "agent", changes, AgentNotFound(user_id))

    def update_manager(self, user_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._update(user_id, "manager", changes, ManagerNotFound(user_id))


class NoBuckets:
    def last_days(self, *args: Any) -> dict[str, Any]:
        return {}


ADMIN = Principal(user_id="demo-admin", role=Role.ADMIN)


@pytest.fixture
def pool() -> MemoryPool:
    return MemoryPool()


@pytest.fixture
def users() -> MemoryUsers:
    return MemoryUsers()


@pytest.fixture
def agents(pool: MemoryPool, users: MemoryUsers) -> AgentService:
    accounts = StaffAccounts(users, pool)  # type: ignore[arg-type]
    cache = QueryCache(DisabledBackend())
    return AgentService(users, NoBuckets(), cache, Clock(ZoneInfo("UTC")), accounts)  # type: ignore[arg-type]


@pytest.fixture
def managers(pool: MemoryPool, users: MemoryUsers) -> ManagerService:
    return ManagerService(users, StaffAccounts(users, pool))  # type: ignore[arg-type]


def new_agent(email: str = "Robin@CRM.example.com") -> AgentCreate:
    return AgentCreate(name="Robin Rep", email=email, capacity=3)


# -- creation -------------------------------------------------------------------------------------
def test_creating_an_agent_creates_its_pool_account_in_group_agent(
    agents: AgentService, pool: MemoryPool, users: MemoryUsers
) -> None:
    # When
    created = agents.create(new_agent())
    # Then
    account = pool.accounts["robin@crm.example.com"]
    assert account.group == "agent"
    assert account.user_id == created.user_id == next(iter(users.items))
    assert account.name == "Robin Rep"
    assert created.temporary_password == account.password
    assert users.items[created.user_id]["role"] == "agent"


def test_the_temporary_password_is_answered_but_never_stored(
    agents: AgentService, users: MemoryUsers
) -> None:
    created = agents.create(new_agent())
    stored = users.items[created.user_id]
    assert created.temporary_password not in {str(value) for value in stored.values()}
    assert not any("password" in name for name in stored)


def test_a_taken_email_is_a_409_email_taken_and_writes_no_record(
    agents: AgentService, pool: MemoryPool, users: MemoryUsers
) -> None:
    # Given an account with that email
    agents.create(new_agent())
    before = dict(users.items)
    # When
    with pytest.raises(EmailTaken) as refused:
        agents.create(new_agent("robin@crm.example.com"))
    # Then
    assert (refused.value.status, refused.value.code) == (409, "EMAIL_TAKEN")
    assert users.items == before
    assert len(pool.accounts) == 1


def test_an_account_the_pool_refuses_is_a_4xx_and_writes_no_record(
    agents: AgentService, pool: MemoryPool, users: MemoryUsers
) -> None:
    pool.refuse = True
    with pytest.raises(AccountRefused) as refused:
        agents.create(new_agent())
    assert refused.value.status == 422
    assert users.items == {}


def test_a_pool_that_fails_leaves_no_record(
    agents: AgentService, pool: MemoryPool, users: MemoryUsers
) -> None:
    pool.fail = "create"
    with pytest.raises(StaffPoolUnavailable) as failed:
        agents.create(new_agent())
    assert failed.value.status == 503
    assert users.items == {}


@pytest.mark.parametrize(
    "failure", [Conflict("User agent-x already exists"), RuntimeError("DynamoDB is down")]
)
def test_a_record_that_cannot_be_written_removes_the_pool_account_again(
    agents: AgentService, pool: MemoryPool, users: MemoryUsers, failure: Exception
) -> None:
    # Given the users table refuses the write
    users.fail_create = failure
    # When
    with pytest.raises(type(failure)):
        agents.create(new_agent())
    # Then the account made first is gone: no partial write is left
    assert pool.calls == ["create", "delete"]
    assert pool.accounts == {}
    assert users.items == {}


def test_creating_a_manager_creates_its_pool_account_in_group_manager(
    managers: ManagerService, pool: MemoryPool, users: MemoryUsers
) -> None:
    created = managers.create(ManagerCreate(name="Morgan Lead", email="morgan@crm.example.com"))
    assert pool.accounts["morgan@crm.example.com"].group == "manager"
    assert pool.accounts["morgan@crm.example.com"].user_id == created.user_id
    assert users.items[created.user_id]["role"] == "manager"
    assert created.user_id.startswith("manager-")
    assert created.temporary_password == pool.accounts["morgan@crm.example.com"].password


def test_a_manager_cannot_take_an_agents_email(
    agents: AgentService, managers: ManagerService, users: MemoryUsers
) -> None:
    agents.create(new_agent())
    with pytest.raises(EmailTaken):
        managers.create(ManagerCreate(name="Robin Again", email="robin@crm.example.com"))
    assert [item["role"] for item in users.items.values()] == ["agent"]


# -- status ---------------------------------------------------------------------------------------
def test_disabling_an_agent_disables_its_account_and_signs_it_out_and_enabling_enables_it(
    agents: AgentService, pool: MemoryPool
) -> None:
    # Given
    created = agents.create(new_agent())
    account = pool.accounts["robin@crm.example.com"]
    # When disabled
    disabled = agents.update(ADMIN, created.user_id, AgentChanges(status="disabled"))
    # Then
    assert disabled.status == "disabled"
    assert (account.enabled, account.signed_out) == (False, 1)
    # When enabled again
    agents.update(ADMIN, created.user_id, AgentChanges(status="active"))
    # Then
    assert account.enabled is True


def test_a_change_without_status_does_not_call_the_pool(agents: AgentService, pool: MemoryPool) -> None:
    created = agents.create(new_agent())
    pool.calls.clear()
    agents.update(ADMIN, created.user_id, AgentChanges(availability="online", capacity=5))
    assert pool.calls == []


def test_a_user_without_a_pool_account_is_disabled_all_the_same(
    agents: AgentService, pool: MemoryPool, users: MemoryUsers
) -> None:
    # Given an agent made before the pool existed
    users.items["agent-old"] = {"user_id": "agent-old", "role": "agent", "email": "old@crm.example.com"}
    # When
    disabled = agents.update(ADMIN, "agent-old", AgentChanges(status="disabled"))
    # Then
    assert disabled.status == "disabled"
    assert pool.calls == ["disable"]


def test_a_pool_that_fails_on_disabling_is_a_503_and_the_record_stays_disabled(
    agents: AgentService, pool: MemoryPool, users: MemoryUsers
) -> None:
    # Given
    created = agents.create(new_agent())
    pool.fail = "disable"
    # When
    with pytest.raises(StaffPoolUnavailable):
        agents.update(ADMIN, created.user_id, AgentChanges(status="disabled"))
    # Then the API refuses the agent's tokens already; repeating the change completes it
    assert users.items[created.user_id]["status"] == "disabled"
    pool.fail = None
    agents.update(ADMIN, created.user_id, AgentChanges(status="disabled"))
    assert pool.accounts["robin@crm.example.com"].enabled is False


def test_disabling_a_manager_disables_its_account(
    managers: ManagerService, pool: MemoryPool, users: MemoryUsers
) -> None:
    created = managers.create(ManagerCreate(name="Morgan Lead", email="morgan@crm.example.com"))
    changed = managers.update(created.user_id, ManagerChanges(status="disabled"))
    assert changed.status == "disabled"
    assert pool.accounts["morgan@crm.example.com"].enabled is False


def test_an_agent_is_not_a_manager(agents: AgentService, managers: ManagerService, pool: MemoryPool) -> None:
    created = agents.create(new_agent())
    pool.calls.clear()
    with pytest.raises(ManagerNotFound):
        managers.update(created.user_id, ManagerChanges(status="disabled"))
    assert pool.calls == []


# -- the temporary password -----------------------------------------------------------------------
def test_a_temporary_password_meets_the_pool_policy() -> None:
    for _ in range(1000):
        password = temporary_password()
        assert len(password) >= POLICY["MinimumLength"]
        assert re.search("[A-Z]", password)
        assert re.search("[a-z]", password)
        assert re.search("[0-9]", password)
        assert COGNITO_SYMBOLS.search(password)
        assert COGNITO_SYMBOLS.sub("", re.sub("[A-Za-z0-9]", "", password)) == ""  # nothing else


def test_temporary_passwords_differ() -> None:
    assert len({temporary_password() for _ in range(100)}) == 100


# -- the sign-in address --------------------------------------------------------------------------
@pytest.mark.parametrize("email", ["Robin@CRM.example.com", "r.rep+crm@sales.example.co", "0a@x9.io"])
def test_a_staff_email_the_pool_takes_is_accepted(email: str) -> None:
    assert AgentCreate(name="Robin", email=email).email == email.lower()
    assert ManagerCreate(name="Robin", email=email).email == email.lower()


@pytest.mark.parametrize("email", ["0@0.a", "-robin@example.com", "rob!n@example.com", "robin@example.test"])
def test_a_staff_email_the_pool_would_refuse_is_422(email: str) -> None:
    with pytest.raises(ValueError, match="email"):
        AgentCreate(name="Robin", email=email)
    with pytest.raises(ValueError, match="email"):
        ManagerCreate(name="Robin", email=email)
