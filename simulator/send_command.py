"""``authhost-sim send``: one request (or a purchase and its reversal), shown field by field."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import trio
import typer
from rich.console import Console

from authhost.auth.currencies import exponent_of
from authhost.cards.track2 import build_track2
from authhost.iso.codec import EncodeError, encode_request
from authhost.iso.messages import AvsData
from authhost.iso.subfields import parse_key_exchange
from authhost.security.blockcipher import tdes_ecb_decrypt
from authhost.security.keys import KeyAlgorithm, generate_material
from simulator.builder import (
    NETWORK_CODES,
    Entry,
    Fields,
    Kind,
    Network,
    RequestBuilder,
    Terminal,
)
from simulator.chip_checks import ChipChecker
from simulator.chip_counters import ChipCounters
from simulator.client import ClientError, IsoClient, Link
from simulator.demo_cards import (
    DemoFileError,
    SimCard,
    load_demo_file,
    pick_card,
    remember_pin,
    remember_zone_pin_key,
)
from simulator.display import message_table, outcome

out = Console()
err = Console(stderr=True)

HostOpt = typer.Option("127.0.0.1", help="Host address.")
PortOpt = typer.Option(8583, help="Host port.")
DialectOpt = typer.Option(
    "ascii-binary-bitmap",
    help="ascii-binary-bitmap, ascii-hex-bitmap, bcd-binary-bitmap or ebcdic-binary-bitmap.",
)
FramingOpt = typer.Option("binary2", help="Length header: binary2 or ascii4.")
TpduOpt = typer.Option(False, help="Frames carry a 5-byte TPDU.")
TlsCaOpt = typer.Option(
    "", "--tls-ca", help="TLS: the CA (PEM) that signed the host's certificate."
)
TlsCertOpt = typer.Option("", "--tls-cert", help="Mutual TLS: the switch's certificate (PEM).")
TlsKeyOpt = typer.Option("", "--tls-key", help="Mutual TLS: the switch's private key (PEM).")
TimeoutOpt = typer.Option(5.0, help="Seconds to wait for the answer.")
CardsOpt = typer.Option(
    None,
    help="Demo card file (authhost demo --export FILE); with --pan, its test keys for the PIN.",
)
PinKeyingOpt = typer.Option("zpk", help="zpk (zone PIN key) or dukpt (KSN in field 53).")


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def card_from_options(
    pan: str, expiry: str, service_code: str, cvv2: str, icvv: str, pin: str | None
) -> SimCard:
    if not (pan.isdigit() and 12 <= len(pan) <= 19):
        raise ValueError("--pan must be 12 to 19 digits")
    if not (expiry.isdigit() and len(expiry) == 4):
        raise ValueError("--expiry is YYMM")
    track2 = build_track2(pan, expiry, service_code, icvv)
    return SimCard(pan, expiry, service_code, cvv2, track2, pin, "unknown", "", "978", 0)


def send(
    kind: Kind = typer.Argument(..., help="What to send."),
    amount: float = typer.Option(
        10.0,
        help="Amount in major units of the request's currency (--currency, else the card's): "
        "10.50 euros = 1050 minor, 1500 yen = 1500, 1.250 dinars = 1250.",
    ),
    entry: Entry = typer.Option(Entry.CHIP, help="How the card is read."),
    pin: str | None = typer.Option(None, help="PIN to encrypt into field 52 (card's if 'card')."),
    advice: bool = typer.Option(False, help="reversal: send 0420 (advice) instead of 0400."),
    final_amount: float | None = typer.Option(
        None,
        help="completion: the amount completed (default: the pre-authorised --amount); "
        "incremental: complete the extended pre-authorisation with this amount; "
        "reversal: a partial reversal, the amount that stays charged (field 95).",
    ),
    new_pin: str | None = typer.Option(None, help="pin-change: the new PIN."),
    partial: bool = typer.Option(
        False, help="The terminal can take a partial approval (field 48 SE 61): 10 when short."
    ),
    increment: float | None = typer.Option(
        None, help="incremental: what the second 0100 adds to the pre-authorisation (5.00)."
    ),
    parts: int = typer.Option(
        1, help="completion: send the final amount as this many 0220s (a split shipment)."
    ),
    authentication: str | None = typer.Option(
        None,
        help="--entry ecommerce: how the cardholder was authenticated (field 48 SE 42): "
        "authenticated, attempted, exempt or none.",
    ),
    wallet: bool = typer.Option(
        False,
        help="--entry ecommerce: paid in-app with the card's wallet token (the demo file's), "
        "which the network de-tokenised: field 48 SE 33, no CVV2.",
    ),
    cavv: str = typer.Option(
        "genuine",
        help="--authentication authenticated/attempted: the 3-D Secure value sent with the "
        "claim (field 48 SE 43): genuine (the issuer ACS's, from the demo file's CAVV key), "
        "forged (made without the issuer's key) or none.",
    ),
    avs: str | None = typer.Option(
        None,
        help="--entry ecommerce: ask the issuer to verify a billing address (field 48 SE 82, "
        "field 120): 'card' (the demo card's own) or 'POSTCODE,STREET'.",
    ),
    stored_credential: str | None = typer.Option(
        None,
        help="--entry ecommerce: a card the merchant keeps on file (field 48 SE 22 SF 05): "
        "C101..C104 the cardholder pays with it, M101..M208 the merchant charges it alone "
        "(M103 a subscription), without CVV2.",
    ),
    network: Network | None = typer.Option(
        None,
        help="--entry ecommerce: the layout of the CVV2, --authentication, --cavv and --avs: "
        "field 48 SE 92, 42, 43, 82 and field 120 by default; mastercard the same, sent as "
        "Mastercard's network does (field 48 led by the transaction category code, DE 15 "
        "settlement date, DE 63 network data: the answer echoes them), any --entry; visa "
        "(VisaNet Base I: "
        "field 126.10, 60.8, 126.9 and 123; the answer's field 44 at Visa's positions). "
        "visa with a card-present --entry and --cvv2: the CVV2 in 126.10 beside track 2, "
        "answered P (not processed).",
    ),
    cards: Path | None = CardsOpt,
    card: str = typer.Option("1", help="Card in the demo file: number or last 4 PAN digits."),
    pan: str | None = typer.Option(None, help="PAN (instead of a demo card file)."),
    expiry: str | None = typer.Option(None, help="With --pan: expiry YYMM (2912)."),
    service_code: str | None = typer.Option(None, help="With --pan: service code (201)."),
    cvv2: str | None = typer.Option(
        None,
        help="With --pan: the card's CVV2 (default 000). With --cards: sent instead of the "
        "card's own (a wrong one is declined N7). 'none': the merchant has none to send "
        "(--network visa: 126.10 says 'not on the card', answered S in 44.10). With "
        "--network visa and a card-present --entry: sent in 126.10 beside track 2 (P).",
    ),
    icvv: str | None = typer.Option(None, help="With --pan: verification value in track 2 (000)."),
    zpk: str | None = typer.Option(None, help="Clear test ZPK, hex (without a card file)."),
    bdk: str | None = typer.Option(None, help="Clear test BDK, hex (without a card file)."),
    pin_keying: str = PinKeyingOpt,
    currency: str | None = typer.Option(None, help="ISO 4217 numeric (card's by default)."),
    billing_amount: float | None = typer.Option(
        None, help="A card used abroad: the amount converted into the card's currency (field 6)."
    ),
    billing_currency: str | None = typer.Option(
        None, help="With --billing-amount: the card's currency (field 51; the card's by default)."
    ),
    mcc: str = typer.Option("5411", help="Merchant category code."),
    country: str = typer.Option("276", help="Acquirer country, ISO 3166 numeric."),
    terminal_id: str = typer.Option("SIMT0001", help="Terminal id (8)."),
    merchant_id: str = typer.Option("SIMMERCHANT0001", help="Merchant id (15)."),
    acquirer_id: str = typer.Option("123456", help="Acquirer institution id."),
    host: str = HostOpt,
    port: int = PortOpt,
    dialect: str = DialectOpt,
    framing: str = FramingOpt,
    tpdu: bool = TpduOpt,
    timeout: float = TimeoutOpt,
    tls_ca: str = TlsCaOpt,
    tls_cert: str = TlsCertOpt,
    tls_key: str = TlsKeyOpt,
    mak: str | None = typer.Option(
        None,
        help="Clear test MAC key (hex, 32 digits) of a require_mac listener: every request "
        "carries its MAC in field 64 (128 with a secondary bitmap).",
    ),
    repeat: bool = typer.Option(
        False,
        help="Send the last request again as its repeat (MTI xxx1: 0101, 0401...), same "
        "STAN, RRN and time, as a switch does when an answer is lost: the host answers it "
        "as before and moves no money twice.",
    ),
) -> None:
    """Send one request and print request and answer field by field (PAN masked).

    Kinds: purchase, cash, balance, refund, credit (a transfer to the card: Visa's original
    credit, 0200 with processing code 26), deposit (cash paid in at an ATM, code 21, with
    --pin), funding (the card pays into a transfer: Visa's AFT, code 10), reversal (a
    purchase, then its reversal),
    completion (a pre-authorisation, then its 0220 completion; with --parts, several
    numbered 0220s, as a split shipment sends them), incremental (a
    pre-authorisation, then an 0100 extending it by --increment; with --final-amount, the
    0220 completing both), verification (amount 0, field 25 = 51), pin-unblock (processing
    code 91 at an ATM: unlocks a locked PIN with the right one), pin-change (processing code
    92: --pin the current PIN, --new-pin the new one), advice, echo, sign-on, sign-off,
    key-change (0800/161: a new zone PIN key under the demo file's zone master key; kept in
    the file when the host takes it).
    The card comes from a demo card file or from --pan and friends.
    """
    terminal = Terminal(terminal_id=terminal_id, merchant_id=merchant_id,
                        acquirer_id=acquirer_id, mcc=mcc, country=country,
                        pin_keying=pin_keying)  # fmt: skip
    try:
        link = Link(host, port, dialect, framing, tpdu, timeout, tls_ca, tls_cert, tls_key,
                    mak=_hex_key(mak, "--mak") or b"")  # fmt: skip
        dialect_spec = link.make_dialect()
        link.make_framing()
        if pin_keying not in ("zpk", "dukpt"):
            raise ValueError("--pin-keying is zpk or dukpt")
        requests = _requests(kind, amount, entry, pin, advice, cards, card, pan, expiry,
                             service_code, cvv2, icvv, zpk, bdk, currency, terminal,
                             final_amount, billing_amount, billing_currency,
                             increment, partial, new_pin, parts,
                             authentication, stored_credential, cavv, wallet,
                             avs, network)  # fmt: skip
        for fields in requests:  # an option the message cannot carry is a bad option
            encode_request(fields, dialect_spec)
    except EncodeError as error:
        raise fail(f"an option does not fit its field: {error}") from None
    except (ValueError, DemoFileError) as error:
        raise fail(str(error)) from None
    checker = None
    if cards is not None and kind not in NETWORK_CODES:
        demo = load_demo_file(cards)
        chosen = pick_card(demo, card)
        checker = ChipChecker(chosen.pan, chosen.chip_cvn, demo.imk_ac, demo.imk_smi)
    try:
        answers = trio.run(_exchange_all, link, requests, checker, repeat)
    except ClientError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None
    answers = answers[: len(requests)]  # a --repeat's copy changes nothing the first did
    if kind is Kind.KEY_CHANGE and cards is not None and answers[-1].get("39") == "00":
        zmk = load_demo_file(cards).zmk
        assert zmk is not None  # checked when the request was built
        block = parse_key_exchange(str(requests[-1]["48"]))
        remember_zone_pin_key(cards, tdes_ecb_decrypt(zmk, block.encrypted_key))
        out.print(f"the new zone PIN key is kept in {cards} (PIN blocks use it)", highlight=False)
    if kind is Kind.PIN_CHANGE and cards is not None and answers[-1].get("39") == "00":
        remember_pin(cards, pick_card(load_demo_file(cards), card).pan, str(new_pin))
        out.print(f"the new PIN is kept in {cards} (--pin card uses it)", highlight=False)


def new_zone_pin_key() -> bytes:
    """A fresh double-length TDES zone PIN key (odd parity), as a switch makes one."""
    return generate_material(KeyAlgorithm.TDES, 16)


def _requests(
    kind: Kind, amount: float, entry: Entry, pin: str | None, advice: bool,
    cards: Path | None, card: str, pan: str | None, expiry: str | None,
    service_code: str | None, cvv2: str | None,
    icvv: str | None, zpk: str | None, bdk: str | None, currency: str | None, terminal: Terminal,
    final_amount: float | None = None, billing_amount: float | None = None,
    billing_currency: str | None = None, increment: float | None = None, partial: bool = False,
    new_pin: str | None = None, parts: int = 1, authentication: str | None = None,
    stored_credential: str | None = None, cavv: str = "genuine", wallet: bool = False,
    avs: str | None = None, network: Network | None = None,
) -> list[Fields]:  # fmt: skip
    """The request(s) to send, in order. ``network`` None: field 48's layout, none of
    Mastercard's own fields; MASTERCARD adds them (TCC, DE 15, DE 63)."""
    builder = RequestBuilder(terminal)
    banknet = network is Network.MASTERCARD
    network = network or Network.MASTERCARD  # field 48's layout either way
    if cvv2 is not None and cvv2.lower() == "none":
        cvv2 = NO_CVV2
    # --network visa with a card read at the till: the --cvv2 given is sent beside track 2
    present_cvv2 = network is Network.VISA and entry is not Entry.ECOMMERCE and bool(cvv2)
    if kind in (Kind.ECHO, Kind.SIGN_ON, Kind.SIGN_OFF):
        return [builder.network(kind)]
    if kind is Kind.KEY_CHANGE:
        demo = load_demo_file(cards) if cards is not None else None
        if demo is None or demo.zmk is None:
            raise ValueError("key-change needs a demo card file with a zone master key (--cards)")
        return [builder.key_change(demo.zmk, new_zone_pin_key())]
    if pan is None:  # the file's card has its own; before, these were ignored without a word
        given = [name for name, value in (("--expiry", expiry), ("--service-code", service_code),
                                          ("--icvv", icvv)) if value is not None]  # fmt: skip
        if given:
            raise ValueError(
                f"{', '.join(given)} {'goes' if len(given) == 1 else 'go'} with --pan (a card "
                "the file does not list); a card of the file is sent with its own values"
            )
    if pan is not None:
        chosen = card_from_options(
            pan,
            expiry or "2912",
            service_code or "201",
            "000" if cvv2 is None else cvv2,
            icvv or "000",
            pin,
        )
        # a card the file does not list (a replacement, a renewal: its values from the bureau
        # file) under the file's test keys; before, --cards was ignored here and PIN entry
        # said it needed the demo card file it had been given
        keys = load_demo_file(cards) if cards is not None else None
        builder.zpk = _hex_key(zpk, "--zpk") or (keys.zpk if keys else None)
        builder.bdk = _hex_key(bdk, "--bdk") or (keys.bdk if keys else None)
    elif cards is not None:
        demo = load_demo_file(cards)
        chosen = pick_card(demo, card)
        if cvv2 is not None:  # the merchant's customer typed another (to see N7)
            chosen = replace(chosen, cvv2=cvv2)
        builder.zpk, builder.bdk, builder.imk_ac = demo.zpk, demo.bdk, demo.imk_ac
        builder.cavv_key = demo.cavv
        builder.counters = ChipCounters(Path(f"{cards}.atc"))  # the cards' ATCs, kept
    else:
        raise ValueError("give a demo card file (--cards FILE) or a card (--pan ...)")
    if pin == "card":
        pin = chosen.pin
    for value, option in ((currency, "--currency"), (terminal.country, "--country")):
        if value is not None and not (value.isascii() and value.isdigit() and len(value) == 3):
            raise ValueError(f"{option} is 3 digits (ISO numeric code)")
    paid_in = currency or chosen.currency  # the request's currency: its decimals
    minor = minor_units(amount, "--amount", paid_in)
    billing = None
    if billing_amount is not None:
        billing_currency = billing_currency or chosen.currency
        if kind not in (Kind.PURCHASE, Kind.CASH, Kind.REFUND, Kind.ADVICE):
            raise ValueError("--billing-amount applies to purchase, cash, refund and advice")
        if billing_amount <= 0 or not (billing_currency.isdigit() and len(billing_currency) == 3):
            raise ValueError("--billing-amount must be above 0, --billing-currency 3 digits")
        billing = (
            minor_units(billing_amount, "--billing-amount", billing_currency),
            billing_currency,
        )
    if increment is not None and kind is not Kind.INCREMENTAL:
        raise ValueError("--increment applies to incremental")
    if partial and kind is not Kind.PURCHASE:
        raise ValueError("--partial applies to purchase")
    if parts != 1 and (kind is not Kind.COMPLETION or not 1 <= parts <= 99):
        raise ValueError("--parts applies to completion, from 1 to 99")
    if final_amount is not None and kind not in (Kind.REVERSAL, Kind.COMPLETION, Kind.INCREMENTAL):
        raise ValueError("--final-amount applies to reversal, completion and incremental")
    if kind is Kind.REVERSAL:
        original = builder.financial(Kind.PURCHASE, chosen, minor, entry=entry, pin=pin,
                                     currency=currency, network=network,
                                     present_cvv2=present_cvv2, banknet=banknet)  # fmt: skip
        stays = None  # a partial reversal: field 95 carries what stays charged
        if final_amount is not None:
            stays = minor_units(final_amount, "--final-amount", paid_in)
            if stays >= minor:
                raise ValueError("--final-amount of a reversal is below --amount (what stays)")
        return [original, builder.reversal(original, advice=advice, stays_minor=stays)]
    if kind in (Kind.COMPLETION, Kind.INCREMENTAL):
        final = (
            minor if final_amount is None else minor_units(final_amount, "--final-amount", paid_in)
        )
        original = builder.financial(Kind.PURCHASE, chosen, minor, entry=entry, pin=pin,
                                     currency=currency, network=network,
                                     present_cvv2=present_cvv2, banknet=banknet)  # fmt: skip
        if kind is Kind.COMPLETION:
            return [original, *builder.split_completions(original, final, parts)]
        if increment is not None and increment <= 0:
            raise ValueError("--increment must be above 0")
        more = builder.incremental(
            original, chosen, minor_units(increment or 5.0, "--increment", paid_in)
        )
        done = [builder.completion(original, final)] if final_amount is not None else []
        return [original, more, *done]
    if (new_pin is not None) != (kind is Kind.PIN_CHANGE):
        raise ValueError("pin-change needs --new-pin, and --new-pin applies to pin-change only")
    if kind is Kind.PIN_CHANGE:
        if pin is None or new_pin is None or not new_pin.isdigit() or not 4 <= len(new_pin) <= 12:
            raise ValueError("pin-change needs --pin (the current one) and --new-pin (4-12 digits)")
        return [builder.pin_change(chosen, pin, new_pin)]
    if kind is Kind.PIN_UNBLOCK and pin is None:
        raise ValueError("pin-unblock needs --pin (the card's own: --pin card)")
    if kind in (Kind.BALANCE, Kind.PIN_UNBLOCK):
        minor = 0
    return [builder.financial(kind, chosen, minor, entry=entry, pin=pin, currency=currency,
                              billing=billing, partial_approval=partial,
                              authentication=authentication,
                              stored_credential=stored_credential, cavv=cavv,
                              wallet=wallet, avs=_avs(avs, chosen),
                              network=network, present_cvv2=present_cvv2,
                              banknet=banknet)]  # fmt: skip


