"""Country centroids (ISO 3166 numeric) and the great-circle distance between two countries.

A coarse table is enough for a fraud feature: "this card, issued in Germany, is used 9,000 km
away" matters; the exact border does not. Unknown countries have no distance (0 km plus the
``country_known`` feature saying so).
"""

from __future__ import annotations

import math

# ISO 3166-1 numeric -> (latitude, longitude) of the country's approximate centroid.
CENTROIDS: dict[int, tuple[float, float]] = {
    36: (-25.3, 133.8),  # Australia
    40: (47.6, 14.1),  # Austria
    32: (-38.4, -63.6),  # Argentina
    56: (50.6, 4.6),  # Belgium
    76: (-14.2, -51.9),  # Brazil
    100: (42.7, 25.5),  # Bulgaria
    124: (56.1, -106.3),  # Canada
    152: (-35.7, -71.5),  # Chile
    156: (35.9, 104.2),  # China
    170: (4.6, -74.3),  # Colombia
    191: (45.1, 15.2),  # Croatia
    196: (35.1, 33.4),  # Cyprus
    203: (49.8, 15.5),  # Czechia
    208: (56.0, 10.0),  # Denmark
    233: (58.6, 25.0),  # Estonia
    246: (64.0, 26.0),  # Finland
    250: (46.6, 2.2),  # France
    276: (51.2, 10.4),  # Germany
    300: (39.0, 22.0),  # Greece
    344: (22.3, 114.2),  # Hong Kong
    348: (47.2, 19.5),  # Hungary
    352: (64.9, -19.0),  # Iceland
    356: (20.6, 79.0),  # India
    360: (-0.8, 113.9),  # Indonesia
    372: (53.2, -8.2),  # Ireland
    376: (31.0, 34.9),  # Israel
    380: (42.8, 12.6),  # Italy
    392: (36.2, 138.3),  # Japan
    404: (-0.02, 37.9),  # Kenya
    410: (35.9, 127.8),  # Korea, Republic of
    428: (56.9, 24.6),  # Latvia
    440: (55.2, 23.9),  # Lithuania
    442: (49.8, 6.1),  # Luxembourg
    458: (4.2, 102.0),  # Malaysia
    470: (35.9, 14.4),  # Malta
    484: (23.6, -102.5),  # Mexico
    504: (31.8, -7.1),  # Morocco
    528: (52.1, 5.3),  # Netherlands
    554: (-40.9, 174.9),  # New Zealand
    566: (9.1, 8.7),  # Nigeria
    578: (64.5, 12.0),  # Norway
    604: (-9.2, -75.0),  # Peru
    608: (12.9, 121.8),  # Philippines
    616: (52.1, 19.4),  # Poland
    620: (39.6, -8.0),  # Portugal
    642: (45.9, 25.0),  # Romania
    643: (61.5, 105.3),  # Russian Federation
    682: (23.9, 45.1),  # Saudi Arabia
    702: (1.35, 103.8),  # Singapore
    703: (48.7, 19.7),  # Slovakia
    705: (46.2, 14.9),  # Slovenia
    710: (-30.6, 22.9),  # South Africa
    724: (40.4, -3.7),  # Spain
    752: (62.0, 15.0),  # Sweden
    756: (46.8, 8.2),  # Switzerland
    764: (15.9, 100.9),  # Thailand
    784: (23.4, 53.8),  # United Arab Emirates
    792: (39.0, 35.2),  # Turkey
    804: (48.4, 31.2),  # Ukraine
    818: (26.8, 30.8),  # Egypt
    826: (54.0, -2.0),  # United Kingdom
    840: (39.8, -98.6),  # United States
    704: (14.1, 108.3),  # Viet Nam
}

EARTH_RADIUS_KM = 6371.0


def centroid(country: str) -> tuple[float, float] | None:
    """The centroid of an ISO 3166 numeric code ("276", "040" or "40"), None if unknown."""
    if not country or not country.isdigit():
        return None
    return CENTROIDS.get(int(country))


def distance_km(country_a: str, country_b: str) -> float | None:
    """Great-circle distance between two countries' centroids; None if either is unknown."""
    a, b = centroid(country_a), centroid(country_b)
    if a is None or b is None:
        return None
    if a == b:
        return 0.0
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
