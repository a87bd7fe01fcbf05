"""Fraud scenarios and genuine travel, layered on top of everyday spending.

Each scenario picks its cards, then writes the transactions a fraudster (or a travelling
cardholder) would cause. Fraud rows carry label 1; travel rows label 0, so that not every
foreign transaction is fraud. Victims are few, so scenarios describe each one as a short list
of events and build the columns in one vectorised call at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import geography, habits
from simulator.batch import (
    BIN_ATTACK,
    CARD_TESTING,
    CASH,
    COMPROMISED,
    CONTACTLESS,
    ECOMMERCE,
    FREE,
    KEYED,
    MULE,
    NORMAL,
    POS,
    REPORTED_STOLEN,
    STOLEN,
    STRIPE,
    TAKEOVER,
    TAP,
    TRANSFER_IN,
    TRAVEL,
    WALLET_FRAUD,
    WRONG_CVV2,
    WRONG_PIN,
    TxBatch,
)
from simulator.population import DAY, Cards, Merchants
from simulator.spending import ticket, transactions

HOUR = 3600.0
MINUTE = 60.0
STREET = np.array([habits.INDEX[m] for m in ("5411", "5541", "5814", "5999", "5912", "5813")])
COUNTERFEIT = np.array([habits.INDEX[m] for m in ("5732", "5944", "5311", "5999")])


@dataclass
class Events:
    """Scenario events for one batch: one list element per transaction; -1 means 'draw it'."""

    card: list[int] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    category: list[int] = field(default_factory=list)
    country: list[int] = field(default_factory=list)
    online: list[bool] = field(default_factory=list)
    amount: list[int] = field(default_factory=list)
    merchant: list[int] = field(default_factory=list)
    entry: list[int] = field(default_factory=list)
    forced: list[int] = field(default_factory=list)
    tx_type: list[int] = field(default_factory=list)  # -1: as spending draws it

    def add(
        self,
        card: int,
        ts: float,
        category: int,
        country: int,
        *,
        online: bool = False,
        amount: int = -1,
        merchant: int = -1,
        entry: int = -1,
        forced: int = FREE,
        tx_type: int = -1,
    ) -> None:
        self.card.append(card)
        self.ts.append(ts)
        self.category.append(category)
        self.country.append(country)
        self.online.append(online)
        self.amount.append(amount)
        self.merchant.append(merchant)
        self.entry.append(entry)
        self.forced.append(forced)
        self.tx_type.append(tx_type)

    def build(
        self,
        cards: Cards,
        merchants: Merchants,
        rng: np.random.Generator,
        scenario: int,
        label: int,
    ) -> TxBatch:
        card = np.array(self.card, dtype=np.int64)
        category = np.array(self.category, dtype=np.int64)
        country = np.array(self.country, dtype=np.int64)
        amount = np.array(self.amount, dtype=np.int64)
        drawn = ticket(category, cards.scale[card], rng)
        amount = np.where(amount < 0, drawn, amount)
        merchant = np.array(self.merchant, dtype=np.int64)
        anywhere = merchants.any(country, category, rng)
        merchant = np.where(merchant < 0, anywhere, merchant)
        batch = transactions(
            cards,
            merchants,
            card,
            np.array(self.ts, dtype=np.float64),
            category,
            country,
            rng,
            online=np.array(self.online, dtype=bool),
            amount=amount,
            merchant=merchant,
            scenario=scenario,
            label=label,
        )
        entry = np.array(self.entry, dtype=np.int8)
        chosen = entry >= 0
        batch.entry[chosen] = entry[chosen]
        batch.channel[chosen & (entry == TAP)] = CONTACTLESS
        batch.channel[chosen & (entry == STRIPE)] = POS
        batch.pin_present[chosen] = False  # a tap or a counterfeit stripe goes without PIN
        batch.pin_present |= category == habits.ATM
        batch.forced = np.array(self.forced, dtype=np.int8)
        tx_type = np.array(self.tx_type, dtype=np.int8)
        credit = tx_type == TRANSFER_IN  # sent by the network: no card read, no PIN
        given = tx_type >= 0  # as the scenario says (an ATM visit is then no balance inquiry)
        batch.tx_type[given], batch.amount[given] = tx_type[given], amount[given]
        batch.channel[credit], batch.entry[credit], batch.pin_present[credit] = POS, KEYED, False
        return batch


def _fraud_country(rng: np.random.Generator) -> int:
    return int(rng.choice(len(geography.COUNTRIES), p=geography.FRAUD_WEIGHTS))


def _cash(rng: np.random.Generator, low: int = 10, high: int = 26) -> int:
    """An ATM amount fraudsters take: 200-500 EUR in 20s."""
    return int(rng.integers(low, high)) * 2000


def travel(
    cards: Cards,
    merchants: Merchants,
    everyday: TxBatch,
    travellers: np.ndarray,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> tuple[TxBatch, TxBatch]:
    """Genuine trips abroad: card-present spending moves to the destination for the trip, plus
    the flight booked beforehand, the hotel and cash from local ATMs. Returns the everyday batch
    with trips applied, and the trips' extra transactions."""
    end = start + days * DAY
    n = len(travellers)
    dest = rng.choice(len(geography.COUNTRIES), size=n, p=geography.TRAVEL_WEIGHTS)
    dest = np.where(dest == cards.home[travellers], geography.INDEX_SPAIN, dest)
    leave = start + rng.uniform(0, days - 3, n) * DAY
    back = np.minimum(leave + rng.integers(3, 15, n) * DAY, end)
    trip_dest = np.full(len(cards), -1)
    trip_leave = np.full(len(cards), np.inf)
    trip_back = np.full(len(cards), -np.inf)
    trip_dest[travellers], trip_leave[travellers], trip_back[travellers] = dest, leave, back

    card = everyday.card
    away = (everyday.ts >= trip_leave[card]) & (everyday.ts < trip_back[card])
    away &= (everyday.channel != ECOMMERCE) & (everyday.scenario == NORMAL)
    rows = np.flatnonzero(away)
    moved = everyday.take(rows)
    there = trip_dest[moved.card]
    home = cards.home[moved.card]
    # same local hour, in the destination's time zone
    moved.ts = moved.ts + geography.UTC_OFFSET_S[home] - geography.UTC_OFFSET_S[there]
    moved.country = there
    moved.merchant = merchants.any(there, moved.category, rng)
    moved.terminal = merchants.terminal(moved.merchant, rng.integers(0, 3, len(moved)))
    moved.scenario[:] = TRAVEL
    rest = everyday.take(np.flatnonzero(~away))

    events = Events()
    for i, c in enumerate(travellers):
        c = int(c)
        booked = leave[i] - rng.uniform(5, 40) * DAY
        if booked > start:
            events.add(c, booked, habits.INDEX["4511"], int(home_of(cards, c)), online=True)
        events.add(c, leave[i] + rng.uniform(3, 10) * HOUR, habits.INDEX["7011"], int(dest[i]))
        for _ in range(rng.integers(1, 4)):
            when = rng.uniform(leave[i], back[i])
            events.add(c, when, habits.ATM, int(dest[i]), amount=_cash(rng, 3, 15))
    extras = events.build(cards, merchants, rng, TRAVEL, 0)
    return TxBatch.concat([rest, moved]), extras


