"""ISO 8583 requests as a terminal or an acquirer builds them: field dicts for
``authhost.iso.codec.encode_request``.

A ``Terminal`` knows where it stands (terminal, merchant, acquirer, MCC, country) and how it
protects PINs: under the zone PIN key, or DUKPT with a fresh key serial number (field 53) per
PIN. ``RequestBuilder`` numbers the messages (STAN, RRN) and writes each message type.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from enum import StrEnum

from authhost.iso.messages import AvsData
from authhost.iso.subfields import (
    AUTHENTICATION_VALUE_SUBELEMENT,
    AVS_AND_AUTHORISATION,
    AVS_REQUEST_SUBELEMENT,
    CVV2_SUBELEMENT,
    ECOMMERCE_INDICATORS_SUBELEMENT,
    KEY_EXCHANGE_SUBELEMENT,
    MULTI_PURPOSE_MERCHANT_SUBELEMENT,
    MULTIPLE_COMPLETION_SUBELEMENT,
    PAN_MAPPING_SUBELEMENT,
    POS_EXTENDED_CONDITIONS_SUBELEMENT,
    build_additional_data,
    build_avs_data,
    build_pan_mapping,
    build_visa_pos_information,
    build_visa_private,
    category_code,
    replacement_amounts_field,
)
from authhost.security import emv
from authhost.security.blockcipher import tdes_ecb_encrypt
from authhost.security.cavv import make_cavv
from authhost.security.dukpt import ksn_with_counter, terminal_encrypt_pin_tdes
from authhost.security.pinblock import encrypt_pin_block
from simulator.chip_counters import ChipCounters
from simulator.demo_cards import SimCard

Fields = dict[str, str | bytes]

# field 48 SE 42 as a merchant's acquirer sends it: channel encryption (2), no cardholder
# certificate (1), then the UCAF collection indicator that says how the cardholder was
# authenticated (authhost.iso.subfields.AUTHENTICATION_BY_UCAF)
SECURITY_LEVELS = {"authenticated": "212", "attempted": "211", "exempt": "216", "none": "210"}
# what the merchant puts in field 48 SE 43 with an authenticated or attempted claim: the CAVV
# the issuer's access control server made ("genuine"), one made without the issuer's key
# ("forged": a fraudster's claim), or none at all
CAVV_KINDS = ("genuine", "forged", "none")
# Visa's field 60.8 (ECI) for each claim; Visa carries no exemption there
VISA_ECIS = {"authenticated": "05", "attempted": "06", "none": "07"}


class Kind(StrEnum):
    """The requests ``authhost-sim send`` knows."""

    PURCHASE = "purchase"
    CASH = "cash"
    BALANCE = "balance"
    REFUND = "refund"
    CREDIT = "credit"  # a transfer to the card: Visa's original credit (0200, code 26)
    DEPOSIT = "deposit"  # cash paid in at an ATM (0200, code 21), with the PIN
    FUNDING = "funding"  # the card pays into a transfer: Visa's AFT (0100, code 10)
    REVERSAL = "reversal"
    COMPLETION = "completion"  # a pre-authorisation 0100, then its 0220 completion
    INCREMENTAL = "incremental"  # a pre-authorisation 0100, then an 0100 extending it
    VERIFICATION = "verification"  # account verification: 0100, amount 0, field 25 = 51
    PIN_UNBLOCK = "pin-unblock"  # 0100 at an ATM, processing code 91, with the right PIN
    PIN_CHANGE = "pin-change"  # 0100 at an ATM, processing code 92: the PIN, the new in 125
    ADVICE = "advice"
    ECHO = "echo"  # network management 0800/301
    SIGN_ON = "sign-on"  # 0800/001
    SIGN_OFF = "sign-off"  # 0800/002
    KEY_CHANGE = "key-change"  # 0800/161: a new zone PIN key under the zone master key


class Network(StrEnum):
    """Where an e-commerce request carries its CVV2, authentication claim, CAVV and the
    address to verify: field 48's subelements and field 120 (Mastercard's layout), or Visa's
    fields 126.10, 60.8, 126.9 and 123 (docs/iso.md, "Visa's fields")."""

    MASTERCARD = "mastercard"
    VISA = "visa"


NETWORKS = tuple(Network)
# Mastercard's transaction category codes (DE 48's first character) the simulator's requests
# fall in: retail, phone/mail/e-commerce order, ATM cash, payment (a transfer to the card)
TCC_RETAIL, TCC_ORDER, TCC_ATM, TCC_PAYMENT = "R", "T", "Z", "P"
FINANCIAL_NETWORK_CODE = "MCC"  # DE 63 subfield 1: Mastercard credit
BANKNET_FIELDS = ("15", "63")  # settlement date, network data: a Mastercard request's own


class Entry(StrEnum):
    """How the card was read; sets field 22 (and 25) and which card data travels."""

    CHIP = "chip"
    CONTACTLESS = "contactless"
    STRIPE = "stripe"
    ECOMMERCE = "ecommerce"


CHIP_ENTRIES = ("chip", "contactless")  # card reads that carry field 55
ENTRY_MODES = {Entry.CHIP: "051", Entry.CONTACTLESS: "071", Entry.STRIPE: "901",
               Entry.ECOMMERCE: "812"}  # fmt: skip
PROCESSING = {Kind.PURCHASE: "000000", Kind.CASH: "010000", Kind.BALANCE: "310000",
              Kind.REFUND: "200000", Kind.CREDIT: "260000", Kind.DEPOSIT: "210000",
              Kind.FUNDING: "100000", Kind.ADVICE: "000000",
              Kind.VERIFICATION: "000000", Kind.PIN_UNBLOCK: "910000",
              Kind.PIN_CHANGE: "920000"}  # fmt: skip
NETWORK_CODES = {
    Kind.ECHO: "301",
    Kind.SIGN_ON: "001",
    Kind.SIGN_OFF: "002",
    Kind.KEY_CHANGE: "161",
}
DUKPT_KSN_BASE = "FFFF9876543210E00000"  # TDES KSN: key set id, device id, counter 0
_MAX_DUKPT_ONES = 10  # a TDES DUKPT counter never has more than 10 one bits
_LAST_DUKPT_COUNTER = 0x1FF800  # the 21-bit counter's last value with 10 one bits


@dataclass
class Terminal:
    terminal_id: str = "SIMT0001"
    merchant_id: str = "SIMMERCHANT0001"
    acquirer_id: str = "123456"
    mcc: str = "5411"
    country: str = "276"
    name_location: str = "AUTHHOST SIMULATOR     BERLIN       DE"
    pin_keying: str = "zpk"  # or "dukpt"
    ksn_base: str = DUKPT_KSN_BASE
    dukpt_counter: int = 0

    def next_ksn(self) -> str:
        counter = self.dukpt_counter + 1
        while counter.bit_count() > _MAX_DUKPT_ONES:
            counter += 1
        if counter > _LAST_DUKPT_COUNTER:  # a PED stops here: its future keys are used up
            raise ValueError("the terminal's DUKPT key serial numbers are used up")
        self.dukpt_counter = counter
        return ksn_with_counter(self.ksn_base, counter)


@dataclass
class RequestBuilder:
    """Numbers and writes requests for one terminal. Not thread-safe (one per task)."""

    terminal: Terminal = field(default_factory=Terminal)
    zpk: bytes | None = field(default=None, repr=False)
    bdk: bytes | None = field(default=None, repr=False)
    imk_ac: bytes | None = field(default=None, repr=False)  # chip cards make ARQCs with it
    cavv_key: bytes | None = field(default=None, repr=False)  # the issuer ACS's CAVV key pair
    counters: ChipCounters = field(default_factory=ChipCounters)  # the cards' ATCs
    stan_start: int | None = None  # None: from the clock, so a new session never repeats one
    rrn_prefix: str = "9"

    def __post_init__(self) -> None:
        # A terminal keeps its trace number across sessions; a simulator restarted within the
        # same second must not look like a retransmission (94), so it starts from the clock.
        start = int(time.time() * 1000) % 10**11 if self.stan_start is None else self.stan_start
        self._counter = itertools.count(start)

    def _numbers(self) -> tuple[str, str]:
        n = next(self._counter)
        stan = f"{n % 1_000_000:06d}"
        rrn = (self.rrn_prefix + f"{n:011d}")[-12:]
        return stan, rrn

    def _header(self, mti: str, now: float | None = None) -> Fields:
        now = time.time() if now is None else now
        utc, local = time.gmtime(now), time.localtime(now)
        stan, rrn = self._numbers()
        return {
            "t": mti,
            "7": time.strftime("%m%d%H%M%S", utc),
            "11": stan,
            "12": time.strftime("%H%M%S", local),
            "13": time.strftime("%m%d", local),
            "32": self.terminal.acquirer_id,
            "37": rrn,
            "41": self.terminal.terminal_id,
            "42": self.terminal.merchant_id,
        }

    def pin_fields(self, card: SimCard, pin: str) -> Fields:
        """Field 52 (and 53 for DUKPT): the PIN encrypted as this terminal does it."""
        if self.terminal.pin_keying == "dukpt":
            if self.bdk is None:
                raise ValueError("DUKPT PIN entry needs the test BDK (demo card file)")
            ksn = self.terminal.next_ksn()
            return {"52": terminal_encrypt_pin_tdes(self.bdk, ksn, pin, card.pan), "53": ksn}
        if self.zpk is None:
            raise ValueError("PIN entry needs the test zone PIN key (demo card file)")
        return {"52": encrypt_pin_block(self.zpk, pin, card.pan)}

    def financial(
        self,
        kind: Kind,
        card: SimCard,
        amount_minor: int = 0,
        *,
        entry: Entry = Entry.CHIP,
        pin: str | None = None,
        currency: str | None = None,
        mti: str | None = None,
        now: float | None = None,
        billing: tuple[int, str] | None = None,
        partial_approval: bool = False,
        authentication: str | None = None,
        stored_credential: str | None = None,
        cavv: str = "genuine",
        wallet: bool = False,
        avs: AvsData | None = None,
        network: str = Network.MASTERCARD,
        present_cvv2: bool = False,
        banknet: bool = False,
    ) -> Fields:
        """A purchase, cash withdrawal, balance inquiry, refund, advice or account
        verification (amount 0 whatever ``amount_minor`` says). ``billing`` (amount in minor
        units, currency) is the network's conversion into the card's currency: fields 6, 51.
        ``partial_approval``: the terminal can take a partial approval (field 48 SE 61).
        ``authentication``: e-commerce only, how the cardholder was authenticated (one of
        SECURITY_LEVELS: field 48 SE 42). ``stored_credential``: e-commerce only, a card the
        merchant keeps on file (field 48 SE 22 SF 05, C101..C104 or M101..M208); a
        merchant-initiated one (M...) carries no CVV2, which no merchant may keep.
        ``cavv``: with an authenticated or attempted claim, the 3-D Secure value sent with it
        (one of CAVV_KINDS: field 48 SE 43). ``wallet``: e-commerce only, paid in-app with the
        card's wallet token, which the network de-tokenised: the card's PAN in field 2, the token
        in field 48 SE 33, no CVV2 (a wallet has none). ``avs``: e-commerce only, the billing
        address the cardholder typed at the checkout, for the issuer to verify (field 48 SE 82
        "52", field 120). ``network``: "visa" sends the CVV2, the claim, the CAVV and the
        address in Visa's fields instead (126.10, 60.8, 126.9, 123); the rest stays in field
        48, where authhost reads it. ``present_cvv2``: network visa, a card read at the till
        (not e-commerce), the card's CVV2 sent beside its track 2 in 126.10, as some terminals
        key it in too: the host answers P (not processed) in 44.10, the stripe or chip being
        the check. ``banknet``: as Mastercard's network sends it to the issuer: field 48 led
        by the transaction category code, the settlement date (15) and the network data (63:
        financial network code and a Banknet reference number), which the answer echoes."""
        if network not in NETWORKS:
            raise ValueError(f"network is one of {', '.join(NETWORKS)}")
        visa = network == Network.VISA
        if visa and authentication is not None and authentication not in VISA_ECIS:
            raise ValueError(
                f"Visa's e-commerce indicator (field 60.8) has no {authentication!r}: "
                f"authentication is one of {', '.join(VISA_ECIS)}"
            )
        card_present = entry is not Entry.ECOMMERCE and kind is not Kind.CREDIT
        if present_cvv2 and not (visa and card_present and card.cvv2):
            raise ValueError(
                "a CVV2 sent with a card read at the till travels in Visa's 126.10: "
                "give --network visa, a card-present --entry and a --cvv2"
            )
        if visa and entry is not Entry.ECOMMERCE and not present_cvv2:  # nothing to send
            raise ValueError(
                "network visa lays out an e-commerce purchase: give --entry ecommerce "
                "(or, with a card-present entry, the --cvv2 the cardholder gave as well)"
            )
        if avs is not None and entry is not Entry.ECOMMERCE:
            raise ValueError("address verification is for e-commerce")
        if cavv not in CAVV_KINDS:
            raise ValueError(f"cavv is one of {', '.join(CAVV_KINDS)}")
        if wallet and (entry is not Entry.ECOMMERCE or card.token is None):
            raise ValueError("a wallet payment is e-commerce, with a card that has a token")
        if stored_credential is not None and (
            entry is not Entry.ECOMMERCE
            or len(stored_credential) != 4
            or stored_credential[0] not in "CM"
            or not stored_credential[1:].isdigit()
        ):
            raise ValueError("stored credential is for e-commerce: C101..C104 or M101..M208")
        if authentication is not None and (
            entry is not Entry.ECOMMERCE or authentication not in SECURITY_LEVELS
        ):
            raise ValueError(
                f"authentication is for e-commerce, one of {', '.join(SECURITY_LEVELS)}"
            )
        if kind not in PROCESSING:
            raise ValueError(f"{kind} is not a financial request")
        cash_like = kind in (Kind.CASH, Kind.BALANCE, Kind.PIN_UNBLOCK, Kind.PIN_CHANGE,
                             Kind.DEPOSIT)  # at an ATM  # fmt: skip
        default_mti = {Kind.CASH: "0200", Kind.REFUND: "0200", Kind.CREDIT: "0200",
                       Kind.DEPOSIT: "0200", Kind.ADVICE: "0120"}  # fmt: skip
        fields = self._header(mti or default_mti.get(kind, "0100"), now)
        fields.update(
            {
                "3": PROCESSING[kind],
                "4": f"{amount_minor:012d}",
                "18": "6011" if cash_like else self.terminal.mcc,
                "19": self.terminal.country,
                "22": ENTRY_MODES[entry],
                "25": "59" if entry is Entry.ECOMMERCE else "00",
                "43": self.terminal.name_location[:40].ljust(40),
                "49": currency or card.currency or "978",
            }
        )
        if billing is not None:
            fields["6"] = f"{billing[0]:012d}"
            fields["51"] = billing[1]
        if kind is Kind.VERIFICATION:
            fields["4"] = f"{0:012d}"
            fields["25"] = "51"  # request for account number verification
        additional: dict[str, str] = {}
        if partial_approval:
            additional[POS_EXTENDED_CONDITIONS_SUBELEMENT] = "10000"
        if kind is Kind.FUNDING:  # a money transfer service charges the card
            fields["18"] = "4829"
        if kind is Kind.CREDIT:  # sent by the network for the originator: no card data
            fields.update({"2": card.pan, "14": card.expiry, "18": "4829", "22": "010"})
        elif entry is Entry.ECOMMERCE:
            fields["2"] = card.pan
            fields["14"] = card.expiry
            cvv2 = value = None
            if wallet and card.token is not None:
                additional[PAN_MAPPING_SUBELEMENT] = build_pan_mapping(card.token)
            elif stored_credential is None or stored_credential[0] == "C":
                cvv2 = card.cvv2
            if stored_credential is not None:
                additional[MULTI_PURPOSE_MERCHANT_SUBELEMENT] = "0504" + stored_credential
            if authentication is not None:
                value = self.authentication_value(card, authentication, cavv)
            if visa:
                if authentication is not None:
                    fields["60"] = build_visa_pos_information(VISA_ECIS[authentication])
                if avs is not None:
                    fields["123"] = build_avs_data(avs)
                if cvv2 is not None or value is not None:
                    fields["126"] = build_visa_private(cavv=value, cvv2=cvv2)
            else:
                if cvv2:  # "": the merchant has none to send (field 48 has no way to say so)
                    additional[CVV2_SUBELEMENT] = cvv2
                if avs is not None:
                    additional[AVS_REQUEST_SUBELEMENT] = AVS_AND_AUTHORISATION
                    fields["120"] = build_avs_data(avs)
                if authentication is not None:
                    additional[ECOMMERCE_INDICATORS_SUBELEMENT] = SECURITY_LEVELS[authentication]
                if value is not None:
                    additional[AUTHENTICATION_VALUE_SUBELEMENT] = value
        else:
            fields["35"] = card.track2
            if present_cvv2:  # beside the track 2: answered P, never checked
                fields["126"] = build_visa_private(cvv2=card.cvv2)
            if entry in CHIP_ENTRIES and self.imk_ac is not None and card.chip_cvn:
                fields["55"] = self.chip_data(card, fields, now)
        tcc = None
        if banknet:
            tcc = _category(kind, entry, cash_like)
            fields.update(banknet_fields(now))
        if additional or tcc:
            fields["48"] = build_additional_data(additional, tcc)
        if pin is not None:
            fields.update(self.pin_fields(card, pin))
        return dict(sorted(fields.items(), key=_field_order))

    def authentication_value(self, card: SimCard, authentication: str, kind: str) -> str | None:
        """The CAVV (base64) an access control server gives the merchant after 3-D Secure:
        with the issuer's key ("genuine", when the demo file has it), with a key of the
        fraudster's own ("forged"), or none; only for an authenticated or attempted claim."""
        if authentication not in ("authenticated", "attempted") or kind == "none":
            return None
        key = self.cavv_key if kind == "genuine" else os.urandom(16)
        if key is None:
            return None
        atn = f"{int.from_bytes(os.urandom(8), 'big') % 10**16:016d}"  # one per authentication
        value = make_cavv(key, card.pan, atn=atn, attempt=authentication == "attempted")
        return value.to_text()

    def pin_change(
        self, card: SimCard, pin: str, new_pin: str, *, now: float | None = None
    ) -> Fields:
        """A PIN change at an ATM: the current PIN in field 52, the new one in field 125 (hex)
        under the same key (the same DUKPT key when the terminal uses DUKPT)."""
        fields = self.financial(Kind.PIN_CHANGE, card, 0, pin=pin, now=now)
        if "53" in fields:
            assert self.bdk is not None
            block = terminal_encrypt_pin_tdes(self.bdk, str(fields["53"]), new_pin, card.pan)
        else:
            assert self.zpk is not None
            block = encrypt_pin_block(self.zpk, new_pin, card.pan)
        fields["125"] = block.hex().upper()
        return dict(sorted(fields.items(), key=_field_order))

    def chip_data(self, card: SimCard, fields: Fields, now: float | None = None) -> bytes:
        """Field 55 of a chip read: what the card's cryptogram covers, and its ARQC."""
        assert self.imk_ac is not None
        now = time.time() if now is None else now
        atc = self.counters.next(card.pan)
        bcd = bytes.fromhex
        tags = {
            "9F02": bcd(str(fields["4"]).zfill(12)),
            "9F03": bytes(6),
            "9F1A": bcd(str(fields["19"]).zfill(4)),
            "95": bytes(5),
            "5F2A": bcd(str(fields["49"]).zfill(4)),
            "9A": bcd(time.strftime("%y%m%d", time.gmtime(now))),
            "9C": bcd(str(fields["3"])[:2]),
            "9F37": os.urandom(4),
            "82": bcd("3900"),
            "9F36": atc.to_bytes(2, "big"),
            "9F10": _issuer_application_data(card.chip_cvn),
            "5F34": b"\x00",
            "9F27": b"\x80",  # an ARQC
        }
        tags["9F26"] = emv.make_arqc(self.imk_ac, card.pan, "00", tags, card.chip_cvn)
        return emv.encode_tlv(tags)

    def reversal(
        self,
        original: Fields,
        *,
        advice: bool = False,
        stays_minor: int | None = None,
        now: float | None = None,
    ) -> Fields:
        """A reversal (0400, or 0420 advice) of ``original``: same card and amount, field 90
        pointing at the original's MTI, STAN, transmission time and acquirer. With
        ``stays_minor`` a partial one: field 95 carries the amount that stays charged."""
        fields = self._header("0420" if advice else "0400", now)
        for number in ("2", "3", "4", "14", "18", "19", "22", "25", "35", "43", "49"):
            if number in original:
                fields[number] = original[number]
        _carry_banknet(original, fields)
        fields["90"] = original_data(original)
        if stays_minor is not None:
            fields["95"] = replacement_amounts_field(stays_minor)
        return dict(sorted(fields.items(), key=_field_order))

    def completion(
        self,
        original: Fields,
        amount_minor: int,
        *,
        sequence: tuple[int, int] | None = None,
        now: float | None = None,
    ) -> Fields:
        """The 0220 completing a pre-authorisation (hotel, car hire, fuel): the final amount,
        field 90 pointing at the original, which the issuer's hold is released by. With
        ``sequence`` (its number, how many) it is one of several (field 48 subelement 62)."""
        fields = self._header("0220", now)
        for number in ("2", "3", "14", "18", "19", "22", "25", "35", "43", "49"):
            if number in original:
                fields[number] = original[number]
        fields["4"] = f"{amount_minor:012d}"
        _carry_banknet(original, fields)
        if sequence is not None:
            number, count = sequence
            fields["48"] = build_additional_data(
                {MULTIPLE_COMPLETION_SUBELEMENT: f"{number:02d}{count:02d}"},
                category_code(str(original.get("48") or "")),
            )
        fields["90"] = original_data(original)
        return dict(sorted(fields.items(), key=_field_order))

    def split_completions(self, original: Fields, amount_minor: int, parts: int) -> list[Fields]:
        """``amount_minor`` completed as ``parts`` numbered 0220s (a split shipment), the last
        taking what the even shares leave over; one part is a plain completion."""
        if parts == 1:
            return [self.completion(original, amount_minor)]
        share = amount_minor // parts
        amounts = [share] * (parts - 1) + [amount_minor - share * (parts - 1)]
        return [
            self.completion(original, amount, sequence=(number, parts))
            for number, amount in enumerate(amounts, start=1)
        ]

    def incremental(
        self, original: Fields, card: SimCard, amount_minor: int, *, now: float | None = None
    ) -> Fields:
        """An incremental authorisation: an 0100 for ``amount_minor`` more on the
        pre-authorisation ``original`` (field 90 names it), sent by the merchant without the
        card (a hotel extending a stay: the card on file, entry mode 10)."""
        fields = self._header("0100", now)
        for number in ("3", "18", "19", "25", "43", "49"):
            if number in original:
                fields[number] = original[number]
        fields.update({"2": card.pan, "4": f"{amount_minor:012d}", "14": card.expiry, "22": "102"})
        _carry_banknet(original, fields)
        fields["90"] = original_data(original)
        return dict(sorted(fields.items(), key=_field_order))

    def key_change(
        self, zmk: bytes, new_zpk: bytes, *, check_value: str | None = None,
        now: float | None = None,
    ) -> Fields:  # fmt: skip
        """An 0800 key change (field 70 = 161): ``new_zpk`` encrypted under the zone master key
        in field 48 subelement 11 (key class PK, index 01, a cycle number, the key, its
        16-digit check value unless ``check_value`` says otherwise), for the terminal's
        acquirer (field 32)."""
        fields = self.network(Kind.KEY_CHANGE, now)
        check = check_value or tdes_ecb_encrypt(new_zpk, bytes(8)).hex().upper()
        cycle = f"{int(fields['11']) % 100:02d}"
        block = "PK01" + cycle + tdes_ecb_encrypt(zmk, new_zpk).hex().upper() + check
        fields["32"] = self.terminal.acquirer_id
        fields["48"] = build_additional_data({KEY_EXCHANGE_SUBELEMENT: block})
        return dict(sorted(fields.items(), key=_field_order))

    def network(self, kind: Kind = Kind.ECHO, now: float | None = None) -> Fields:
        """An 0800 network management request: echo test, sign-on or sign-off."""
        now = time.time() if now is None else now
        stan, _ = self._numbers()
        return {"t": "0800", "7": time.strftime("%m%d%H%M%S", time.gmtime(now)), "11": stan,
                "70": NETWORK_CODES[kind]}  # fmt: skip


