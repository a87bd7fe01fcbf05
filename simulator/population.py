"""The simulated world: cardholders (with their habits) and merchants (with their terminals).

Cards get synthetic identifiers and PANs on the demo test BINs (Luhn-valid, shown masked
only); they never exist in a card store. Merchants live in pools per (country, category);
each cardholder has a ``locality`` that makes them return to the same few merchants, as
people do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from authhost.cards.luhn import luhn_check_digit
from authhost.security.masking import mask_pan
from simulator import geography, habits

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class SimProduct:
    product_id: str  # the demo installation's product ids, so replays find a like card
    bin: str
    kind: str
    weight: float


PRODUCTS: tuple[SimProduct, ...] = (
    SimProduct("demo-visa-debit", "476173", "debit", 0.55),
    SimProduct("demo-mc-3624", "541333", "debit", 0.25),
    SimProduct("demo-visa-credit", "400000", "credit", 0.20),
)


@dataclass(frozen=True, slots=True)
class Cards:
    """One element per card."""

    home: np.ndarray  # country index
    persona: np.ndarray  # index into habits.PERSONAS
    rate: np.ndarray  # mean transactions per day
    scale: np.ndarray  # multiplies every ticket size
    online: np.ndarray  # multiplies the categories' online share
    locality: np.ndarray  # int64: which merchants are "theirs"
    product: np.ndarray  # index into PRODUCTS
    created: np.ndarray  # epoch seconds the card was issued
    budget: np.ndarray  # minor units of open-to-buy restored every 30 days
    cycle: np.ndarray  # seconds into the 30-day cycle at the start of the period
    card_id: np.ndarray  # str
    pan_index: np.ndarray  # str (synthetic keyed-hash look-alike)
    pan_masked: np.ndarray  # str
    account_id: np.ndarray  # str

    def __len__(self) -> int:
        return len(self.home)


def _pans(bins: np.ndarray, rng: np.random.Generator) -> list[str]:
    digits = rng.integers(0, 10, size=(len(bins), 9))
    pans = []
    for bin_prefix, body in zip(bins, digits, strict=True):
        partial = str(bin_prefix) + "".join(map(str, body))
        pans.append(partial + luhn_check_digit(partial))
    return pans


def make_cards(n: int, start: float, rng: np.random.Generator) -> Cards:
    home = rng.choice(len(geography.COUNTRIES), size=n, p=geography.HOME_WEIGHTS)
    persona = rng.choice(len(habits.PERSONAS), size=n, p=habits.PERSONA_WEIGHTS)
    rate = rng.gamma(shape=2.0, scale=0.55, size=n) + 0.05  # mean ~1.15 a day
    scale = rng.lognormal(0.0, 0.35, size=n)
    online = rng.lognormal(0.0, 0.5, size=n)
    locality = rng.integers(0, 2**31, size=n)
    product = rng.choice(len(PRODUCTS), size=n, p=[p.weight for p in PRODUCTS])
    created = start - rng.uniform(20, 1400, size=n) * DAY
    monthly_spend = rate * 30 * 45.0 * scale * 100  # rough mean spend, minor units
    budget = np.maximum(monthly_spend * rng.uniform(1.3, 2.5, size=n), 50_000).astype(np.int64)
    cycle = rng.uniform(0, 30 * DAY, size=n)
    bins = np.array([p.bin for p in PRODUCTS])[product]
    pans = _pans(bins, rng)
    ids = rng.integers(0, 2**63, size=(n, 5), dtype=np.int64)
    return Cards(
        home=home,
        persona=persona,
        rate=rate,
        scale=scale,
        online=online,
        locality=locality,
        product=product,
        created=created,
        budget=budget,
        cycle=cycle,
        card_id=np.array([f"crd_{i[0]:016x}" for i in ids]),
        pan_index=np.array([f"{i[1]:016x}{i[2]:016x}{i[3]:016x}{i[4]:016x}" for i in ids]),
        pan_masked=np.array([mask_pan(p) for p in pans]),
        account_id=np.array([f"acc_{i[1] ^ i[3]:016x}" for i in ids]),
    )


@dataclass(frozen=True, slots=True)
class Merchants:
    """Merchant pools per (country, category); merchant m has terminals first[m] .. +count[m]."""

    offset: np.ndarray  # (countries, categories) first merchant index of each pool
    size: np.ndarray  # (countries, categories) pool size
    country: np.ndarray  # per merchant
    category: np.ndarray  # per merchant
    first_terminal: np.ndarray  # per merchant
    terminals: np.ndarray  # per merchant

    def __len__(self) -> int:
        return len(self.country)

    def local(
        self, country: np.ndarray, category: np.ndarray, locality: np.ndarray, rank: np.ndarray
    ) -> np.ndarray:
        """The cardholder's ``rank``-th usual merchant of that category in that country."""
        size = self.size[country, category]
        return self.offset[country, category] + (locality + rank * 7919) % size

    def any(
        self, country: np.ndarray, category: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """A merchant drawn uniformly from the pool (somewhere the card has likely never been)."""
        size = self.size[country, category]
        return self.offset[country, category] + rng.integers(0, 2**31, size=np.shape(size)) % size

    def terminal(self, merchant: np.ndarray, pick: np.ndarray) -> np.ndarray:
        return self.first_terminal[merchant] + pick % self.terminals[merchant]


def make_merchants(n_cards: int, rng: np.random.Generator) -> Merchants:
    countries, categories = len(geography.COUNTRIES), len(habits.CATEGORIES)
    residents = geography.HOME_WEIGHTS * n_cards
    visitors = geography.TRAVEL_WEIGHTS * n_cards
    per_country = 30 + residents / 6 + visitors / 40
    size = np.repeat(per_country.astype(np.int64)[:, None], categories, axis=1)
    offset = np.concatenate([[0], np.cumsum(size.ravel())[:-1]]).reshape(size.shape)
    total = int(size.sum())
    country = np.repeat(np.arange(countries), size.sum(axis=1))
    category = np.concatenate([np.repeat(np.arange(categories), row) for row in size])
    terminals = rng.integers(1, 4, size=total)
    first_terminal = np.concatenate([[0], np.cumsum(terminals)[:-1]])
    return Merchants(offset, size, country, category, first_terminal, terminals)
