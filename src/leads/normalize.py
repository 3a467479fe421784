"""Normalization and validation of the contact fields of a lead.

Pure functions (no I/O, no DNS): each either returns the canonical form of its input or raises
`FieldError` naming the field and saying, in a sentence a vendor can act on, what is wrong. The lead
service turns a `FieldError` into a 422 detail, so messages must never echo the rejected value
back (it is personal data and ends up in logs).
"""

from __future__ import annotations

import unicodedata

# email_validator and phonenumbers (~90 ms of imports together) are loaded by the functions that
# use them: a cold start that only reads leads never pays for them.

__all__ = [
    "DISPOSABLE_DOMAINS",
    "EMAIL_MAX_LENGTH",
    "PHONE_MAX_LENGTH",
    "PHONE_PATTERN",
    "FieldError",
    "clean_text",
    "is_disposable",
    "normalize_email",
    "normalize_phone",
    "search_form",
]

# RFC 5321 caps a forward-path at 256 octets including the angle brackets, so 254 for the address.
EMAIL_MAX_LENGTH = 254
# E.164 allows 15 digits; 32 leaves room for human formatting ("+1 (202) 555-0123") while refusing
# the kilobyte-long strings that would otherwise reach the parser.
PHONE_MAX_LENGTH = 32
# What a phone may be written with (the API's schema): digits and the formatting characters people
# type. Anything else (a letter, `*`, `/`) is refused rather than dropped; an extension's `#` or `,`
# is refused for what it is. Full-width digits are read as digits.
PHONE_PATTERN = rf"^[0-9+() .-]{{1,{PHONE_MAX_LENGTH}}}$"
_PHONE_FORMATTING = frozenset("+() .-")
_EXTENSION_MARKS = frozenset("#,")

# Whitespace that form fields legitimately produce (textarea line breaks, pasted tabs). Every other
# control character, including the ASCII separators \x1c-\x1f that `str.split` would silently treat
# as whitespace, is rejected rather than collapsed: it signals a broken integration or an injection
# attempt, not a typo.
_ALLOWED_CONTROL = frozenset("\t\n\r")


class FieldError(ValueError):
    """A single field of a lead failed validation.

    `field` is the name of the offending field (as in the lead payload) and `message` a sentence
    describing the problem; `str(error)` is the message alone.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return self.message


def _stripped_string(field: str, value: object, max_length: int) -> str:
    """`value` stripped, if it is a string that is neither blank nor longer than `max_length`
    (checked before any parser runs, so the message is ours and huge inputs never reach it)."""
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    candidate = value.strip()
    if not candidate:
        raise FieldError(field, "must not be blank")
    if len(candidate) > max_length:
        raise FieldError(field, f"must be at most {max_length} characters")
    return candidate


def normalize_email(value: str) -> str:
    """Return the canonical, entirely lower-cased form of an email address.

    Surrounding whitespace is stripped first. Syntax is checked by `email_validator` without any DNS
    lookup; the domain is IDNA-normalized (a Unicode domain stays in Unicode form). The local part is
    lower-cased too, although RFC 5321 says it is case-sensitive, because leads are deduplicated
    case-insensitively and no mainstream mailbox provider distinguishes case.

    Raises `FieldError("email", reason)` if `value` is not a string, is blank, is longer than 254
    characters after stripping, or is not a syntactically valid address.
    """
    # Blank is said as such (email_validator would say "must have an @-sign", which misleads).
    candidate = _stripped_string("email", value, EMAIL_MAX_LENGTH)
    from email_validator import EmailNotValidError, validate_email

    try:
        validated = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        # email_validator's messages name at most the offending characters, never the whole address.
        raise FieldError("email", str(exc)) from exc
    return validated.normalized.lower()


def normalize_phone(value: str, default_region: str = "US") -> str:
    """Return a phone number in E.164 form, e.g. ``"+12025550123"``.

    Numbers without a leading ``+`` are read as national numbers of `default_region` (an ISO 3166
    alpha-2 code). Letters are refused even though `phonenumbers` would map them through the keypad
    ("1-800-FLOWERS"): in a lead they are far more often a typo or junk, and they also carry
    extensions ("x45", "ext. 45") that E.164 cannot represent.

    Raises `FieldError("phone", reason)` if `value` is not a string, is blank, is longer than 32
    characters after stripping, contains letters, cannot be parsed, carries an extension, or is not
    a valid number for its region.
    Raises a plain `ValueError` if `default_region` is unknown, since that is a bug of the caller,
    not of the lead.
    """
    import phonenumbers

    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unsupported default region {default_region!r}")
    candidate = _stripped_string("phone", value, PHONE_MAX_LENGTH)
    if not all(char.isdigit() or char in _PHONE_FORMATTING | _EXTENSION_MARKS for char in candidate):
        raise FieldError("phone", "must contain only digits and formatting characters")
    try:
        number = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException as exc:
        raise FieldError("phone", "is not a recognizable phone number") from exc
    # Extensions also come without letters ("202 555 0123 #45"); E.164 would silently drop them.
    if number.extension:
        raise FieldError("phone", "must not include an extension")
    if not phonenumbers.is_valid_number(number):
        raise FieldError("phone", "is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_text(value: str, field: str, max_length: int) -> str:
    """Return `value` trimmed, with every internal run of whitespace collapsed to one space.

    Raises `FieldError(field, reason)` if `value` is not a string, contains a control character other
    than tab, line feed or carriage return, is blank once trimmed, or is longer than `max_length`
    characters once cleaned (the length is that of the returned value).
    """
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    # Surrogates are category Cs: a lone one cannot be encoded as UTF-8 and would fail later, far
    # from the input, when the item is serialized.
    if any(unicodedata.category(char) in ("Cc", "Cs") and char not in _ALLOWED_CONTROL for char in value):
        raise FieldError(field, "must not contain control characters")
    cleaned = " ".join(value.split())
    if not cleaned:
        raise FieldError(field, "must not be blank")
    if len(cleaned) > max_length:
        raise FieldError(field, f"must be at most {max_length} characters")
    return cleaned


# Latin letters that Unicode does not decompose into a base letter and a mark, written the way
# people type them on a plain keyboard ("Øberg" is searched as "oberg"; \u0131 is the dotless i).
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "đ": "d", "ł": "l", "ħ": "h", "\u0131": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)


def search_form(text: str) -> str:
    """The form in which names are stored for prefix search and search terms are compared: case
    folded, accents removed (NFKD, combining marks dropped: "José" → "jose", "Straße" → "strasse",
    "Øberg" → "oberg") and whitespace collapsed to single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_UNDECOMPOSED))
    return " ".join("".join(char for char in decomposed if not unicodedata.combining(char)).split())


