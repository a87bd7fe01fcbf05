"""Merchant category codes grouped by fraud risk: one small table the features read.

Groups follow where card fraud concentrates: quasi-cash and money transfer, gambling, digital
goods and resalable goods (electronics, jewellery) are where stolen card data is cashed out;
everyday spending (groceries, fuel, transit, restaurants) rarely is. Anything not listed is
ordinary retail (group 1).
"""

from __future__ import annotations

LOW, ORDINARY, ELEVATED, HIGH = 0, 1, 2, 3

_HIGH = {
    "4829",  # money transfer
    "6051",  # quasi-cash: foreign currency, money orders, crypto
    "6540",  # stored value card loads
    "6211",  # securities brokers
    "7995",  # gambling
    "7800",  # government lotteries
    "7801",  # online casinos
    "7802",  # horse and dog racing
    "5966",  # direct marketing, outbound telemarketing
    "5967",  # direct marketing, inbound teleservices
    "5816",  # digital goods: games
    "5818",  # digital goods: large digital goods merchant
}
_ELEVATED = {
    "6010",  # manual cash disbursement
    "6011",  # ATM cash
    "5732",  # electronics stores
    "5734",  # computer software stores
    "5944",  # jewellery, watches
    "5945",  # hobby, toy and game shops
    "5094",  # precious stones and metals
    "4722",  # travel agencies
    "4511",  # airlines
    "7011",  # hotels
    "5691",  # clothing stores
    "5999",  # miscellaneous retail
    "5310",  # discount stores
    "5311",  # department stores
}
_LOW = {
    "5411",  # grocery stores, supermarkets
    "5499",  # convenience food stores
    "5541",  # service stations
    "5542",  # automated fuel dispensers
    "5812",  # restaurants
    "5814",  # fast food
    "4111",  # commuter transport
    "4121",  # taxis
    "4131",  # bus lines
    "5912",  # pharmacies
    "4900",  # utilities
    "8011",  # doctors
    "8062",  # hospitals
    "8211",  # schools
}


def mcc_risk_group(mcc: str) -> int:
    """0 low, 1 ordinary, 2 elevated, 3 high; airline MCCs 3000-3350 count as elevated."""
    if mcc in _HIGH:
        return HIGH
    if mcc in _ELEVATED or (mcc.isdigit() and 3000 <= int(mcc) <= 3350):
        return ELEVATED
    if mcc in _LOW:
        return LOW
    return ORDINARY
