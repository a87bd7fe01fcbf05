"""The demo card file (``authhost demo --export FILE``): test cards with their clear PAN, card
values and PIN, and the clear test terminal keys. Test data only: the file says so and the
loader refuses a file that does not."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authhost.cards.track2 import Track2Error, parse_track2
from authhost.iso.messages import AvsData, TokenData
from authhost.security.masking import mask_pan


class DemoFileError(ValueError):
    """A demo card file that cannot be used (the message never quotes card data)."""


@dataclass(frozen=True, slots=True)
class SimCard:
    pan: str = field(repr=False)
    expiry: str  # YYMM
    service_code: str
    cvv2: str = field(repr=False)
    track2: str = field(repr=False)
    pin: str | None = field(repr=False)
    state: str
    account: str
    currency: str
    available: int
    chip_cvn: int = 0  # the product's cryptogram version; 0: its ARQCs are not checked
    # a wallet's token of the card (the demo file's "token"): what field 48 SE 33 carries
    token: TokenData | None = field(default=None, repr=False)
    # the cardholder's billing address (the demo file's "billing_address"): what AVS checks
    billing_address: AvsData | None = field(default=None, repr=False)

    @property
    def masked(self) -> str:
        return mask_pan(self.pan) or ""

    def __str__(self) -> str:
        return f"{self.masked} {self.state} {self.account}"


@dataclass(frozen=True, slots=True)
class DemoFile:
    cards: tuple[SimCard, ...]
    zpk: bytes = field(repr=False)  # clear test zone PIN key
    bdk: bytes = field(repr=False)  # clear test DUKPT base derivation key
    imk_ac: bytes | None = field(default=None, repr=False)  # clear test EMV issuer master key
    zmk: bytes | None = field(default=None, repr=False)  # clear test zone master key
    imk_smi: bytes | None = field(default=None, repr=False)  # issuer scripts' MAC master key
    cavv: bytes | None = field(default=None, repr=False)  # the issuer ACS's CAVV key pair
    # the admin API of the `authhost serve --demo` that wrote the file ("": not written by one)
    admin_url: str = ""

    def active(self) -> tuple[SimCard, ...]:
        """Active cards with a PIN: the ones that can be approved."""
        return tuple(c for c in self.cards if c.state == "active" and c.pin)


_FIELDS = ("pan", "expiry", "service_code", "cvv2", "track2", "pin", "state", "account",
           "currency", "available")  # fmt: skip


def _billing_address(data: dict[str, str] | None) -> AvsData | None:
    if not data:
        return None
    return AvsData(str(data.get("postcode", "")), str(data.get("street", "")))


def _token(data: dict[str, str] | None) -> TokenData | None:
    if not data:
        return None
    return TokenData(data["pan"], data.get("expiry", ""), data.get("requestor_id", ""), "C")


# what each name a file may lack is (a missing card list was told "the keys zpk and bdk are
# needed", and a token's missing pan read as the card's)
_MISSING = {
    "zpk": "(the keys zpk and bdk are needed, as `authhost demo --export` writes them)",
    "bdk": "(the keys zpk and bdk are needed, as `authhost demo --export` writes them)",
    "keys": "(the test keys: zpk and bdk at least, as `authhost demo --export` writes them)",
    "cards": "(the list of test cards, as `authhost demo --export` writes it)",
    "pan": "in a card's token (its token PAN)",
}


def load_demo_file(path: Path) -> DemoFile:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as error:  # the way out: where a demo card file comes from
        raise DemoFileError(
            f"cannot read {path}: {error.strerror}; `authhost serve --demo` writes "
            "demo-cards.json in the directory it runs in, `authhost demo --export FILE` anywhere"
        ) from None
    except OSError as error:
        raise DemoFileError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError:
        raise DemoFileError(
            f"{path} is not JSON (expected `authhost demo --export` output)"
        ) from None
    if not isinstance(doc, dict) or doc.get("test_only") is not True:
        raise DemoFileError(f"{path} is not a test-only demo card file")
    try:
        keys = doc["keys"]
        cards = tuple(
            SimCard(
                **{name: card.get(name) for name in _FIELDS},
                chip_cvn=int(card.get("chip_cvn") or 0),
                token=_token(card.get("token")),
                billing_address=_billing_address(card.get("billing_address")),
            )  # fmt: skip
            for card in doc["cards"]
        )
        imk_ac = bytes.fromhex(keys["imk_ac"]) if keys.get("imk_ac") else None
        zmk = bytes.fromhex(keys["zmk"]) if keys.get("zmk") else None
        imk_smi = bytes.fromhex(keys["imk_smi"]) if keys.get("imk_smi") else None
        cavv = bytes.fromhex(keys["cavv"]) if keys.get("cavv") else None
        demo = DemoFile(
            cards,
            bytes.fromhex(keys["zpk"]),
            bytes.fromhex(keys["bdk"]),
            imk_ac,
            zmk,
            imk_smi,
            cavv,
            str(doc.get("admin_url") or ""),
        )
    except KeyError as error:  # say which: a switch's harness file written by hand lacks one
        name = error.args[0]
        raise DemoFileError(
            f"{path}: missing or malformed cards or keys: no {name!r} {_MISSING.get(name, '')}"
        ) from None
    except (TypeError, ValueError, AttributeError):
        raise DemoFileError(f"{path}: missing or malformed cards or keys") from None
    if not demo.cards:
        raise DemoFileError(f"{path} holds no cards")
    for number, card in enumerate(demo.cards, 1):
        problem = _card_problem(card)
        if problem:
            raise DemoFileError(f"{path}: card {number} has {problem}")
    return demo


def _digits(value: object, *lengths: int) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) in lengths


def _card_problem(card: SimCard) -> str:
    """What makes a card of the file unusable in a request (never the card data itself)."""
    if not _digits(card.pan, *range(12, 20)):
        return "no PAN of 12 to 19 digits"
    if not _digits(card.expiry, 4):
        return "no expiry YYMM"
    if not _digits(card.service_code, 3):
        return "no 3-digit service code"
    if not _digits(card.cvv2, 3, 4):
        return "no CVV2 of 3 or 4 digits"
    if card.pin is not None and not _digits(card.pin, *range(4, 13)):
        return "a PIN that is not 4 to 12 digits"
    if not _digits(card.currency, 3):
        return "no 3-digit currency code"
    if not isinstance(card.available, int) or isinstance(card.available, bool):
        return "no available amount in minor units"
    if not isinstance(card.state, str) or not isinstance(card.account, str):
        return "no state or account"
    try:
        track = parse_track2(card.track2) if isinstance(card.track2, str) else None
    except Track2Error:
        track = None
    if track is None or track.pan != card.pan:
        return "no track 2 (PAN=YYMM, service code, verification value) of its PAN"
    return ""


def pick_card(demo: DemoFile, which: str) -> SimCard:
    """A card by position (1 = first) or by the last four digits of its PAN."""
    if which.isdigit() and len(which) < 4:  # a position; 4 digits and more: the last digits
        if not 1 <= int(which) <= len(demo.cards):
            raise ValueError(
                f"no card {which}: the file has cards 1 to {len(demo.cards)} "
                "(or give the last 4 PAN digits)"
            )
        return demo.cards[int(which) - 1]
    matches = [c for c in demo.cards if c.pan.endswith(which)]
    if len(matches) != 1:
        raise ValueError(f"no single card matches {which!r} (use its number or last 4 digits)")
    return matches[0]


def remember_token(path: Path, pan: str, number: str, expiry: str, requestor_id: str) -> None:
    """Write the wallet token the issuer registered for a card into the demo file, so the
    next `send --wallet` pays with it."""
    doc = _test_only_doc(path)
    for card in doc["cards"]:
        if card.get("pan") == pan:
            card["token"] = {"pan": number, "expiry": expiry, "requestor_id": requestor_id}
            _replace(path, doc)
            return


def remember_pin(path: Path, pan: str, pin: str) -> None:
    """Write a card's new PIN into the demo file after the host approved a PIN change, so the
    next `--pin card` uses it."""
    doc = _test_only_doc(path)
    for card in doc["cards"]:
        if card.get("pan") == pan:
            card["pin"] = pin
            _replace(path, doc)
            return


def remember_zone_pin_key(path: Path, zpk: bytes) -> None:
    """Write the zone PIN key the host accepted in a key change into the demo file, so the
    next PIN block is encrypted under it."""
    doc = _test_only_doc(path)
    doc["keys"]["zpk"] = zpk.hex().upper()
    _replace(path, doc)


def _test_only_doc(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    if doc.get("test_only") is not True:
        raise DemoFileError(f"{path} is not a test-only demo card file")
    return doc


def _replace(path: Path, doc: dict[str, Any]) -> None:
    """The file replaced whole (a reader never sees half of it), keeping its permissions."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(json.dumps(doc, indent=2) + "\n")
    staged.chmod(path.stat().st_mode & 0o777)
    staged.replace(path)
