"""`leads.normalize`: canonical email and phone forms, free-text cleaning, disposable domains."""

from __future__ import annotations

from typing import Any

import pytest

from leads.normalize import (
    DISPOSABLE_DOMAINS,
    FieldError,
    clean_text,
    is_disposable,
    normalize_email,
    normalize_phone,
)

# --- FieldError ---------------------------------------------------------------------------------


def test_field_error_carries_field_and_message_and_prints_the_message_alone() -> None:
    # Given / When
    error = FieldError("email", "must be a string")

    # Then
    assert isinstance(error, ValueError)
    assert (error.field, error.message) == ("email", "must be a string")
    assert str(error) == "must be a string"


# --- normalize_email ----------------------------------------------------------------------------

# The longest address that is valid everywhere: a 64-char local part (the RFC 5321 maximum) and a
# domain of labels no longer than 63, 254 characters in all.
_LOCAL_64 = "a" * 64
_DOMAIN_189 = "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("jane.doe@example.com", "jane.doe@example.com", id="already-canonical"),
        pytest.param("Jane.Doe@Example.COM", "jane.doe@example.com", id="uppercase-local-and-domain"),
        pytest.param("  jane@example.com\t\n", "jane@example.com", id="surrounding-whitespace"),
        pytest.param("jane+leads@example.com", "jane+leads@example.com", id="plus-tag-kept"),
        pytest.param("o'brien@example.co.uk", "o'brien@example.co.uk", id="apostrophe-and-sld"),
        pytest.param("user@bücher.de", "user@bücher.de", id="unicode-domain"),
        pytest.param("user@BÜCHER.de", "user@bücher.de", id="unicode-domain-uppercase"),
        pytest.param("user@xn--bcher-kva.de", "user@bücher.de", id="punycode-domain-to-unicode"),
        pytest.param("Üser@example.com", "üser@example.com", id="unicode-local-part"),
        pytest.param("a" * 64 + "@example.com", "a" * 64 + "@example.com", id="64-char-local-part"),
        pytest.param("jane@example.com" + " " * 300, "jane@example.com", id="padding-not-counted-in-length"),
        pytest.param(
            _LOCAL_64 + "@" + _DOMAIN_189,
            _LOCAL_64 + "@" + _DOMAIN_189,
            id="exactly-254-chars",
        ),
    ],
)
def test_valid_emails_are_returned_entirely_lower_cased(raw: str, expected: str) -> None:
    # Given a syntactically valid address in any case

    # When
    normalized = normalize_email(raw)

    # Then
    assert normalized == expected
    assert normalize_email(normalized) == normalized, "normalizing twice must change nothing"


def test_the_boundary_addresses_really_are_at_the_limit() -> None:
    # Given the boundary addresses of the tables
    longest_valid = _LOCAL_64 + "@" + _DOMAIN_189
    shortest_too_long = _LOCAL_64 + "@x" + _DOMAIN_189

    # When / Then
    assert (len(longest_valid), len(shortest_too_long)) == (254, 255)


@pytest.mark.parametrize(
    ("raw", "reason_fragment"),
    [
        pytest.param("jane.example.com", "@-sign", id="missing-at"),
        pytest.param("jane@@example.com", "invalid characters", id="double-at"),
        pytest.param("jane..doe@example.com", "two periods", id="double-dot-local"),
        pytest.param("jane@example..com", "two periods", id="double-dot-domain"),
        pytest.param(".jane@example.com", "period", id="leading-dot"),
        pytest.param("jane doe@example.com", "SPACE", id="inner-space"),
        pytest.param("jane@localhost", "period", id="domain-without-dot"),
        pytest.param("jane@", "after the @-sign", id="empty-domain"),
        pytest.param("@example.com", "before the @-sign", id="empty-local"),
        pytest.param("", "must not be blank", id="empty"),
        pytest.param("   ", "must not be blank", id="blank"),
        pytest.param("jane@example.invalid", "special-use", id="reserved-tld"),
        pytest.param("jane@[127.0.0.1]", "bracketed IP", id="ip-literal"),
        pytest.param("Jane <jane@example.com>", "display name", id="display-name"),
        pytest.param(_LOCAL_64 + "@x" + _DOMAIN_189, "254", id="255-chars"),
    ],
)
def test_invalid_emails_raise_a_field_error_naming_the_email(raw: str, reason_fragment: str) -> None:
    # Given an address that is not acceptable

    # When
    with pytest.raises(FieldError) as caught:
        normalize_email(raw)

    # Then
    assert caught.value.field == "email"
    assert reason_fragment in caught.value.message
    assert caught.value.message, "the reason must be a readable sentence"