# Well-known throwaway-mailbox services. Deliberately a small bundled list rather than a live feed:
# scoring must stay pure and deterministic, and these domains cover most of the junk vendors send.
# Subdomains are covered by `is_disposable`, so only registrable domains are listed.
DISPOSABLE_DOMAINS: frozenset[str] = frozenset(
    {
        "10minutemail.com",
        "10minutemail.net",
        "20minutemail.com",
        "anonbox.net",
        "armyspy.com",
        "burnermail.io",
        "cuvox.de",
        "dayrep.com",
        "discard.email",
        "dispostable.com",
        "emailondeck.com",
        "fakeinbox.com",
        "getairmail.com",
        "getnada.com",
        "grr.la",
        "guerrillamail.biz",
        "guerrillamail.com",
        "guerrillamail.de",
        "guerrillamail.info",
        "guerrillamail.net",
        "guerrillamail.org",
        "guerrillamailblock.com",
        "harakirimail.com",
        "inboxkitten.com",
        "jetable.org",
        "mailcatch.com",
        "maildrop.cc",
        "mailexpire.com",
        "mailinator.com",
        "mailinator.net",
        "mailinator2.com",
        "mailnesia.com",
        "mailpoof.com",
        "mintemail.com",
        "moakt.com",
        "mohmal.com",
        "mytemp.email",
        "nada.email",
        "pokemail.net",
        "rhyta.com",
        "sharklasers.com",
        "spam4.me",
        "spambox.us",
        "spamgourmet.com",
        "teleworm.us",
        "temp-mail.io",
        "temp-mail.org",
        "tempinbox.com",
        "tempmail.com",
        "tempmail.net",
        "tempmailo.com",
        "tempr.email",
        "throwawaymail.com",
        "trashmail.com",
        "trashmail.de",
        "trashmail.me",
        "trashmail.net",
        "yopmail.com",
        "yopmail.fr",
        "yopmail.net",
    }
)


def is_disposable(email: str) -> bool:
    """Whether the domain of an (already normalized) email address, or any parent domain of it, is
    in `DISPOSABLE_DOMAINS`. A value without an ``@`` is not an address and is not disposable."""
    _, at, domain = email.rpartition("@")
    if not at:
        return False
    # Defensive: a caller that skipped normalization must not slip past with "MAILINATOR.COM".
    labels = domain.lower().rstrip(".").split(".")
    return any(".".join(labels[i:]) in DISPOSABLE_DOMAINS for i in range(len(labels)))
