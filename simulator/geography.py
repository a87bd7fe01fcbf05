"""Countries the simulated cards travel to and are attacked from: codes, clocks and weights.

Country codes are ISO 3166 numeric (what field 19 carries). The demo issuer is German, so most
cardholders live in Germany; a few live elsewhere in Europe. Offsets are winter UTC offsets:
they only shape the time of day at which people shop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # ISO 3166 numeric
    name: str
    utc_offset_h: float
    home_weight: float = 0.0  # share of the issuer's cardholders living there
    travel_weight: float = 0.0  # how often genuine travellers go there
    fraud_weight: float = 0.0  # how often stolen card data is cashed out there


COUNTRIES: tuple[Country, ...] = (
    Country("276", "Germany", 1, home_weight=0.88, travel_weight=0.0, fraud_weight=0.10),
    Country("250", "France", 1, home_weight=0.02, travel_weight=0.10, fraud_weight=0.05),
    Country("528", "Netherlands", 1, home_weight=0.02, travel_weight=0.05, fraud_weight=0.05),
    Country("040", "Austria", 1, home_weight=0.02, travel_weight=0.10, fraud_weight=0.02),
    Country("616", "Poland", 1, home_weight=0.03, travel_weight=0.03, fraud_weight=0.03),
    Country("380", "Italy", 1, home_weight=0.015, travel_weight=0.14, fraud_weight=0.03),
    Country("792", "Turkey", 3, home_weight=0.015, travel_weight=0.05, fraud_weight=0.06),
    Country("724", "Spain", 1, travel_weight=0.18, fraud_weight=0.05),
    Country("620", "Portugal", 0, travel_weight=0.05),
    Country("300", "Greece", 2, travel_weight=0.06),
    Country("191", "Croatia", 1, travel_weight=0.06),
    Country("826", "United Kingdom", 0, travel_weight=0.05, fraud_weight=0.10),
    Country("840", "United States", -5, travel_weight=0.08, fraud_weight=0.22),
    Country("764", "Thailand", 7, travel_weight=0.04, fraud_weight=0.02),
    Country("784", "United Arab Emirates", 4, travel_weight=0.04, fraud_weight=0.04),
    Country("566", "Nigeria", 1, fraud_weight=0.06),
    Country("076", "Brazil", -3, fraud_weight=0.06),
    Country("484", "Mexico", -6, fraud_weight=0.05),
    Country("356", "India", 5.5, fraud_weight=0.03),
    Country("156", "China", 8, fraud_weight=0.03),
)

CODES = np.array([c.code for c in COUNTRIES])
UTC_OFFSET_S = np.array([c.utc_offset_h * 3600.0 for c in COUNTRIES])
HOME = 0  # index of the issuer's own country


def _weights(values: list[float]) -> np.ndarray:
    array = np.array(values, dtype=float)
    return array / array.sum()


HOME_WEIGHTS = _weights([c.home_weight for c in COUNTRIES])
TRAVEL_WEIGHTS = _weights([c.travel_weight for c in COUNTRIES])
FRAUD_WEIGHTS = _weights([c.fraud_weight for c in COUNTRIES])
NEIGHBOURS = np.array(
    [i for i, c in enumerate(COUNTRIES) if c.code in ("250", "528", "040", "616")]
)
INDEX = {c.code: i for i, c in enumerate(COUNTRIES)}
INDEX_SPAIN = INDEX["724"]
