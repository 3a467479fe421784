"""`crm token` and `crm event --ttl`: they sign only lifetimes the server accepts for staff, and
refuse (never cap) a longer one."""

from __future__ import annotations

import json

import pytest

from crm.cli import main
from crm.stack import LOCAL_JWT_SECRET
from shared.auth import STAFF_TOKEN_MAX_SECONDS, TokenSettings, bearer_token, verify_token

LOCAL_TOKENS = TokenSettings(secret=LOCAL_JWT_SECRET, issuer="crm", audience="crm-api")


@pytest.fixture(autouse=True)
def local_signing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)


def _lifetime(claims: dict[str, int]) -> int:
    return claims["exp"] - claims["iat"]


def test_token_signs_exactly_the_staff_maximum(capsys: pytest.CaptureFixture[str]) -> None:
    # When
    assert main(["token", "demo-manager", "--ttl", str(STAFF_TOKEN_MAX_SECONDS)]) == 0
    # Then
    claims = verify_token(LOCAL_TOKENS, capsys.readouterr().out.strip())
    assert (claims["sub"], _lifetime(claims)) == ("demo-manager", STAFF_TOKEN_MAX_SECONDS)


def test_token_lives_an_hour_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "demo-admin"]) == 0
    assert _lifetime(verify_token(LOCAL_TOKENS, capsys.readouterr().out.strip())) == 3600


@pytest.mark.parametrize("command", [["token", "demo-admin"], ["event", "leads-list", "--out", "-"]])
@pytest.mark.parametrize(
    "ttl",
    [
        pytest.param(STAFF_TOKEN_MAX_SECONDS + 1, id="one-second-over"),
        pytest.param(10 * 365 * 86400, id="ten-years"),
        pytest.param(10**30, id="10e30-seconds"),
    ],
)
def test_a_lifetime_over_the_staff_maximum_is_refused(
    command: list[str], ttl: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # When
    with pytest.raises(SystemExit) as exited:
        main([*command, "--ttl", str(ttl)])
    # Then nothing is signed, and the error says what is allowed
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"at most {STAFF_TOKEN_MAX_SECONDS} seconds (12 hours)" in captured.err
    assert "POST /agencies/{code}/credentials" in captured.err


@pytest.mark.parametrize("ttl", ["0", "-60", "an hour"])
def test_token_refuses_a_lifetime_that_is_not_a_positive_number(
    ttl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token", "demo-admin", f"--ttl={ttl}"])
    assert exited.value.code == 2
    assert capsys.readouterr().out == ""


def test_event_signs_exactly_the_staff_maximum(capsys: pytest.CaptureFixture[str]) -> None:
    # When
    assert main(["event", "leads-list", "--ttl", str(STAFF_TOKEN_MAX_SECONDS), "--out", "-"]) == 0
    # Then
    event = json.loads(capsys.readouterr().out)
    claims = verify_token(LOCAL_TOKENS, bearer_token(event["headers"]["Authorization"]))
    assert _lifetime(claims) == STAFF_TOKEN_MAX_SECONDS