def test_an_over_long_email_is_rejected_before_parsing_with_our_own_message() -> None:
    # Given an address far beyond the limit
    raw = "a" * 5000 + "@example.com"

    # When
    with pytest.raises(FieldError) as caught:
        normalize_email(raw)

    # Then
    assert caught.value.message == "must be at most 254 characters"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param(42, id="int"),
        pytest.param(b"jane@example.com", id="bytes"),
        pytest.param(["jane@example.com"], id="list"),
    ],
)
def test_a_non_string_email_raises_a_field_error(value: Any) -> None:
    # Given a value of the wrong type, as a JSON payload can carry

    # When
    with pytest.raises(FieldError) as caught:
        normalize_email(value)

    # Then
    assert (caught.value.field, caught.value.message) == ("email", "must be a string")


# --- normalize_phone ----------------------------------------------------------------------------

# Built rather than typed: full-width digits are indistinguishable from ASCII ones in an editor.
_FULL_WIDTH_DIGITS = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        pytest.param("(202) 555-0123", "US", "+12025550123", id="us-parenthesized"),
        pytest.param("202.555.0123", "US", "+12025550123", id="us-dotted"),
        pytest.param("202-555-0123", "US", "+12025550123", id="us-dashed"),
        pytest.param("2025550123", "US", "+12025550123", id="us-bare-digits"),
        pytest.param("1-202-555-0123", "US", "+12025550123", id="us-with-trunk-1"),
        pytest.param("+1 202 555 0123", "US", "+12025550123", id="us-international"),
        pytest.param("+12025550123", "US", "+12025550123", id="already-e164"),
        pytest.param("  +1 (202) 555-0123  ", "US", "+12025550123", id="surrounding-whitespace"),
        pytest.param("+44 20 7946 0958", "US", "+442079460958", id="uk-international"),
        pytest.param("020 7946 0958", "GB", "+442079460958", id="uk-national-with-gb-region"),
        pytest.param("+33 1 42 68 53 00", "US", "+33142685300", id="france-international"),
        pytest.param(
            "2025550123".translate(_FULL_WIDTH_DIGITS), "US", "+12025550123", id="full-width-digits"
        ),
    ],
)
def test_valid_phones_in_any_format_become_e164(raw: str, region: str, expected: str) -> None:
    # Given a valid number written the way people write numbers

    # When
    normalized = normalize_phone(raw, default_region=region)

    # Then
    assert normalized == expected
    assert normalize_phone(normalized) == normalized, "normalizing twice must change nothing"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("+1 555 0100", "is not a valid phone number", id="too-few-digits-for-nanp"),
        pytest.param("555-0100", "is not a valid phone number", id="seven-digit-local"),
        pytest.param("(555) 555-0100", "is not a valid phone number", id="unassigned-area-code"),
        pytest.param("123", "is not a valid phone number", id="three-digits"),
        pytest.param("+1 202 555 01234", "is not a valid phone number", id="one-digit-too-many"),
        pytest.param("0207 946 0958", "is not a valid phone number", id="uk-national-read-as-us"),
        pytest.param("+999 123", "is not a recognizable phone number", id="unknown-country-code"),
        pytest.param("---", "is not a recognizable phone number", id="punctuation-only"),
        pytest.param("abc", "must contain only digits and formatting characters", id="letters"),
        pytest.param("1-800-FLOWERS", "must contain only digits and formatting characters", id="vanity"),
        pytest.param("202-555-abcd", "must contain only digits and formatting characters", id="mixed"),
        pytest.param(
            "202 555 0123 ext. 45", "must contain only digits and formatting characters", id="ext-word"
        ),
        pytest.param("202 555 0123 #45", "must not include an extension", id="ext-hash"),
        pytest.param("202-555-0123,45", "must not include an extension", id="ext-comma"),
        pytest.param("", "must not be blank", id="empty"),
        pytest.param("   ", "must not be blank", id="blank"),
        pytest.param("+1 (202) 555-0123" + " 0" * 8, "must be at most 32 characters", id="33-chars"),
        pytest.param("2" * 200, "must be at most 32 characters", id="very-long"),
    ],
)
def test_invalid_phones_raise_a_field_error_naming_the_phone(raw: str, message: str) -> None:
    # Given something that is not a single valid phone number

    # When
    with pytest.raises(FieldError) as caught:
        normalize_phone(raw)

    # Then
    assert (caught.value.field, caught.value.message) == ("phone", message)


