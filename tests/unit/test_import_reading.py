"""Reading import files: the header, spreadsheet row numbers, encodings, blank lines, stray values."""

from __future__ import annotations

import io

import pytest

from crm.importer import FileProblem, read_records


def records(data: bytes) -> tuple[list[str], list[tuple[int, dict[str, str], bool, bool]]]:
    columns, rows = read_records(io.BytesIO(data))
    return columns, [(r.row, r.values, r.encoding_problem, r.extra_values) for r in rows]


def test_rows_are_numbered_like_a_spreadsheet_and_columns_normalised() -> None:
    columns, rows = records(b" Email ,First_Name\r\na@x.com,Ann\r\n\r\nb@x.com,Bob\r\n")
    assert columns == ["email", "first_name"]
    assert rows == [
        (2, {"email": "a@x.com", "first_name": "Ann"}, False, False),
        (3, {"email": "b@x.com", "first_name": "Bob"}, False, False),  # the blank line is no row
    ]


def test_a_quoted_field_may_hold_commas_quotes_and_newlines() -> None:
    _, rows = records(b'email,notes\na@x.com,"one, ""two""\nthree"\nb@x.com,x\n')
    assert rows[0][1]["notes"] == 'one, "two"\nthree'
    assert [row[0] for row in rows] == [2, 3]


def test_a_utf8_bom_is_not_part_of_the_first_column() -> None:
    columns, _ = records("\ufeffemail,phone\n".encode())
    assert columns == ["email", "phone"]


def test_a_row_that_is_not_utf8_is_marked_and_the_others_read_on() -> None:
    data = (
        "email,first_name\nok@x.com,José\n".encode()
        + "bad@x.com,Jos\xe9\n".encode("latin-1")
        + b"c@x.com,C\n"
    )
    _, rows = records(data)
    assert [(row[0], row[2]) for row in rows] == [(2, False), (3, True), (4, False)]


def test_more_values_than_columns_is_marked() -> None:
    _, rows = records(b"email\na@x.com,surprise\n")
    assert rows[0][3] is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "the file is empty", id="empty"),
        pytest.param(
            "ema\xefl,phone\n".encode("latin-1"), "header row is not valid UTF-8", id="latin-1-header"
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_one_clear_problem(data: bytes, message: str) -> None:
    with pytest.raises(FileProblem, match=message):
        records(data)


def test_a_header_alone_is_no_rows() -> None:
    assert records(b"email,phone\n") == (["email", "phone"], [])
