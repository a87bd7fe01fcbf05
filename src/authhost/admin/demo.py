"""A demo installation: test products, funded accounts and cards in every lifecycle state.

``ensure_demo`` makes a fresh installation answer a first authorisation within a minute: it
creates (idempotently: running it again changes nothing) two debit products on test BINs
(Visa PVV on 476173, IBM 3624 offsets on 541333), a credit product, accounts with funds,
active cards with PINs, and one card in each other state. PINs are set the way production sets
them: an ISO 9564 format 0 PIN block encrypted under the test zone PIN key, stored only as a
PVV or offset. The demo finds what it made by its idempotency keys (``demo:...``): it makes
their results markers (``CardStore.keep_result``), which the idempotency retention never
prunes, so that a run years on still issues no demo card twice.

``export_demo`` writes the demo cards with their clear PAN, card values, PIN and the clear
test terminal keys for test tools (the simulator). It refuses unless the security module runs
on a demo key store: production keys and cards are never exported this way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authhost.admin import requests as rq
from authhost.admin.errors import ConflictError, ServiceError
from authhost.admin.service import CardService
from authhost.cards.luhn import luhn_check_digit
from authhost.cards.model import CardKind, CardState, PinMethod
from authhost.cards.track2 import build_track2
from authhost.security.errors import SecurityError
from authhost.security.pinblock import PinBlockFormat, encrypt_pin_block

log = logging.getLogger("authhost.admin.demo")

DEMO_ISSUER = "demo"
S = CardState

PRODUCTS: tuple[rq.NewProduct, ...] = (
    rq.NewProduct(
        product_id="demo-visa-debit",
        issuer_id=DEMO_ISSUER,
        name="Demo Visa debit (test BIN, PVV)",
        bin="476173",
        kind=CardKind.DEBIT,
        currency="978",
        home_country="276",
        pin_method=PinMethod.VISA_PVV,
        limits=rq.LimitsSpec(per_transaction=200_000, daily_amount=500_000, daily_count=30),
        imk_ac_name="imk-ac",  # chip cryptograms checked (Visa CVN 18)
        imk_smi_name="imk-smi",  # and issuer scripts sent to the chip
        imk_smc_name="imk-smc",  # a new PIN among them
        cavv_key_name="cavv",  # 3-D Secure authentication values checked
    ),
    rq.NewProduct(
        product_id="demo-mc-3624",
        issuer_id=DEMO_ISSUER,
        name="Demo Mastercard debit (test BIN, IBM 3624 offset)",
        bin="541333",
        kind=CardKind.DEBIT,
        currency="978",
        home_country="276",
        pin_method=PinMethod.IBM3624,
        limits=rq.LimitsSpec(per_transaction=200_000, atm_daily_amount=100_000),
        imk_ac_name="imk-ac",
        chip_cvn=16,  # M/Chip
        imk_smi_name="imk-smi",
        imk_smc_name="imk-smc",
        cavv_key_name="cavv",
    ),
    rq.NewProduct(
        product_id="demo-visa-credit",
        issuer_id=DEMO_ISSUER,
        name="Demo Visa credit (test BIN, PVV)",
        bin="400000",
        kind=CardKind.CREDIT,
        currency="978",
        home_country="276",
        pin_method=PinMethod.VISA_PVV,
        imk_ac_name="imk-ac",
        chip_cvn=10,  # the older Visa cryptogram version
        imk_smi_name="imk-smi",
        imk_smc_name="imk-smc",
        cavv_key_name="cavv",
    ),
)

ACCOUNTS: tuple[rq.NewAccount, ...] = (
    rq.NewAccount(account_id="demo-acc-1", currency="978", balance=250_000),  # 2 500.00
    rq.NewAccount(account_id="demo-acc-2", currency="978", balance=5_000),  # 50.00: try 51
    rq.NewAccount(account_id="demo-acc-3", currency="978", balance=100_000),
    rq.NewAccount(
        account_id="demo-acc-credit", currency="978", kind=CardKind.CREDIT, credit_limit=300_000
    ),
)

_LIVE = ("ship", "activate")


@dataclass(frozen=True, slots=True)
class DemoCard:
    key: str  # stable name; the idempotency key of its issuance is "demo:<key>"
    product_id: str
    account_id: str
    name: str
    actions: tuple[str, ...]  # lifecycle actions from "created"
    pin: str | None  # set before any action (a demo PIN, published in the export)


CARDS: tuple[DemoCard, ...] = (
    DemoCard("active-visa", "demo-visa-debit", "demo-acc-1", "ADA LOVELACE", _LIVE, "1234"),
    DemoCard("active-visa-low", "demo-visa-debit", "demo-acc-2", "ALAN TURING", _LIVE, "4321"),
    DemoCard("active-3624", "demo-mc-3624", "demo-acc-3", "GRACE HOPPER", _LIVE, "2468"),
    DemoCard(
        "active-credit", "demo-visa-credit", "demo-acc-credit", "EDSGER DIJKSTRA", _LIVE, "1357"
    ),
    DemoCard("created", "demo-visa-debit", "demo-acc-1", "CARD CREATED", (), None),
    DemoCard("issued", "demo-visa-debit", "demo-acc-1", "CARD ISSUED", ("ship",), "1111"),
    DemoCard(
        "suspended", "demo-visa-debit", "demo-acc-1", "CARD SUSPENDED", (*_LIVE, "suspend"), "2222"
    ),
    DemoCard("lost", "demo-visa-debit", "demo-acc-1", "CARD LOST", (*_LIVE, "report-lost"), "3333"),
    DemoCard(
        "stolen", "demo-visa-debit", "demo-acc-1", "CARD STOLEN", (*_LIVE, "report-stolen"), "4444"
    ),
    DemoCard(
        "damaged", "demo-mc-3624", "demo-acc-3", "CARD DAMAGED", (*_LIVE, "report-damaged"), "5555"
    ),
    DemoCard(
        "expired", "demo-visa-debit", "demo-acc-1", "CARD EXPIRED", (*_LIVE, "expire"), "6666"
    ),
    DemoCard("closed", "demo-visa-debit", "demo-acc-1", "CARD CLOSED", (*_LIVE, "cancel"), "7777"),
)

# cards with a wallet token on a phone (the network's de-tokenised payments carry it in field
# 48 SE 33): demo card key -> token requestor ID (Google Pay's)
DEMO_TOKENS = {"active-visa": "50120834693"}
# cards with a billing address for address verification (AVS): demo card key -> (postcode,
# street); the card keeps only keyed hashes of it, the export gives it to the simulator
DEMO_BILLING_ADDRESSES = {"active-visa": ("EC1A 1BB", "12 Lovelace Street")}


def demo_token_pan(pan: str) -> str:
    """The demo token number of a card: on the card's test BIN, from its PAN, so that the
    export can give it to the simulator without the store keeping it."""
    body = pan[:6] + "9" + str(int(hashlib.sha256(pan.encode()).hexdigest(), 16))[:8]
    return body + luhn_check_digit(body)


# the state after each action, to resume a demo that stopped half-way
_AFTER = {
    "ship": S.ISSUED,
    "activate": S.ACTIVE,
    "suspend": S.SUSPENDED,
    "report-lost": S.LOST,
    "report-stolen": S.STOLEN,
    "report-damaged": S.DAMAGED,
    "expire": S.EXPIRED,
    "cancel": S.CLOSED,
}


def _idempotency_key(card: DemoCard) -> str:
    return f"demo:{card.key}"


def is_demo_installation(service: CardService) -> bool:
    """True only when the security module runs on a demo key store (generated test keys)."""
    return bool(service.security.key_store.demo)


def _test_keys(service: CardService) -> dict[str, str]:
    """The clear test keys as hex: the zone PIN key, the (TDES) DUKPT BDK, the chip's issuer
    master key, the zone master key a switch sends new zone PIN keys under and the 3-D Secure
    access control server's CAVV key pair."""
    keys = service.security.demo_test_keys()
    return {
        "zpk": keys["zpk"],
        "bdk": keys["bdk"],
        "imk_ac": keys["imk-ac"],
        "imk_smi": keys["imk-smi"],
        "imk_smc": keys["imk-smc"],
        "zmk": keys["zmk"],
        "cavv": keys["cavv"],
    }


