"""The disposition state machine: new → contacted → qualified → closed; any open state → lost;
lost → contacted (reopen). `closed` is a won sale."""

from __future__ import annotations

from leads.models import Disposition
from shared.errors import Conflict

OPEN = frozenset({Disposition.NEW, Disposition.CONTACTED, Disposition.QUALIFIED})
ALLOWED_MOVES: dict[Disposition, frozenset[Disposition]] = {
    Disposition.NEW: frozenset({Disposition.CONTACTED, Disposition.LOST}),
    Disposition.CONTACTED: frozenset({Disposition.QUALIFIED, Disposition.LOST}),
    Disposition.QUALIFIED: frozenset({Disposition.CLOSED, Disposition.LOST}),
    Disposition.CLOSED: frozenset(),
    Disposition.LOST: frozenset({Disposition.CONTACTED}),
}


class DispositionConflict(Conflict):
    code = "INVALID_TRANSITION"


def check_move(current: Disposition, wanted: Disposition) -> None:
    """Raises a 409 naming the allowed moves when `current → wanted` is not one of them."""
    allowed = ALLOWED_MOVES[current]
    if wanted not in allowed:
        names = sorted(move.value for move in allowed)
        raise DispositionConflict(
            f"A {current.value} lead cannot move to {wanted.value}",
            details=[{"field": "disposition", "from": current.value, "to": wanted.value, "allowed": names}],
        )


def is_open(disposition: Disposition) -> bool:
    """Open leads count against their agent's capacity."""
    return disposition in OPEN
