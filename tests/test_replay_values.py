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