async def ensure_demo(service: CardService) -> list[dict[str, Any]]:
    """Create the demo data if missing; return the demo cards' (masked) views in table order.

    Refuses (ServiceError) on an installation whose security module is not a demo one, because
    demo PINs and test keys must never meet production data.
    """
    if not is_demo_installation(service):
        raise ConflictError("the demo needs a demo installation (security.demo = true)")
    service = service.acting_as("demo")
    for product in PRODUCTS:
        # a demo made by an older authhost has its products already, made from an older spec
        # (without the chip fields, say): keep them; creating them again would be refused
        assert product.product_id is not None
        if await service.store.get_product(product.product_id) is None:
            await service.create_product(product, idempotency_key=f"demo:{product.product_id}")
        await service.store.keep_result(f"product.create:demo:{product.product_id}")
    for account in ACCOUNTS:
        await service.create_account(account, idempotency_key=f"demo:{account.account_id}")
        await service.store.keep_result(f"account.create:demo:{account.account_id}")
    zpk = bytes.fromhex(_test_keys(service)["zpk"])
    views = []
    for spec in CARDS:
        views.append(await _ensure_card(service, spec, zpk))
        if off_script(spec, views[-1]):
            continue  # an operator's card now: nothing more is done to it
        if spec.key in DEMO_TOKENS and not views[-1]["tokens"]:
            pan = await _clear_pan(service, views[-1]["card_id"])
            token = rq.NewToken(
                token_pan=demo_token_pan(pan), requestor_id=DEMO_TOKENS[spec.key],
                expiry=views[-1]["expiry"], device="phone",
            )  # fmt: skip
            del pan
            views[-1] = await service.add_token(views[-1]["card_id"], token)
        if spec.key in DEMO_BILLING_ADDRESSES and not views[-1]["billing_address_on_file"]:
            postcode, street = DEMO_BILLING_ADDRESSES[spec.key]
            change = rq.Personalise(billing_postcode=postcode, billing_street=street)
            views[-1] = await service.personalise(views[-1]["card_id"], change)
    return views


