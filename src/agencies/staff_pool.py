"""Data access of the staff user pool: the accounts staff (agents, managers) sign in with.

The only code of the agencies service that calls Cognito. An account's username is its email (the
pool signs in with email, `UsernameAttributes: [email]`); its immutable `custom:user_id` names its
users-table record, and its group is its role. The users table stays the source of the role and
the active flag the API checks on every request; the pool decides who can sign in and refresh.

The client's endpoint comes from boto3's standard settings (`AWS_ENDPOINT_URL`), so the same code
reaches Cognito in AWS and the local stack's pool.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import ApiError, Conflict, ValidationFailed
from shared.observability import logger

# The pool's password policy (template.yaml, UserPool): 12 characters or more with upper and lower
# case letters, a number and a symbol. A temporary password has 16, at least one of each kind; its
# symbols are Cognito's without quotes, brackets, slashes and commas, which are easy to mistype.
TEMPORARY_PASSWORD_LENGTH = 16
SYMBOLS = "!#$%&*+-=?@^_~"
_PASSWORD_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, SYMBOLS)
_PASSWORD_ALPHABET = "".join(_PASSWORD_CLASSES)
# Errors of a request the pool refuses for its content: the caller can fix them (422).
_REFUSED = frozenset(
    {
        "InvalidParameterException",
        "InvalidPasswordException",
        "AliasExistsException",
        "CodeDeliveryFailureException",
    }
)


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"

    def __init__(self) -> None:
        super().__init__(
            "A staff account with this email already exists",
            details=[{"field": "email", "message": "already has a staff account"}],
        )


class AccountRefused(ValidationFailed):
    code = "STAFF_ACCOUNT_REFUSED"

    def __init__(self, message: str) -> None:
        super().__init__("The user pool refused the account", details=[{"field": "body", "message": message}])


class StaffPoolUnavailable(ApiError):
    """The pool did not answer or failed: nothing was done, or what the message says was."""

    status = 503
    code = "USER_POOL_UNAVAILABLE"


@dataclass(frozen=True)
class NewAccount:
    username: str  # the pool's own name of the account (its `sub` when email is the username)
    temporary_password: str


class StaffPool(Protocol):
    """What the staff services need of the pool (`CognitoStaffPool`; a fake in unit tests)."""

    def create_account(self, *, email: str, name: str, user_id: str, group: str) -> NewAccount: ...

    def delete_account(self, email: str, user_id: str) -> None: ...

    def disable_account(self, email: str) -> bool: ...

    def enable_account(self, email: str) -> bool: ...


def temporary_password() -> str:
    """A random password the pool's policy accepts: at least one character of every kind."""
    chosen = [secrets.choice(kind) for kind in _PASSWORD_CLASSES]
    chosen += [secrets.choice(_PASSWORD_ALPHABET) for _ in range(TEMPORARY_PASSWORD_LENGTH - len(chosen))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


@cache
def cognito_client() -> Any:
    """One client per process (thread-safe, its connections reused)."""
    return boto3.client("cognito-idp", config=Config(retries={"mode": "standard", "max_attempts": 4}))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class CognitoStaffPool:
    def __init__(self, pool_id: str, client: Any | None = None) -> None:
        self._pool_id = pool_id
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = cognito_client()
        return self._client

    def create_account(self, *, email: str, name: str, user_id: str, group: str) -> NewAccount:
        """Creates the account, in `group`, with a temporary password that must be changed at the
        first sign-in; Cognito emails it to `email` with the pool's invitation. Either both steps
        hold or neither does: an account that cannot join its group is removed again."""
        password = temporary_password()
        try:
            user = self.client.admin_create_user(
                UserPoolId=self._pool_id,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "email_verified", "Value": "true"},
                    {"Name": "name", "Value": name},
                    {"Name": "custom:user_id", "Value": user_id},
                ],
                TemporaryPassword=password,
                DesiredDeliveryMediums=["EMAIL"],
            )["User"]
        except ClientError as exc:
            if _code(exc) == "UsernameExistsException":
                raise EmailTaken() from exc
            raise self._failure(exc, "creating the account") from exc
        except BotoCoreError as exc:
            raise self._failure(exc, "creating the account") from exc
        try:
            self.client.admin_add_user_to_group(UserPoolId=self._pool_id, Username=email, GroupName=group)
        except (ClientError, BotoCoreError) as exc:
            failure = self._failure(exc, f"adding the account to group {group}")
            self.delete_account(email, user_id)
            raise failure from exc
        return NewAccount(username=str(user.get("Username", email)), temporary_password=password)

    def delete_account(self, email: str, user_id: str) -> None:
        """Removes the account of a creation that failed (gone already is fine). It never
        raises: the creation's own failure is what the caller answers; a failure to remove is
        logged (with the user id) for an operator to remove the account."""
        try:
            self._call("admin_delete_user", email, "removing the account")
        except ApiError:
            logger.error("a staff account was left after a failed creation", extra={"user_id": user_id})

    def disable_account(self, email: str) -> bool:
        """The account can no longer sign in, and its refresh tokens stop working. False if there
        is no such account."""
        return self._call("admin_disable_user", email, "disabling the account") and self._call(
            "admin_user_global_sign_out", email, "signing the account out"
        )

    def enable_account(self, email: str) -> bool:
        """The account can sign in again. False if there is no such account."""
        return self._call("admin_enable_user", email, "enabling the account")

    def _call(self, operation: str, email: str, doing: str) -> bool:
        try:
            getattr(self.client, operation)(UserPoolId=self._pool_id, Username=email)
        except ClientError as exc:
            if _code(exc) == "UserNotFoundException":
                return False
            raise self._failure(exc, doing) from exc
        except BotoCoreError as exc:
            raise self._failure(exc, doing) from exc
        return True

    @staticmethod
    def _failure(exc: ClientError | BotoCoreError, doing: str) -> ApiError:
        if isinstance(exc, ClientError) and _code(exc) in _REFUSED:
            return AccountRefused(str(exc.response.get("Error", {}).get("Message") or _code(exc)))
        code = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        logger.warning("user pool call failed", extra={"doing": doing, "error_code": code})
        return StaffPoolUnavailable(f"The user pool failed while {doing}; try again")