def _hex_key(text: str | None, option: str) -> bytes | None:
    if not text:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{option} is a clear test key in hex") from None


NO_CVV2 = ""  # --cvv2 none: the merchant has no CVV2 to send (simulator.builder)
MAX_MINOR = 10**12 - 1  # field 4 (and 6) hold 12 digits of minor units


def minor_units(amount: float, option: str, currency: str | None = None) -> int:
    """An amount in major units of ``currency`` (its ISO 4217 exponent: 1500 yen are 1500
    minor units, 12.50 euros 1250, 1.250 dinars 1250; two decimals for none or a code not
    known) as the minor units a message carries; ValueError for one it cannot carry
    (negative, not a number, finer than the currency's smallest unit, more than 12 digits)."""
    if not 0 <= amount < math.inf:  # also refuses NaN
        raise ValueError(f"{option} is an amount of 0 or more, like 12.50")
    exponent = exponent_of(currency)
    scaled = amount * 10**exponent
    minor = round(scaled)
    if abs(scaled - minor) > 0.001:  # 10.50 yen: there is no half yen to send
        places = f"{exponent} decimals" if exponent else "no decimals"
        raise ValueError(f"{option} {amount}: currency {currency} has {places}")
    if minor > MAX_MINOR:
        raise ValueError(f"{option} has more than 12 digits of minor units")
    return minor


