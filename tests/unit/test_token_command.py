"""`crm token` and `crm event --ttl` for a vendor's credential: they sign only lifetimes the server
accepts, and refuse (never cap) a longer one. (A demo staff user's token is the user pool's ID
token, signed in on a running stack: tests/e2e/test_staff_user_pool.py.)"""

from __future__ import annotations

import json

import pytest

from crm.cli import main
from crm.stack import LOCAL_JWT_SECRET
from shared.auth import VENDOR_TOKEN_MAX_SECONDS, TokenSettings, bearer_token, verify_token

LOCAL_TOKENS = TokenSettings(secret=LOCAL_JWT_SECRET, issuer="crm", audience="crm-api")


@pytest.fixture(autouse=True)
def local_signing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)


def _lifetime(claims: dict[str, int]) -> int:
    return claims["exp"] - claims["iat"]


def test_token_signs_exactly_the_vendor_maximum(capsys: pytest.CaptureFixture[str]) -> None:
    # When
    assert main(["token", "demo-vendor-2", "--ttl", str(VENDOR_TOKEN_MAX_SECONDS)]) == 0
    # Then
    claims = verify_token(LOCAL_TOKENS, capsys.readouterr().out.strip())
    assert (claims["sub"], _lifetime(claims)) == ("demo-vendor-2", VENDOR_TOKEN_MAX_SECONDS)


def test_token_lives_an_hour_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "demo-vendor-1"]) == 0
    assert _lifetime(verify_token(LOCAL_TOKENS, capsys.readouterr().out.strip())) == 3600


@pytest.mark.parametrize(
    "command", [["token", "demo-vendor-1"], ["event", "leads-list", "--user", "demo-vendor-1", "--out", "-"]]
)
@pytest.mark.parametrize(
    "ttl",
    [
        pytest.param(VENDOR_TOKEN_MAX_SECONDS + 1, id="one-second-over"),
        pytest.param(10 * 365 * 86400, id="ten-years"),
        pytest.param(10**30, id="10e30-seconds"),
    ],
)
def test_a_lifetime_over_the_vendor_maximum_is_refused(
    command: list[str], ttl: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # When
    with pytest.raises(SystemExit) as exited:
        main([*command, "--ttl", str(ttl)])
    # Then nothing is signed, and the error says what is allowed
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"at most {VENDOR_TOKEN_MAX_SECONDS} seconds (365 days)" in captured.err


@pytest.mark.parametrize("ttl", ["0", "-60", "an hour"])
def test_token_refuses_a_lifetime_that_is_not_a_positive_number(
    ttl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token", "demo-vendor-1", f"--ttl={ttl}"])
    assert exited.value.code == 2
    assert capsys.readouterr().out == ""


def test_event_signs_exactly_the_vendor_maximum(capsys: pytest.CaptureFixture[str]) -> None:
    # When
    command = ["event", "leads-list", "--user", "demo-vendor-1", "--ttl", str(VENDOR_TOKEN_MAX_SECONDS)]
    assert main([*command, "--out", "-"]) == 0
    # Then
    event = json.loads(capsys.readouterr().out)
    claims = verify_token(LOCAL_TOKENS, bearer_token(event["headers"]["Authorization"]))
    assert _lifetime(claims) == VENDOR_TOKEN_MAX_SECONDS


def test_a_staff_token_without_a_running_stack_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    # Given: no recorded `crm serve`, and nothing listening on the named port
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    # When
    status = main(["token", "demo-admin", "--aws-port", "9"])
    # Then
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("crm token: no local AWS endpoint at http://127.0.0.1:9")
    assert captured.err.count("\n") == 1
