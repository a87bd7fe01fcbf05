"""Spending habits: merchant categories with their amounts and channels, and customer personas.

A persona is a way of life: which categories a customer buys in and at which hours (local
time). Each simulated customer gets one persona plus personal scales (how much, how often,
how much online), so that customers differ from each other but each is consistent with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Category:
    mcc: str
    name: str
    median_eur: float  # median ticket
    spread: float  # sigma of the log-normal ticket size
    online: float  # share of its purchases made card-not-present
    contactless: float  # share of card-present purchases made contactless (amount permitting)


CATEGORIES: tuple[Category, ...] = (
    Category("5411", "grocery", 35, 0.6, 0.03, 0.60),
    Category("5812", "restaurants", 40, 0.5, 0.02, 0.50),
    Category("5814", "fast food", 12, 0.4, 0.10, 0.80),
    Category("5541", "fuel", 55, 0.3, 0.00, 0.30),
    Category("5311", "department stores", 60, 0.7, 0.25, 0.40),
    Category("5912", "pharmacy", 20, 0.6, 0.15, 0.60),
    Category("5691", "clothing", 70, 0.6, 0.45, 0.35),
    Category("5732", "electronics", 220, 0.9, 0.55, 0.10),
    Category("4111", "local transport", 8, 0.5, 0.20, 0.90),
    Category("4121", "taxi", 22, 0.5, 0.30, 0.60),
    Category("5815", "digital goods", 11, 0.7, 1.00, 0.00),
    Category("5999", "misc retail", 30, 0.8, 0.50, 0.40),
    Category("5942", "books", 20, 0.5, 0.60, 0.50),
    Category("5813", "bars", 30, 0.6, 0.00, 0.60),
    Category("7011", "hotels", 160, 0.6, 0.50, 0.05),
    Category("4511", "airlines", 280, 0.6, 0.95, 0.00),
    Category("5944", "jewellery", 400, 0.8, 0.30, 0.05),
    Category("4829", "money transfer", 250, 0.8, 1.00, 0.00),
    Category("7995", "gambling", 45, 0.9, 1.00, 0.00),
    Category("5967", "direct marketing", 30, 0.6, 1.00, 0.00),
    Category("6011", "ATM cash", 100, 0.6, 0.00, 0.00),
)

MCCS = np.array([c.mcc for c in CATEGORIES])
INDEX = {c.mcc: i for i, c in enumerate(CATEGORIES)}
MEDIAN_EUR = np.array([c.median_eur for c in CATEGORIES])
SPREAD = np.array([c.spread for c in CATEGORIES])
ONLINE = np.array([c.online for c in CATEGORIES])
CONTACTLESS = np.array([c.contactless for c in CATEGORIES])
ATM = INDEX["6011"]

# categories fraudsters buy in (resaleable goods, cash-like)
CASH_OUT = np.array([INDEX[m] for m in ("5732", "5944", "5311", "4829", "5999")])
TESTING = np.array([INDEX[m] for m in ("5815", "5999", "5967")])
TAKEOVER = np.array([INDEX[m] for m in ("5732", "5944", "4829", "5815", "7995", "4511")])
TRAVEL_SPEND = np.array([INDEX[m] for m in ("5812", "5813", "5814", "5411", "4121", "5999")])


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    categories: dict[str, float]  # MCC -> relative weight
    hours: tuple[float, ...]  # 24 relative weights, local time


def _hours(*peaks: tuple[int, int, float], base: float = 0.05) -> tuple[float, ...]:
    weights = [base] * 24
    for start, end, weight in peaks:
        for hour in range(start, end):
            weights[hour % 24] += weight
    return tuple(weights)


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "commuter",
        {"5411": 5, "5814": 4, "4111": 4, "5541": 2, "5812": 2, "5999": 1, "6011": 1,
         "5815": 1, "5691": 0.5},
        _hours((7, 9, 1.0), (12, 14, 1.0), (17, 20, 1.2), (10, 17, 0.3)),
    ),
    Persona(
        "family",
        {"5411": 8, "5541": 3, "5311": 3, "5912": 2, "5691": 2, "5812": 1, "6011": 1.2,
         "5942": 0.5, "5732": 0.3},
        _hours((9, 20, 1.0), (16, 19, 0.6)),
    ),
    Persona(
        "online shopper",
        {"5815": 4, "5999": 3, "5691": 3, "5942": 2, "5732": 1, "5411": 3, "5967": 1,
         "5814": 1, "6011": 0.5},
        _hours((12, 14, 0.5), (18, 24, 1.2), (0, 1, 0.4)),
    ),
    Persona(
        "night owl",
        {"5813": 4, "5812": 3, "4121": 2, "5814": 3, "5815": 2, "5411": 2, "6011": 1,
         "7995": 0.3},
        _hours((12, 15, 0.4), (19, 24, 1.2), (0, 3, 0.8)),
    ),
    Persona(
        "retiree",
        {"5411": 6, "5912": 3, "5311": 2, "5812": 2, "6011": 1.5, "5942": 1, "5541": 1},
        _hours((8, 12, 1.2), (12, 17, 0.7)),
    ),
    Persona(
        "business traveller",
        {"5812": 3, "4121": 3, "5541": 2, "4511": 0.4, "7011": 0.4, "5411": 2, "5814": 2,
         "5732": 0.4, "6011": 0.5},
        _hours((6, 9, 0.8), (11, 14, 0.6), (18, 23, 1.0)),
    ),
)  # fmt: skip

PERSONA_WEIGHTS = np.array([0.25, 0.25, 0.18, 0.1, 0.14, 0.08])


def _cumulative(rows: list[list[float]]) -> np.ndarray:
    table = np.array(rows, dtype=float)
    table /= table.sum(axis=1, keepdims=True)
    return np.cumsum(table, axis=1)


# persona x category and persona x hour cumulative tables, for vectorised sampling
CATEGORY_CDF = _cumulative([[p.categories.get(c.mcc, 0.0) for c in CATEGORIES] for p in PERSONAS])
HOUR_CDF = _cumulative([list(p.hours) for p in PERSONAS])


def sample_rows(cdf: np.ndarray, which: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per element of ``which`` from row ``which[i]`` of a cumulative table."""
    u = rng.random(len(which))
    picks = (u[:, None] > cdf[which]).sum(axis=1)
    return np.minimum(picks, cdf.shape[1] - 1)
