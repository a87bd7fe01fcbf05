"""Values an exported journal row replays as (models.context): what the server had, zeros
included."""

from __future__ import annotations

from authhost.cards.velocity import Velocity
from authhost.models.context import context_from_row

ROW = {"ts": 1_000.0, "mti": "0100", "message_class": "authorisation", "response_code": "00",
       "card_id": "c1", "amount_minor": 1_000, "currency": "978", "country": "276"}  # fmt: skip


def test_a_token_made_this_hour_replays_as_zero_hours_not_as_none():
    """The server journals 0.0 for a token registered within the hour; the replay read 0.0 as
    missing (-1), so `token_age_hours < 24` matched online but not in explain or backtest."""
    assert context_from_row({**ROW, "token_age_hours": 0.0}, Velocity()).token_age_hours == 0.0
    assert context_from_row({**ROW, "token_age_hours": 5.5}, Velocity()).token_age_hours == 5.5
    assert context_from_row(ROW, Velocity()).token_age_hours == -1.0  # no token


def test_a_card_issued_today_replays_as_zero_days():
    assert context_from_row({**ROW, "card_age_days": 0.0}, Velocity()).card_age_days == 0.0
    assert context_from_row(ROW, Velocity()).card_age_days == -1.0


def test_a_partial_approval_replays_the_amount_the_server_scored():
    """The journal keeps what a partial approval (10) approved; the server scored the amount
    asked (field 4, never converted for a partial approval)."""
    partial = {**ROW, "response_code": "10", "amount_minor": 4_000,
               "transaction_amount_minor": 9_000}  # fmt: skip
    assert context_from_row(partial, Velocity()).amount_minor == 9_000
    full = {**partial, "response_code": "00", "amount_minor": 9_000}
    assert context_from_row(full, Velocity()).amount_minor == 9_000
