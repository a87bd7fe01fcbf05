"""Model features: the server (request + store snapshot) and training (journal replay) agree."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from authhost.auth.decision import Decision
from authhost.auth.service import journal_entry
from authhost.cards.acceptor_velocity import AcceptorCounters, terminal_key
from authhost.cards.luhn import luhn_check_digit
from authhost.cards.model import Account, Card, CardKind, CardState, Product
from authhost.cards.tokens import PaymentToken
from authhost.cards.velocity import VelocityEvent, compute_velocity
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import CREDIT_TYPES, AuthRequest, MessageClass
from authhost.models.context import (
    TxContext,
    acceptor_event_from_entry,
    context_from_request,
    replay_contexts,
)
from authhost.models.features import (
    ACCEPTOR_FEATURE_SET,
    FEATURE_NAMES,
    N_FEATURES,
    RECEIVED_FEATURE_SET,
    WALLET_FEATURE_SET,
    feature_blocks,
    feature_names,
    feature_vector,
)
from authhost.models.geography import distance_km
from authhost.models.merchant_groups import HIGH, LOW, mcc_risk_group
from authhost.models.terminal_risk import TerminalRisk, delayed_rates

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC, a Thursday
DAY = 86400.0


def _pan(prefix: str, serial: int) -> str:
    partial = f"{prefix}{serial:09d}"
    return partial + luhn_check_digit(partial)


PRODUCT = Product(product_id="classic", issuer_id="bank", name="Classic", bin="400000")
# (ts offset, card, amount, mcc, country, entry, condition, processing, terminal, pin, outcome)
TRAFFIC = [
    (0.5 * DAY, 0, 2_500, "5411", "276", "051", "00", "000000", "T1", True, "00"),
    (0.5 * DAY + 40, 0, 2_600, "5411", "276", "071", "00", "000000", "T1", False, "00"),
    (1.2 * DAY, 1, 9_900, "5732", "276", "812", "59", "000000", "T9", False, "00"),
    (1.3 * DAY, 0, 40_000, "6011", "840", "901", "00", "010000", "ATM7", True, "55"),
    (1.3 * DAY + 200, 0, 40_000, "6011", "840", "901", "00", "010000", "ATM7", True, "00"),
    (2.0 * DAY, 2, 120, "5816", "566", "812", "59", "000000", "T4", False, "05"),
    (2.0 * DAY + 30, 2, 150, "5816", "566", "812", "59", "000000", "T4", False, "00"),
    (2.0 * DAY + 3600, 2, 150, "5816", "566", "812", "59", "000000", "T4", False, "00"),
    (5.0 * DAY, 1, 4_000, "5812", "250", "051", "00", "000000", "T2", True, "00"),
    (9.0 * DAY, 0, 1_000, "4111", "276", "071", "00", "000000", "T3", False, "00"),
    (40.0 * DAY, 0, 7_700, "5944", "276", "051", "08", "000000", "T5", False, "00"),
    (40.0 * DAY + 1, 1, 5_000, "4829", "276", "011", "00", "000000", "", False, "00"),
    # money to the card, then most of it out at the ATM: the third set's features
    (41.0 * DAY, 0, 50_000, "4829", "276", "010", "00", "260000", "", False, "00"),
    (41.0 * DAY + 1800, 0, 30_000, "6011", "276", "051", "00", "010000", "ATM7", True, "00"),
]


def _serve(risk: TerminalRisk) -> tuple[list[np.ndarray], list[TxContext], list[dict[str, object]]]:
    """What the server computes for each request (request + snapshot), and its journal rows."""
    pans = [_pan("400000", i) for i in range(3)]
    cards = [
        Card(
            card_id=f"card{i}",
            pan_index=f"idx{i}",
            bin="400000",
            last4=pans[i][-4:],
            pan_length=16,
            product_id="classic",
            account_id=f"acc{i}",
            state=CardState.ACTIVE,
            expiry="2912",
            service_code="201",
            home_country="" if i == 2 else "276",  # card 2 inherits the product's country
            created_at=START - 100 * DAY if i else 0.0,  # card 0: unknown age
        )
        for i in range(3)
    ]
    accounts = [Account(f"acc{i}", "978", CardKind.DEBIT, balance=200_000) for i in range(3)]
    events: dict[int, list[VelocityEvent]] = {0: [], 1: [], 2: []}
    online, contexts, rows = [], [], []
    acceptors = AcceptorCounters()  # the store's merchant and terminal counters
    for offset, c, amount, mcc, country, entry, cond, proc, term, pin, outcome in TRAFFIC:
        now = START + offset
        request = AuthRequest(
            mti="0100",
            message_class=MessageClass.AUTHORISATION,
            pan=pans[c],
            processing_code=proc,
            amount_minor=amount,
            mcc=mcc,
            country=country,
            pos_entry_mode=entry,
            pos_condition_code=cond,
            acquirer_id="123456",
            terminal_id=term,
            merchant_id="M" + term,
            currency="978",
            pin_block=b"\x01" * 8 if pin else None,
        )
        snapshot_velocity = compute_velocity(events[c], now)  # what the store's snapshot holds
        from authhost.store.interface import Snapshot

        at_merchant, at_terminal = acceptors.at(now, "M" + term, terminal_key("M" + term, term))
        snapshot = Snapshot(
            card=cards[c],
            account=accounts[c],
            product=PRODUCT,
            velocity=snapshot_velocity,
            merchant_velocity=at_merchant,
            terminal_velocity=at_terminal,
        )
        ctx = context_from_request(request, snapshot, now)
        contexts.append(ctx)
        online.append(feature_vector(ctx, risk))
        approved = outcome == "00"
        decision = Decision(response_code=ResponseCode(outcome))
        entry_ = journal_entry(request, snapshot, decision, now, f"idx{c}")
        # what AuthService.decide adds to the entry and the commit (auth/service.py)
        entry_.pin_present = request.pin_block is not None
        entry_.pin_failed = outcome == "55"
        rows.append(entry_.as_row())
        acceptors.add(acceptor_event_from_entry(entry_))  # what the store counts
        events[c].append(
            VelocityEvent(
                ts=now,
                amount_minor=amount,
                approved=approved,
                merchant_id=request.merchant_id or "",
                country=country,
                cash=request.transaction_type == "01",
                pin_failed=outcome == "55",
                credit=request.transaction_type in CREDIT_TYPES,
            )
        )
        if approved:
            accounts[c] = Account(
                f"acc{c}", "978", CardKind.DEBIT, balance=accounts[c].balance - amount
            )
    return online, contexts, rows


def test_online_and_offline_features_are_identical_for_the_same_history() -> None:
    risk = TerminalRisk(rates={"T4": 0.4, "ATM7": 0.1}, default=0.002)
    online, contexts, rows = _serve(risk)
    replayed = list(replay_contexts(rows))
    assert len(replayed) == len(online)
    for (row, ctx), served_ctx, served in zip(replayed, contexts, online, strict=True):
        assert ctx == served_ctx, f"context differs at ts={row['ts']}"
        offline = feature_vector(ctx, risk)
        assert offline.tobytes() == served.tobytes(), dict(
            (n, (a, b)) for n, a, b in zip(FEATURE_NAMES, offline, served, strict=True) if a != b
        )


def test_features_see_the_history_and_are_finite() -> None:
    risk = TerminalRisk(rates={"T4": 0.4}, default=0.002)
    online, contexts, _ = _serve(risk)
    matrix = np.vstack(online)
    assert matrix.shape == (len(TRAFFIC), N_FEATURES)
    assert np.isfinite(matrix).all()
    f = {name: matrix[:, i] for i, name in enumerate(FEATURE_NAMES)}
    assert f["first_in_30d"][0] == 1.0 and f["first_in_30d"][1] == 0.0
    assert f["since_last_log"][1] == pytest.approx(math.log1p(40))
    assert f["count_1h_log"][1] == pytest.approx(math.log1p(1))
    # the US ATM withdrawal: foreign, cash, far from Germany, after a failed PIN
    atm = 4
    assert f["cross_border"][atm] == 1.0 and f["cash"][atm] == 1.0
    assert f["distance_home_1000km"][atm] == pytest.approx(distance_km("840", "276") / 1000)
    assert f["failed_pin_24h"][atm] == 1.0 and f["declined_24h_log"][atm] == pytest.approx(
        math.log1p(1)
    )
    assert f["channel_atm"][atm] == 1.0 and f["entry_magstripe"][atm] == 1.0
    assert f["terminal_risk"][5] == 0.4 and f["terminal_risk"][0] == 0.002
    assert f["channel_ecommerce"][5] == 1.0 and f["mcc_risk_group"][5] == HIGH
    assert f["card_age_days_log"][0] == -1.0 and f["card_age_days_log"][2] > 0
    assert f["channel_moto"][10] == 1.0
    # card 2 has no home country of its own: the product's (276) applies, Nigeria is abroad
    assert contexts[5].home_country == "276" and f["cross_border"][5] == 1.0


@pytest.mark.parametrize(
    ("mcc", "group"), [("5411", LOW), ("7995", HIGH), ("3005", 2), ("1234", 1), ("", 1)]
)
def test_mcc_risk_groups(mcc: str, group: int) -> None:
    assert mcc_risk_group(mcc) == group


def test_distance_between_countries() -> None:
    assert distance_km("276", "276") == 0.0
    assert distance_km("040", "40") == 0.0  # zero-padded codes are the same country
    assert 6_000 < distance_km("276", "840") < 9_000  # type: ignore[operator]
    assert distance_km("276", "999") is None and distance_km("", "276") is None


def test_terminal_risk_uses_only_labels_old_enough_to_be_known() -> None:
    ts = np.array([0.0, 1 * DAY, 2 * DAY, 10 * DAY, 10 * DAY + 1, 40 * DAY])
    terminals = np.array(["T", "T", "U", "T", "T", "T"])
    labels = np.array([1, 1, 0, 0, 0, 0])
    rates = delayed_rates(
        ts, terminals, labels, prior=0.1, window_days=30, delay_days=7, smoothing=2
    )
    assert rates[0] == rates[1] == pytest.approx(0.1)  # nothing known yet: the prior
    assert rates[3] == pytest.approx((2 + 0.2) / (2 + 2))  # the two frauds 7+ days earlier
    assert rates[2] == pytest.approx(0.1)  # another terminal's labels do not leak
    assert rates[5] == pytest.approx((0 + 0.2) / (2 + 2))  # window [3d, 33d]: rows 3, 4 only


WALLET_TOKEN = PaymentToken("ef" * 32, "7721", "50120834693", "google_pay")


async def test_features_from_a_real_sqlite_store_equal_the_replayed_journal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The server path end to end on the embedded store: snapshot -> features -> commit; then
    the store's journal export, replayed, gives the same contexts and feature vectors, in both
    feature sets (the second with the store's merchant and terminal counters)."""
    from authhost.store import open_store
    from authhost.store.interface import Commit, JournalQuery, MoneyMove, Movement, SnapshotQuery

    risk = TerminalRisk(rates={"T4": 0.4, "ATM7": 0.1}, default=0.002)
    store = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    try:
        await store.put_product(PRODUCT)
        pans = [_pan("400000", 100 + i) for i in range(3)]
        for i in range(3):
            await store.create_account(Account(f"acc{i}", "978", CardKind.DEBIT, balance=200_000))
            card = Card(
                card_id=f"card{i}",
                pan_index=f"idx{i}",
                bin="400000",
                last4=pans[i][-4:],
                pan_length=16,
                product_id="classic",
                account_id=f"acc{i}",
                state=CardState.ACTIVE,
                expiry="2912",
                service_code="201",
                home_country="" if i == 2 else "276",
                created_at=START - 100 * DAY,
            )
            await store.create_card(card, b"\0" * 40)
        # as the server does at start when a rule or the model reads them: counters followed
        # from the first request (a first ask would start the hour's read and not wait for it)
        await store.prepare_acceptor_counters(START)
        served = []
        for n, (
            offset,
            c,
            amount,
            mcc,
            country,
            entry,
            cond,
            proc,
            term,
            pin,
            outcome,
        ) in enumerate(TRAFFIC):
            now = START + offset
            request = AuthRequest(
                mti="0100",
                message_class=MessageClass.AUTHORISATION,
                pan=pans[c],
                processing_code=proc,
                amount_minor=amount,
                mcc=mcc,
                country=country,
                pos_entry_mode=entry,
                pos_condition_code=cond,
                acquirer_id="123456",
                terminal_id=term,
                merchant_id="M" + term,
                currency="978",
                stan=f"{n + 1:06d}",
                rrn=f"rrn{n:09d}",
                pin_block=b"\x01" * 8 if pin else None,
            )
            merchant = "M" + term
            snapshot = await store.snapshot(
                SnapshotQuery(
                    pan_index=f"idx{c}",
                    now=now,
                    merchant=merchant,
                    terminal=terminal_key(merchant, term),
                )
            )
            assert snapshot.card is not None
            # every third request paid with the card's phone wallet, registered 4n hours before
            token = WALLET_TOKEN if n % 3 == 2 else None
            token = token and replace(token, created_at=now - n * 4 * 3600.0)
            served.append(
                feature_vector(
                    context_from_request(request, snapshot, now, token=token), risk, blocks=3
                )
            )
            approved = outcome == "00"
            decided = Decision(response_code=ResponseCode(outcome), token=token)
            journal = journal_entry(request, snapshot, decided, now, f"idx{c}")
            journal.pin_present = request.pin_block is not None
            journal.pin_failed = outcome == "55"
            await store.commit(
                Commit(
                    journal=journal,
                    movement=Movement(f"acc{c}", MoneyMove.HOLD, amount) if approved else None,
                    card_id=f"card{c}",
                )
            )
        rows = [e.as_row() async for e in store.export_journal(JournalQuery())]
    finally:
        await store.close()
    assert len(rows) == len(TRAFFIC)
    replayed = [feature_vector(ctx, risk, blocks=3) for _, ctx in replay_contexts(rows)]
    names = feature_names(WALLET_FEATURE_SET)
    for row, offline, online in zip(rows, replayed, served, strict=True):
        assert offline.tobytes() == online.tobytes(), (
            row["ts"],
            dict((n, (a, b)) for n, a, b in zip(names, offline, online, strict=True) if a != b),
        )
    # the first feature set is the second's beginning
    base = [feature_vector(ctx, risk) for _, ctx in replay_contexts(rows)]
    assert all(np.array_equal(v, w[:N_FEATURES]) for v, w in zip(base, replayed, strict=True))
    # the history really shaped the features (not two empty vectors agreeing)
    assert any(v[FEATURE_NAMES.index("count_24h_log")] > 0 for v in served)
    assert any(v[names.index("terminal_count_10m_log")] > 0 for v in served)
    assert any(v[names.index("merchant_declined_share_1h")] > 0 for v in served)
    # the cash-out after the transfer: 300.00 of 500.00 received that day
    cash_out = served[[t[7] for t in TRAFFIC].index("260000") + 1]
    assert cash_out[names.index("cash_out_of_received_24h")] == pytest.approx(0.6)
    assert cash_out[names.index("received_count_24h")] == 1
    assert cash_out[names.index("since_received_log")] == pytest.approx(math.log1p(1800))
    # the second set is the fourth's beginning, and so is the third
    for blocks, feature_set in ((1, ACCEPTOR_FEATURE_SET), (2, RECEIVED_FEATURE_SET)):
        shorter = [feature_vector(ctx, risk, blocks=blocks) for _, ctx in replay_contexts(rows)]
        width = len(feature_names(feature_set))
        assert all(np.array_equal(v, w[:width]) for v, w in zip(shorter, replayed, strict=True))
        assert feature_blocks(feature_set) == blocks
    # the wallet: tokens 8 and 20 hours old, then older ones; none where the card paid
    paid = [v for n, v in enumerate(served) if n % 3 == 2]
    assert all(v[names.index("tokenised")] == 1.0 for v in paid)
    young = [float(v[names.index("token_under_24h")]) for v in paid]
    assert young[:2] == [1.0, 1.0] and young[2:] and not any(young[2:])
    assert paid[0][names.index("token_age_log")] == pytest.approx(math.log1p(8))
    assert served[0][names.index("tokenised")] == 0.0
    assert served[0][names.index("token_age_log")] == -1.0