async def _ensure_card(service: CardService, spec: DemoCard, zpk: bytes) -> dict[str, Any]:
    issued = await service.issue_card(
        rq.IssueCard(
            product_id=spec.product_id, account_id=spec.account_id, cardholder_name=spec.name
        ),
        idempotency_key=_idempotency_key(spec),
    )
    # the demo finds its cards by these results (here, demo_export): markers, kept for good
    await service.store.keep_result(f"card.issue:{_idempotency_key(spec)}")
    card_id = issued["card_id"]
    card = await service.get_card(card_id)
    if spec.pin is not None and not card["pin_set"] and card["state"] == S.CREATED.value:
        pan = await _clear_pan(service, card_id)
        block = encrypt_pin_block(zpk, spec.pin, pan, PinBlockFormat.ISO0)
        del pan
        card = await service.set_pin(card_id, rq.PinChange(pin_block=block.hex().upper()))
    states = [S.CREATED, *(_AFTER[a] for a in spec.actions)]
    reached = [i for i, state in enumerate(states) if state.value == card["state"]]
    if not reached:  # an operator moved it off its script (suspended it, say): leave it
        log.warning(
            "demo: card %s (%s) is %s, off its scripted path (%s): left as it is",
            card_id, spec.key, card["state"], " -> ".join(s.value for s in states),
        )  # fmt: skip
        return card
    for action in spec.actions[max(reached) :]:
        card = await service.apply(card_id, action, reason="demo data")
    return card


def off_script(spec: DemoCard, card: dict[str, Any]) -> bool:
    """Whether the demo card's state is not one its script passes through: an operator
    changed it (suspended an active card, activated the issued one...), and the demo leaves
    it as it is rather than fail or undo the operator's change."""
    states = {S.CREATED, *(_AFTER[a] for a in spec.actions)}
    return card["state"] not in {state.value for state in states}


def off_script_notes(views: list[dict[str, Any]]) -> list[str]:
    """A line for each demo card (``ensure_demo``'s views, in ``CARDS`` order) left off its
    scripted state, for the operator who runs the demo."""
    return [
        f"demo card {view['card_id']} ({spec.key}) is {view['state']}, not what the demo made "
        "it: left as it is"
        for spec, view in zip(CARDS, views, strict=True)
        if off_script(spec, view)
    ]


async def _clear_pan(service: CardService, card_id: str) -> str:
    blob = await service.store.pan_ciphertext(card_id)
    return service.security.decrypt_pan(blob, card_id)