def test_the_33_char_case_really_is_over_the_limit() -> None:
    # Given the boundary phone of the table above
    raw = "+1 (202) 555-0123" + " 0" * 8

    # When / Then
    assert len(raw) == 33


def test_a_32_char_phone_passes_the_length_check() -> None:
    # Given a valid number padded with formatting up to exactly the limit
    raw = "+1 (202) 555-0123".center(32)

    # When / Then: leading/trailing spaces are stripped before counting, and formatting is fine
    assert len(raw) == 32
    assert normalize_phone(raw) == "+12025550123"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param(2025550123, id="int"),
        pytest.param(b"2025550123", id="bytes"),
    ],
)
def test_a_non_string_phone_raises_a_field_error(value: Any) -> None:
    # Given a value of the wrong type

    # When
    with pytest.raises(FieldError) as caught:
        normalize_phone(value)

    # Then
    assert (caught.value.field, caught.value.message) == ("phone", "must be a string")


@pytest.mark.parametrize("region", [pytest.param("XX", id="unknown"), pytest.param("us", id="lower-case")])
def test_an_unknown_default_region_is_a_programming_error_not_a_field_error(region: str) -> None:
    # Given a default region that phonenumbers does not know

    # When
    with pytest.raises(ValueError, match="unsupported default region") as caught:
        normalize_phone("+12025550123", default_region=region)

    # Then: the caller's bug must not be reported to the vendor as a bad phone
    assert not isinstance(caught.value, FieldError)


# --- clean_text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "max_length", "expected"),
    [
        pytest.param("Jane", 50, "Jane", id="unchanged"),
        pytest.param("  Jane  ", 50, "Jane", id="trimmed"),
        pytest.param("Mary   Ann", 50, "Mary Ann", id="inner-spaces-collapsed"),
        pytest.param("Mary\tAnn", 50, "Mary Ann", id="tab-becomes-space"),
        pytest.param("line one\r\nline two\n\nthree", 50, "line one line two three", id="line-breaks"),
        pytest.param("Mary\u00a0\u2003Ann", 50, "Mary Ann", id="unicode-spaces-collapsed"),
        pytest.param("Zoë O'Brien-Łukasz", 50, "Zoë O'Brien-Łukasz", id="non-ascii-letters-kept"),
        pytest.param("x" * 10, 10, "x" * 10, id="exactly-max-length"),
        pytest.param("  " + "x" * 10 + "  ", 10, "x" * 10, id="max-length-after-trim"),
        pytest.param("a  " * 4 + "b", 9, "a a a a b", id="collapse-brings-it-to-max"),
    ],
)
def test_clean_text_trims_and_collapses_whitespace(raw: str, max_length: int, expected: str) -> None:
    # Given free text typed into a form

    # When
    cleaned = clean_text(raw, "notes", max_length=max_length)

    # Then
    assert cleaned == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("", "must not be blank", id="empty"),
        pytest.param("   ", "must not be blank", id="spaces"),
        pytest.param("\t\r\n", "must not be blank", id="whitespace-controls-only"),
        pytest.param("Jane\x00", "must not contain control characters", id="nul"),
        pytest.param("Jane\x1b[31m", "must not contain control characters", id="ansi-escape"),
        pytest.param("Jane\x7f", "must not contain control characters", id="del"),
        pytest.param("Jane\x1fDoe", "must not contain control characters", id="unit-separator"),
        pytest.param("Jane\x0bDoe", "must not contain control characters", id="vertical-tab"),
        pytest.param("Jane\x85Doe", "must not contain control characters", id="c1-next-line"),
        pytest.param("Jane\ud800", "must not contain control characters", id="lone-surrogate"),
        pytest.param(" \x00 ", "must not contain control characters", id="control-wins-over-blank"),
        pytest.param("x" * 11, "must be at most 10 characters", id="one-over-max"),
        pytest.param("abcde fghij k", "must be at most 10 characters", id="over-max-after-collapse"),
    ],
)
def test_clean_text_rejects_blank_control_and_over_long_values(raw: str, message: str) -> None:
    # Given unacceptable free text

    # When
    with pytest.raises(FieldError) as caught:
        clean_text(raw, "first_name", max_length=10)

    # Then: the error names the field the caller passed
    assert (caught.value.field, caught.value.message) == ("first_name", message)


