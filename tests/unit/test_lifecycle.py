"""The disposition state machine, every pair of states."""

from __future__ import annotations

import itertools

import pytest

from leads.lifecycle import ALLOWED_MOVES, DispositionConflict, check_move, is_open
from leads.models import Disposition as D

ALLOWED = {
    (D.NEW, D.CONTACTED),
    (D.CONTACTED, D.QUALIFIED),
    (D.QUALIFIED, D.CLOSED),
    (D.NEW, D.LOST),
    (D.CONTACTED, D.LOST),
    (D.QUALIFIED, D.LOST),
    (D.LOST, D.CONTACTED),
}


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(D, D)), ids=lambda d: d.value)
def test_only_the_contracts_moves_are_allowed(current: D, wanted: D) -> None:
    if (current, wanted) in ALLOWED:
        check_move(current, wanted)
        return
    with pytest.raises(DispositionConflict) as raised:
        check_move(current, wanted)
    assert raised.value.status == 409
    assert raised.value.details[0]["allowed"] == sorted(move.value for move in ALLOWED_MOVES[current])


def test_the_table_is_exactly_the_contract() -> None:
    assert {(a, b) for a, moves in ALLOWED_MOVES.items() for b in moves} == ALLOWED


def test_closed_and_lost_leads_free_their_agent() -> None:
    assert [state for state in D if is_open(state)] == [D.NEW, D.CONTACTED, D.QUALIFIED]