def test_contexts_built_without_init_equal_the_dataclass_ones() -> None:
    """context_from_request / context_from_row build TxContext without its __init__
    (authhost.frozen): every field, hour and weekday included, equals what __init__ gives."""
    import dataclasses

    _, contexts, rows = _serve(TerminalRisk())
    replayed = [ctx for _, ctx in replay_contexts(rows)]
    for ctx in [*contexts, *replayed]:
        rebuilt = dataclasses.replace(ctx)  # through __init__ and __post_init__
        assert ctx == rebuilt
        for f in dataclasses.fields(TxContext):
            assert type(getattr(ctx, f.name)) is type(getattr(rebuilt, f.name)), f.name


def test_hour_and_weekday_are_gmtimes() -> None:
    import random
    import time

    from authhost.models.context import hour_and_weekday

    rng = random.Random(5)
    stamps = [0.0, -0.5, -1.0, 1e11 - 0.5, -1e11 + 0.5, 1e11, 2e11, START, START - 1e-6]
    stamps += [rng.uniform(-1e10, 1e10) for _ in range(20_000)]
    stamps += [rng.randrange(-(10**6), 10**6) * 3600.0 + rng.choice([0, 1e-6, -1e-6, 0.5]) for _ in range(20_000)]  # fmt: skip
    for ts in stamps:
        tm = time.gmtime(ts)
        assert hour_and_weekday(ts) == (tm.tm_hour, tm.tm_wday), ts