def _avs(text: str | None, card: SimCard) -> AvsData | None:
    """The billing address to verify: the demo card's ('card') or 'POSTCODE,STREET'."""
    if text is None:
        return None
    if text == "card":
        if card.billing_address is None:
            raise ValueError("--avs card: the demo file has no billing address for this card")
        return card.billing_address
    postcode, comma, street = text.partition(",")
    if not comma:
        raise ValueError("--avs is 'card' or 'POSTCODE,STREET'")
    return AvsData(postcode.strip(), street.strip())


async def _exchange_all(
    link: Link, requests: list[Fields], checker: ChipChecker | None = None, repeat: bool = False
) -> list[Fields]:
    answers: list[Fields] = []
    async with await IsoClient.connect(link) as client:
        sent: list[Fields] = []
        for fields in requests + ([{}] if repeat else []):
            if not fields:  # --repeat: the last one again, as sent, under its repeat MTI
                fields = {**sent[-1], "t": repeat_mti(str(sent[-1]["t"]))}
            fields = _with_approval_code(fields, answers)
            sent.append(fields)
            out.print(message_table(f"request {fields['t']}", fields, client.dialect))
            answer = await client.exchange(fields)
            out.print(message_table(f"answer {answer.get('t', '?')}", answer, client.dialect))
            out.print(f"[bold]{outcome(answer)}[/bold]", highlight=False)
            if client.answer_mac_ok is not None:  # --mak: checked as the switch would
                said = "verifies" if client.answer_mac_ok else "MISSING OR WRONG"
                out.print(f"the answer's MAC: {said}", highlight=False)
            if checker is not None:  # what the chip makes of the answer, as a card would
                for line in checker.verdicts(fields.get("55"), answer.get("55")):
                    out.print(line, highlight=False)
            answers.append(answer)
    return answers


def repeat_mti(mti: str) -> str:
    """The MTI a switch resends a request under when its answer did not come (0100 -> 0101);
    a network message (0800) is sent again as it was."""
    return mti if mti.startswith("08") else mti[:3] + "1"


def _with_approval_code(fields: Fields, answers: list[Fields]) -> Fields:
    """A completion (0220 naming its pre-authorisation in field 90) carries the approval code
    the pre-authorisation was answered (field 38), as the networks' completion advices do:
    the clearing file presents the purchase under it, and finds it posted by the 0220."""
    if fields.get("t") != "0220" or "90" not in fields or "38" in fields or not answers:
        return fields
    code = answers[0].get("38")
    return {**fields, "38": code} if code else fields


def register(app: typer.Typer) -> None:
    app.command("send")(send)