def _issuer_application_data(cvn: int) -> bytes:
    """Tag 9F10 as the card's application lays it out: Visa (length, key index, CVN, CVR) or
    M/Chip (key index, CVN, 6-byte CVR, DAC, and for CVN 17 and 21 the 8 bytes of offline
    counters)."""
    if cvn == 16:
        return bytes.fromhex("0110A00003220000" + "0000")
    if cvn in (17, 21):
        return bytes.fromhex(f"01{cvn:02X}A00003220000" + "0000" + "000000000000" + "00FF")
    if cvn == 20:
        return bytes.fromhex("0114A00003220000" + "0000")
    return bytes.fromhex(f"0601{cvn:02X}03A0B800")


def banknet_fields(now: float | None = None) -> dict[str, str]:
    """DE 15 (the settlement date, MMDD: today's, UTC) and DE 63 (the financial network code
    and a new Banknet reference number, 9 characters) as Mastercard's network adds them to a
    request: it finds the answer's transaction by them, so the issuer echoes both."""
    now = time.time() if now is None else now
    reference = os.urandom(5).hex().upper()[:9]
    return {"15": time.strftime("%m%d", time.gmtime(now)), "63": FINANCIAL_NETWORK_CODE + reference}


def _category(kind: Kind, entry: Entry, cash_like: bool) -> str:
    """The transaction category code leading a Mastercard request's field 48."""
    if kind is Kind.CREDIT:
        return TCC_PAYMENT
    if cash_like:
        return TCC_ATM
    return TCC_ORDER if entry is Entry.ECOMMERCE else TCC_RETAIL


def _carry_banknet(original: Fields, fields: Fields) -> None:
    """A reversal, completion or increment of a Mastercard request names it by the network's
    data: its settlement date, DE 63 and transaction category code go with it."""
    for number in BANKNET_FIELDS:
        if number in original:
            fields[number] = original[number]
    tcc = category_code(str(original.get("48") or ""))
    if tcc is not None:
        fields["48"] = tcc


def original_data(original: Fields) -> str:
    """Field 90 naming ``original``: its MTI, STAN, transmission time and acquirer (forwarder
    zeros)."""
    return (
        str(original["t"])
        + str(original["11"])
        + str(original["7"])
        + str(original["32"]).rjust(11, "0")
        + "0" * 11
    )


def _field_order(item: tuple[str, object]) -> int:
    return -1 if item[0] == "t" else int(item[0])