async def demo_export(
    service: CardService, file_pins: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The export document (clear PANs, PINs and test keys): only for demo installations.
    ``file_pins`` (PAN: PIN, from the file being rewritten): a card's PIN there that the
    security module verifies against the card's PVV or offset is the one written, so a PIN
    changed since (``authhost-sim send pin-change``, ``authhost pin set``) is not replaced by
    the demo's original; any other is the original."""
    if not is_demo_installation(service):
        raise ConflictError(
            "refusing to export: this is not a demo installation (security.demo is false)"
        )
    cards = []
    for spec in CARDS:
        stored = await service.store.idempotent_result(f"card.issue:{_idempotency_key(spec)}")
        if stored is None:
            raise ServiceError("the demo data is missing: run `authhost demo` first")
        card_id = json.loads(stored)["result"]["card_id"]
        card = await service.get_card(card_id)
        product = await service.store.get_product(card["product_id"])
        account = await service.get_account(card["account_id"])
        pan = await _clear_pan(service, card_id)
        pin = await _current_pin(service, card_id, pan, spec.pin, (file_pins or {}).get(pan))
        values = service.security.card_values(
            pan, card["expiry"], card["service_code"], product.cvk_name
        )
        cards.append(
            {
                "pan": pan,
                "expiry": card["expiry"],
                "service_code": card["service_code"],
                "cvv2": values.cvv2,
                "track2": build_track2(pan, card["expiry"], card["service_code"], values.icvv),
                "pin": pin,
                "state": card["state"],
                "account": card["account_id"],
                "currency": account["currency"],
                "available": account["open_to_buy"],
                "chip_cvn": product.chip_cvn if product.imk_ac_name else 0,
                "cavv_checked": bool(product.cavv_key_name),
            }
        )
        if spec.key in DEMO_BILLING_ADDRESSES:  # what a web shop's checkout asks for
            postcode, street = DEMO_BILLING_ADDRESSES[spec.key]
            cards[-1]["billing_address"] = {"postcode": postcode, "street": street}
        if spec.key in DEMO_TOKENS:  # the wallet's token, as the network would send it
            cards[-1]["token"] = {
                "pan": demo_token_pan(pan),
                "expiry": card["expiry"],
                "requestor_id": DEMO_TOKENS[spec.key],
            }
    return {"test_only": True, "keys": _test_keys(service), "cards": cards}


async def _current_pin(
    service: CardService, card_id: str, pan: str, original: str | None, in_file: object
) -> str | None:
    """The PIN to write for a demo card: the file's when it is the card's PIN now, else the
    demo's original."""
    if not isinstance(in_file, str) or in_file == original or not _digits(in_file):
        return original
    card = await service.store.get_card(card_id)
    if card is None or card.pin_reference is None:
        return original
    product = await service.store.get_product(card.product_id)
    if product is None:
        return original
    try:
        matches = service.security.demo_pin_matches(
            in_file, pan, card.pin_method, product.pvk_name, product.pvki, card.pin_reference
        )
    except SecurityError:  # the product's PVK missing: the original, as before
        return original
    return in_file if matches else original


def _pins_in(out: Path) -> dict[str, str]:
    """PAN: PIN of the demo card file about to be rewritten ({} when there is none, or it is
    not a test-only demo card file)."""
    try:
        doc = json.loads(Path(out).read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("test_only") is not True:
            return {}
        return {
            card["pan"]: card["pin"]
            for card in doc["cards"]
            if isinstance(card.get("pan"), str) and isinstance(card.get("pin"), str)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


async def export_demo(service: CardService, out: Path, *, admin_url: str = "") -> int:
    """Write ``demo_export`` to ``out`` (mode 0600) and audit it; return the number of cards.
    A PIN the file already holds for a card stays when it is the card's PIN now (changed over
    the wire since the file was written). ``admin_url``: the admin API of the server writing
    it (``serve --demo``), which ``authhost-sim token-request`` then reaches without an
    ``--admin`` option."""
    data = await demo_export(service, _pins_in(out))
    if admin_url:
        data["admin_url"] = admin_url
    # written aside and renamed over: `serve --demo --workers N` has every worker export at
    # once, and two writers truncating one file could leave it half-written for the simulator
    aside = Path(out).with_name(f".{Path(out).name}.{os.getpid()}.tmp")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(aside, out)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    summary = {"file": str(Path(out).resolve()), "cards": len(data["cards"])}
    await service.record_audit("demo.export", "demo", None, summary)
    return len(data["cards"])


def _digits(text: str) -> bool:
    """4 to 12 ASCII digits: what a PIN can be."""
    return 4 <= len(text) <= 12 and text.isascii() and text.isdigit()
