"""`crm event NAME`: an API Gateway sample of events/ with a fresh token that the functions accept
under `sam local` (signed with the secret the README's overrides give them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm.cli import main
from crm.samples import EVENTS_DIR
from crm.stack import LOCAL_JWT_SECRET
from shared.auth import TokenSettings, bearer_token, verify_token

LOCAL_TOKENS = TokenSettings(secret=LOCAL_JWT_SECRET, issuer="crm", audience="crm-api")


@pytest.fixture(autouse=True)
def local_signing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)


def test_event_writes_the_sample_with_a_fresh_token_for_the_user(tmp_path: Path) -> None:
    # Given the committed sample, with its placeholder token
    sample = json.loads((EVENTS_DIR / "leads-list.json").read_text())
    out = tmp_path / "leads-list.json"
    # When
    assert main(["event", "leads-list", "--user", "demo-vendor-1", "--ttl", "600", "--out", str(out)]) == 0
    # Then the event is the sample with a token the functions accept, in both header maps
    event = json.loads(out.read_text())
    token = bearer_token(event["headers"]["Authorization"])
    assert event["multiValueHeaders"]["Authorization"] == [f"Bearer {token}"]
    claims = verify_token(LOCAL_TOKENS, token)
    assert claims["sub"] == "demo-vendor-1"
    assert claims["exp"] - claims["iat"] == 600
    unchanged = {key: value for key, value in event.items() if "eaders" not in key}
    assert unchanged == {key: value for key, value in sample.items() if "eaders" not in key}
    assert event["headers"]["Origin"] == sample["headers"]["Origin"]


def test_event_prints_the_sample_with_out_dash(capsys: pytest.CaptureFixture[str]) -> None:
    # When
    assert main(["event", "leads-get", "--user", "demo-vendor-1", "--out", "-"]) == 0
    # Then stdout is the event alone, ready for `sam local invoke -e -`
    event = json.loads(capsys.readouterr().out)
    assert (
        verify_token(LOCAL_TOKENS, bearer_token(event["headers"]["Authorization"]))["sub"] == "demo-vendor-1"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [("stats-events-batch", "not an API Gateway request"), ("no-such-sample", "samples: admin-preflight")],
)
def test_event_refuses_what_cannot_carry_a_token(
    name: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When
    status = main(["event", name, "--out", "-"])
    # Then one line on stderr, nothing on stdout
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