def home_of(cards: Cards, card: int) -> int:
    return int(cards.home[card])


def card_testing(
    cards: Cards,
    merchants: Merchants,
    victims: np.ndarray,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> TxBatch:
    """Card testing: a fraudster runs stolen card numbers through an online merchant in waves,
    bursts of tiny amounts seconds apart (many fail CVV2), then spends on the cards that
    worked."""
    waves = max(1, round(len(victims) / 12))
    wave_time = start + rng.uniform(0, days - 1, waves) * DAY
    wave_country = [_fraud_country(rng) for _ in range(waves)]
    wave_category = rng.choice(habits.TESTING, waves)
    wave_merchant = merchants.any(np.array(wave_country), wave_category, rng)
    events = Events()
    for c in victims:
        c = int(c)
        w = int(rng.integers(0, waves))
        t = wave_time[w] + rng.uniform(0, 4 * HOUR)
        for _ in range(2 + rng.poisson(4)):
            t += rng.exponential(25.0)
            events.add(
                c,
                t,
                int(wave_category[w]),
                wave_country[w],
                online=True,
                amount=int(rng.integers(50, 600)),
                merchant=int(wave_merchant[w]),
                forced=WRONG_CVV2 if rng.random() < 0.5 else FREE,
            )
        if rng.random() < 0.45:  # the card worked: spend on it
            for _ in range(rng.integers(1, 3)):
                t += rng.uniform(1, 48) * HOUR
                category = int(rng.choice(habits.TAKEOVER))
                amount = int(habits.MEDIAN_EUR[category] * rng.uniform(150, 400))
                events.add(c, t, category, _fraud_country(rng), online=True, amount=amount)
    return events.build(cards, merchants, rng, CARD_TESTING, 1)


def compromised_merchant(
    cards: Cards,
    merchants: Merchants,
    everyday: TxBatch,
    count: int,
    excluded: np.ndarray,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> TxBatch:
    """A compromised merchant or terminal (skimmer, breached POS): cards used there during the
    compromise are counterfeited and cashed out days or weeks later, often abroad."""
    end = start + days * DAY
    usable = (
        (everyday.channel != ECOMMERCE)
        & (everyday.scenario == NORMAL)
        & (everyday.ts < start + 0.6 * days * DAY)
        & ~np.isin(everyday.card, excluded)
    )
    rows = np.flatnonzero(usable)
    victims: dict[int, float] = {}  # card -> time of its visit to the compromised merchant
    for _ in range(500):
        if len(victims) >= count or len(rows) == 0:
            break
        seed_row = int(rng.choice(rows))
        merchant = everyday.merchant[seed_row]
        opens = everyday.ts[seed_row] - rng.uniform(0, 10) * DAY
        closes = opens + 21 * DAY
        there = rows[
            (everyday.merchant[rows] == merchant)
            & (everyday.ts[rows] >= opens)
            & (everyday.ts[rows] < closes)
        ]
        for row in rng.permutation(there):
            card = int(everyday.card[row])
            if len(victims) >= count:
                break
            if card not in victims:
                victims[card] = float(everyday.ts[row])
    events = Events()
    for card, visit in victims.items():
        t = min(visit + rng.uniform(2, 25) * DAY, end - 12 * HOUR)
        country = _fraud_country(rng) if rng.random() < 0.5 else home_of(cards, card)
        for _ in range(1 + rng.poisson(2.5)):
            t = min(t + rng.exponential(4 * HOUR), end - MINUTE)
            if rng.random() < 0.35:  # the skimmer also caught the PIN
                events.add(card, t, habits.ATM, country, amount=_cash(rng))
            else:
                category = int(rng.choice(COUNTERFEIT))
                amount = int(habits.MEDIAN_EUR[category] * rng.uniform(100, 300))
                events.add(card, t, category, country, amount=amount, entry=STRIPE)
    return events.build(cards, merchants, rng, COMPROMISED, 1)


def stolen_card(
    cards: Cards,
    merchants: Merchants,
    victims: np.ndarray,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> tuple[TxBatch, np.ndarray, np.ndarray]:
    """A stolen card: PIN guesses at an ATM (sometimes the thief saw the PIN), a contactless
    spree, sometimes across a border, and attempts after the cardholder reported it (43).
    Returns the fraud, and per victim the window in which the genuine cardholder cannot use
    the card (from the theft until the replacement arrives)."""
    end = start + days * DAY
    events = Events()
    blocked_from = np.empty(len(victims))
    blocked_to = np.empty(len(victims))
    for i, c in enumerate(victims):
        c = int(c)
        home = home_of(cards, c)
        day = rng.integers(0, days - 1)
        theft = start + day * DAY + rng.uniform(9, 23) * HOUR - geography.UTC_OFFSET_S[home]
        reported = theft + rng.uniform(4, 36) * HOUR
        country = int(rng.choice(geography.NEIGHBOURS)) if rng.random() < 0.3 else home
        saw_pin = rng.random() < 0.35
        first = len(events.ts)  # this victim's events start here
        t = theft + rng.uniform(10, 120) * MINUTE
        atm = merchants.any(np.array([country]), np.array([habits.ATM]), rng)[0]
        for _ in range(rng.integers(1, 3) if saw_pin else rng.integers(1, 4)):
            t += rng.uniform(40, 120)
            events.add(c, t, habits.ATM, country, amount=_cash(rng), merchant=int(atm),
                       forced=WRONG_PIN)  # fmt: skip
        if saw_pin:
            for _ in range(rng.integers(1, 3)):
                t += rng.uniform(60, 900)
                events.add(c, t, habits.ATM, country, amount=_cash(rng), merchant=int(atm))
        t = theft + rng.uniform(5, 60) * MINUTE
        for _ in range(rng.integers(2, 9)):
            t += rng.exponential(25 * MINUTE)
            category = int(rng.choice(STREET))
            events.add(c, t, category, country, amount=int(rng.integers(1000, 5000)), entry=TAP)
        for _ in range(rng.integers(0, 3)):
            category = int(rng.choice(STREET))
            events.add(c, reported + rng.uniform(0.5, 48) * HOUR, category, country,
                       amount=int(rng.integers(1000, 5000)), entry=TAP)  # fmt: skip
        blocked_from[i] = theft
        blocked_to[i] = reported + rng.uniform(2, 6) * DAY
        # whatever the thief tries after the report meets a blocked card
        for j in range(first, len(events.ts)):
            if events.ts[j] >= reported and events.forced[j] == FREE:
                events.forced[j] = REPORTED_STOLEN
    batch = events.build(cards, merchants, rng, STOLEN, 1)
    keep = batch.ts < end
    return batch.take(np.flatnonzero(keep)), blocked_from, blocked_to


def account_takeover(
    cards: Cards,
    merchants: Merchants,
    victims: np.ndarray,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> TxBatch:
    """Account takeover: with the cardholder's full credentials, a fraudster buys online at
    merchants the card has never used, for high amounts, often at night and from abroad."""
    events = Events()
    for c in victims:
        c = int(c)
        home = home_of(cards, c)
        hour = rng.uniform(0, 5) if rng.random() < 0.6 else rng.uniform(0, 24)
        t = start + rng.integers(0, days - 1) * DAY + hour * HOUR - geography.UTC_OFFSET_S[home]
        for _ in range(rng.integers(2, 7)):
            t += rng.exponential(40 * MINUTE)
            category = int(rng.choice(habits.TAKEOVER))
            country = home if rng.random() < 0.5 else _fraud_country(rng)
            amount = int(min(habits.MEDIAN_EUR[category] * rng.uniform(200, 600), 500_000))
            events.add(c, t, category, country, online=True, amount=amount)
    return events.build(cards, merchants, rng, TAKEOVER, 1)


def money_mule(
    cards: Cards,
    merchants: Merchants,
    mules: np.ndarray,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> TxBatch:
    """Money mules: a card recruited (or opened) to launder stolen money is paid by transfer
    (26, a few hundred to a few thousand euros) and emptied within hours at ATMs, in one to
    three withdrawals taking most of it, a few times over the period."""
    events = Events()
    transfer = habits.INDEX["4829"]
    for c in mules:
        c = int(c)
        home = home_of(cards, c)
        for _ in range(rng.integers(1, 5)):
            paid = start + rng.uniform(0, days - 1) * DAY
            amount = int(rng.integers(300, 3_000)) * 100
            events.add(c, paid, transfer, home, amount=amount, tx_type=TRANSFER_IN)
            t = paid + rng.uniform(10, 180) * MINUTE
            share = rng.uniform(0.6, 0.95)
            withdrawals = int(rng.integers(1, 4))
            atm = merchants.any(np.array([home]), np.array([habits.ATM]), rng)[0]
            for _ in range(withdrawals):
                cash = max(int(amount * share / withdrawals) // 1000 * 1000, 2_000)
                events.add(c, t, habits.ATM, home, amount=cash, merchant=int(atm), tx_type=CASH)
                t += rng.uniform(2, 40) * MINUTE
    return events.build(cards, merchants, rng, MULE, 1)


def wallet_fraud(
    cards: Cards,
    merchants: Merchants,
    victims: np.ndarray,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> tuple[TxBatch, np.ndarray]:
    """A stolen card number put in a fraudster's phone wallet (the issuer consented to the
    token, fooled by a phished one-time code): within hours it pays for resellable goods,
    tapped in shops of the card's country or in-app, well above everyday amounts. Returns the
    rows and when each victim's token was registered."""
    events = Events()
    registered = np.zeros(len(victims))
    for i, c in enumerate(victims):
        c = int(c)
        home = home_of(cards, c)
        t = start + rng.uniform(0, days - 1) * DAY
        registered[i] = t
        for _ in range(rng.integers(2, 7)):
            t += rng.uniform(10, 120) * MINUTE
            category = int(rng.choice(COUNTERFEIT))
            amount = int(min(habits.MEDIAN_EUR[category] * rng.uniform(40, 200), 300_000))
            if rng.random() < 0.7:  # tapped with the phone: no contactless limit with CDCVM
                events.add(c, t, category, home, amount=amount, entry=TAP)
            else:
                events.add(c, t, category, home, online=True, amount=amount)
    return events.build(cards, merchants, rng, WALLET_FRAUD, 1), registered


@dataclass(frozen=True, slots=True)
class BinAttack:
    """Requests for card numbers the issuer never issued, as journal text columns (they have no
    card index: ``simulator.traffic`` appends them to the cards' rows)."""

    ts: np.ndarray
    pan_masked: list[str]
    pan_index: list[str]
    merchant_id: list[str]
    terminal_id: list[str]
    country: list[str]
    mcc: list[str]
    amount: np.ndarray


# share of a BIN attack's generated numbers that are a real card of the issuer
BIN_ATTACK_HITS = 0.05


def bin_attack(
    cards: Cards,
    merchants: Merchants,
    per_day: float,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> tuple[BinAttack, TxBatch | None]:
    """BIN attacks: a fraudster generates Luhn-valid numbers in the issuer's BINs and tries them
    at one online merchant's terminal, seconds apart, for tiny amounts, to find the ones that
    exist. The issuer answers most of them 14 (no such card): no card's counters move, the
    merchant's and the terminal's do (``merchant.unknown_card_count_10m``). One number in
    twenty is a real card (the second batch, labelled fraud): those the issuer would approve
    unless the guessed CVV2 fails, which is what a terminal rule is for. ``per_day`` attacks a
    day on average, each of 20 to 120 numbers."""
    from simulator.population import _pans

    waves = int(rng.poisson(per_day * days))
    ts: list[float] = []
    pans: list[str] = []
    where: list[tuple[str, str, str, str]] = []
    hits = Events()
    hit_terminals: list[int] = []
    for _ in range(waves):
        country = _fraud_country(rng)
        category = int(rng.choice(habits.TESTING))
        merchant = int(merchants.any(np.array(country), np.array(category), rng))
        terminal = int(merchants.terminal(np.array(merchant), np.array(rng.integers(0, 2**31))))
        code = geography.CODES[country]
        place = (f"M{code}{merchant:011d}", f"T{terminal:07d}", code, str(habits.MCCS[category]))
        tries = int(rng.integers(20, 121))
        t = start + rng.uniform(0, days - 1) * DAY
        bins = rng.choice(np.array(["476173", "541333", "400000"]), size=tries)
        for pan in _pans(bins, rng):
            t += rng.exponential(8.0)
            if rng.random() < BIN_ATTACK_HITS:  # a number that exists: one of the cards
                forced = WRONG_CVV2 if rng.random() < 0.6 else FREE
                amount = int(rng.integers(50, 300))
                card = int(rng.integers(0, len(cards.card_id)))
                hits.add(card, t, category, country, online=True, amount=amount,
                         merchant=merchant, forced=forced)  # fmt: skip
                hit_terminals.append(terminal)
                continue
            ts.append(t)
            pans.append(pan)
            where.append(place)
    found = None
    if hits.card:
        found = hits.build(cards, merchants, rng, BIN_ATTACK, 1)
        found.terminal[:] = np.array(hit_terminals, dtype=found.terminal.dtype)
    digests = rng.integers(0, 2**63, size=(len(pans), 4))
    unknown = BinAttack(
        ts=np.array(ts, dtype=np.float64),
        pan_masked=[f"{p[:6]}******{p[-4:]}" for p in pans],
        pan_index=[f"{a:016x}{b:016x}{c:016x}{d:016x}" for a, b, c, d in digests],
        merchant_id=[w[0] for w in where],
        terminal_id=[w[1] for w in where],
        country=[w[2] for w in where],
        mcc=[w[3] for w in where],
        amount=rng.integers(50, 300, size=len(pans)),
    )
    return unknown, found