def test_clean_text_rejects_a_non_string() -> None:
    # Given a number where text was expected
    value: Any = 12345

    # When
    with pytest.raises(FieldError) as caught:
        clean_text(value, "state", max_length=2)

    # Then
    assert (caught.value.field, caught.value.message) == ("state", "must be a string")


# --- is_disposable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        pytest.param("x@mailinator.com", True, id="listed-domain"),
        pytest.param("x@guerrillamail.com", True, id="guerrillamail"),
        pytest.param("x@10minutemail.com", True, id="10minutemail"),
        pytest.param("x@yopmail.com", True, id="yopmail"),
        pytest.param("x@tempmail.com", True, id="tempmail"),
        pytest.param("x@trashmail.com", True, id="trashmail"),
        pytest.param("x@inbox.mailinator.com", True, id="subdomain-of-listed"),
        pytest.param("x@a.b.yopmail.com", True, id="deep-subdomain-of-listed"),
        pytest.param("x@MAILINATOR.COM", True, id="uppercase-input-still-caught"),
        pytest.param("x@gmail.com", False, id="mainstream-provider"),
        pytest.param("x@notmailinator.com", False, id="suffix-without-label-boundary"),
        pytest.param("x@mailinator.com.example.org", False, id="listed-domain-as-subdomain-of-other"),
        pytest.param("mailinator.com", False, id="not-an-address"),
        pytest.param("mailinator.com@gmail.com", False, id="listed-name-in-local-part"),
    ],
)
def test_is_disposable_matches_listed_domains_and_their_subdomains(email: str, expected: bool) -> None:
    # Given a normalized email address

    # When
    disposable = is_disposable(email)

    # Then
    assert disposable is expected


def test_disposable_domains_is_a_bundled_list_of_lower_case_registrable_domains() -> None:
    # Given the bundled list

    # When / Then: about fifty entries, all canonical, so exact set lookups work
    assert len(DISPOSABLE_DOMAINS) >= 50
    assert {"mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com"} <= DISPOSABLE_DOMAINS
    assert {"tempmail.com", "trashmail.com"} <= DISPOSABLE_DOMAINS
    for domain in DISPOSABLE_DOMAINS:
        assert domain == domain.strip().lower(), domain
        assert "." in domain, domain
        assert "@" not in domain, domain


@pytest.mark.parametrize("phone", ["(646) 789-0079*", "646*789*0079", "646/789/0079", "646_789_0079"])
def test_a_phone_with_a_character_outside_the_schemas_pattern_is_refused_not_dropped(phone: str) -> None:
    # phonenumbers alone drops `*` and reads the rest: the API's schema does not allow it
    with pytest.raises(FieldError, match="only digits and formatting characters"):
        normalize_phone(phone)
