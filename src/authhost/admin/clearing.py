"""Clearing: the acquirers' presentments, days after the authorisations, posted against the
holds those left.

An authorisation (0100) only holds money; what the merchant finally charges arrives later in
the network's clearing file (a first presentment), often for another amount (a tip, a hotel
bill). Each presentment is matched to its authorisation by card and approval code (field 38)
within ``MATCH_DAYS``, and posted as the completion advice (0220) a switch would send, naming
the authorisation in field 90: through the same pipeline, journal and store, on SQLite and
Redis alike. So the authorised hold is released and the presented amount posted, once.

- no authorisation found: the presentment is posted all the same (a forced post; the network
  guarantees it) as an 0220 naming nothing;
- a refund (``type`` = ``refund``: the merchant's credit voucher) credits the account, as a
  0220 with processing code 20; refunds are not authorised, so nothing is matched;
- the authorisation was a single-message 0200: it posted already, nothing more is done;
- the card is unknown: nothing is posted, the row is reported.

Each presentment's 0220 takes its STAN and RRN from the acquirer reference number (ARN) and
its transmission time from the presentment time, so importing a file again replays every
row as a retransmission (``duplicate``): nothing is posted twice.

The 0220s are decided ``BATCH`` at a time, as requests a switch sent together are: one store
write for the batch (``AuthService.decide_many``); each still succeeds or fails alone.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authhost.auth.decision import Decision
from authhost.cards.model import Card
from authhost.iso.codes import APPROVED_CODES
from authhost.iso.messages import AuthRequest, MessageClass
from authhost.models.context import ALREADY_APPROVED, COMPLETION_REASON, PRESENTMENT
from authhost.security.masking import mask_pan
from authhost.store.interface import CardStore, JournalQuery
from authhost.store.records import JournalEntry

MATCH_DAYS = 30  # how far back a presentment's authorisation is looked for (and AHEAD on)
BATCH = 64  # 0220s decided together (one group commit)
RENEWALS = 4  # cards renewed under one PAN looked through for a presentment's authorisation
_EARLIEST, _LATEST = 946_684_800.0, 4_102_444_800.0  # 2000-01-01, 2100-01-01 UTC
# how far ahead of the host's clock a presentment may be dated (the acquirers' clocks, their
# time zones' dates): beyond, it is a typo, and posting it would date the charge to come
AHEAD = 86_400.0
COLUMNS = ("pan", "approval_code", "amount_minor", "currency", "presented_at", "arn")
OPTIONAL = ("merchant_id", "terminal_id", "type", "billing_amount_minor", "billing_currency")
KINDS = ("purchase", "refund")  # the optional ``type`` column; purchase when absent
# a dual-message hold: the host's 0100, or the network's stand-in 0120 (under its code)
_AUTHORISATIONS = frozenset({"authorisation", "authorisation_advice"})
# posted when approved: a single-message 0200, or the network's stand-in 0220 (not a
# completion: those post for an authorisation, and a split shipment's parts share its code)
_POSTED_ALREADY = frozenset({"financial", "financial_advice"})
_REFUND = "20"

# AuthService.decide_many: requests decided together, a Decision or the exception for each
DecideMany = Callable[[Sequence[AuthRequest], float], Awaitable[list[Decision | Exception]]]


class ClearingFileError(ValueError):
    """A clearing file that cannot be read; the message names the line and the reason."""


@dataclass(frozen=True)
class Presentment:
    line: int  # in the file, for the report
    pan: str = field(repr=False)  # never in a repr or str (the report masks it)
    approval_code: str
    amount_minor: int
    currency: str
    presented_at: float  # epoch seconds
    arn: str  # acquirer reference number: one per presentment
    merchant_id: str = ""
    terminal_id: str = ""
    kind: str = "purchase"  # or "refund": a credit to the cardholder
    # what the network converted the amount to, in the cardholder's billing currency (fields
    # 6 and 51 of the 0220): what the account is charged when it differs from the merchant's
    billing_amount_minor: int | None = None
    billing_currency: str = ""


def read_presentments(path: str | Path) -> list[Presentment]:
    """The rows of a clearing CSV file (header: ``COLUMNS``, optionally ``OPTIONAL``); the
    first bad row refuses the whole file, naming its line and why, before anything is
    posted."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return parse_presentments(handle, str(path))
    except OSError as exc:
        raise ClearingFileError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ClearingFileError(f"{path}: not UTF-8 text") from None


def parse_presentments(
    lines: Iterable[str], where: str = "the file", now: float | None = None
) -> list[Presentment]:
    """``read_presentments`` for CSV text already read (the admin API's body). A header as a
    spreadsheet saves it is read too: a byte order mark, names in any case, blanks around
    them (CRLF line ends are the csv module's own). ``now``: the host's clock, no
    presentment may be dated more than ``AHEAD`` after it."""
    reader = csv.DictReader(lines)
    latest = (time.time() if now is None else now) + AHEAD
    try:
        names = [name.strip().lower() for name in reader.fieldnames or []]
        if names:
            names[0] = names[0].lstrip("\ufeff").strip()
            reader.fieldnames = names
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise ClearingFileError(f"{where}: missing column(s) {', '.join(missing)}")
        found: list[Presentment] = []
        lines_of: dict[str, int] = {}  # ARN: its line
        for row in reader:
            p = _presentment(row, reader.line_num)
            if p.arn in lines_of:  # its 0220 would be taken for the first's retransmission
                raise ClearingFileError(
                    f"line {p.line}: arn repeats the one of line {lines_of[p.arn]} (one ARN "
                    "per presentment)"
                )
            if p.presented_at > latest:
                raise ClearingFileError(f"line {p.line}: presented_at must not be in the future")
            lines_of[p.arn] = p.line
            found.append(p)
        return found
    except csv.Error as exc:  # the reason, never the row's text
        raise ClearingFileError(f"line {reader.line_num}: not CSV ({type(exc).__name__})") from None


def _digits(text: str) -> bool:
    """ASCII digits only: ``isdigit`` alone takes '²' and '٣', which ``int`` then refuses."""
    return text.isascii() and text.isdigit()


_AMOUNTS = "1 to 12 digits"  # ISO 8583 field 4 and field 6: n 12


def _minor_units(text: str) -> int | None:
    """A positive whole number of minor units below 10**12 (12 digits, leading zeros aside),
    None otherwise. Its length is checked before ``int`` reads it: ``int`` refuses more than
    4,300 digits with a ValueError of its own, which would escape as a traceback instead of
    the line's reason."""
    significant = text.lstrip("0")
    if not (_digits(text) and significant and len(significant) <= 12):
        return None
    return int(significant)


def _presentment(row: dict[str, str], line: int) -> Presentment:
    def bad(reason: str) -> ClearingFileError:
        return ClearingFileError(f"line {line}: {reason}")

    pan = (row.get("pan") or "").strip()
    if not (_digits(pan) and 12 <= len(pan) <= 19):
        raise bad("pan must be 12 to 19 digits")
    amount = _minor_units((row.get("amount_minor") or "").strip())
    if amount is None:
        raise bad(f"amount_minor must be a positive whole number of minor units ({_AMOUNTS})")
    currency = (row.get("currency") or "").strip()
    if not (_digits(currency) and len(currency) == 3):
        raise bad("currency must be an ISO 4217 numeric code (3 digits)")
    arn = (row.get("arn") or "").strip()
    if not (_digits(arn) and 12 <= len(arn) <= 23):
        raise bad("arn must be 12 to 23 digits")
    code = (row.get("approval_code") or "").strip()
    if len(code) > 6 or (code and not (code.isascii() and code.isalnum())):
        raise bad("approval_code must be up to 6 letters or digits")
    kind = (row.get("type") or "").strip().lower() or "purchase"
    if kind not in KINDS:
        raise bad(f"type must be one of {', '.join(KINDS)}")
    billing = (row.get("billing_amount_minor") or "").strip()
    billing_currency = (row.get("billing_currency") or "").strip()
    if bool(billing) != bool(billing_currency):
        raise bad("billing_amount_minor and billing_currency go together")
    billed = _minor_units(billing) if billing else None
    if billing and billed is None:
        raise bad(
            f"billing_amount_minor must be a positive whole number of minor units ({_AMOUNTS})"
        )
    if billing_currency and not (_digits(billing_currency) and len(billing_currency) == 3):
        raise bad("billing_currency must be an ISO 4217 numeric code (3 digits)")
    return Presentment(
        line=line,
        pan=pan,
        approval_code=code.upper(),
        amount_minor=amount,
        currency=currency,
        presented_at=_when(row.get("presented_at") or "", bad),
        arn=arn,
        merchant_id=(row.get("merchant_id") or "").strip()[:15],
        terminal_id=(row.get("terminal_id") or "").strip()[:8],
        kind=kind,
        billing_amount_minor=billed,
        billing_currency=billing_currency,
    )


def _when(text: str, bad: Callable[[str], ClearingFileError]) -> float:
    """An ISO 8601 time (UTC unless it says otherwise) or epoch seconds, in 2000-2099."""
    text = text.strip()
    if not text.isascii():  # float() and fromisoformat() read other scripts' digits too
        raise bad("presented_at must be an ISO 8601 time or epoch seconds")
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise bad("presented_at must be an ISO 8601 time or epoch seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        seconds = moment.timestamp()
    if not _EARLIEST <= seconds < _LATEST:  # NaN and infinities too
        raise bad("presented_at must be a time in 2000-2099")
    return seconds


async def post_presentments(
    presentments: Iterable[Presentment],
    store: CardStore,
    pan_index: Callable[[str], str],
    decide_many: DecideMany | None,
    batch: int = BATCH,
) -> dict[str, Any]:
    """Match and post every presentment (``decide_many``: the server's
    ``AuthService.decide_many``; None: match only, a dry run), ``batch`` 0220s at a time.
    Returns the counts and one line per presentment, in file order (PAN masked)."""
    rows: list[dict[str, Any]] = []
    waiting: list[tuple[dict[str, Any], AuthRequest]] = []

    async def decide() -> None:
        assert decide_many is not None  # only rows to post wait
        outcomes = await decide_many([request for _, request in waiting], time.time())
        for (row, _), outcome in zip(waiting, outcomes, strict=True):
            row.update(_decided(row["outcome"], outcome))
        waiting.clear()

    for p in presentments:
        outcome, original, request = await _matched(p, store, pan_index)
        row = {"line": p.line, "pan": mask_pan(p.pan), "arn": p.arn, "outcome": outcome}
        if original is not None:
            row["journal_id"] = original.journal_id
        rows.append(row)
        if request is not None and decide_many is not None:
            waiting.append((row, request))
            if len(waiting) >= batch:
                await decide()
    if waiting:
        await decide()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    return {"presentments": len(rows), "outcomes": counts, "rows": rows}


async def _matched(
    p: Presentment, store: CardStore, pan_index: Callable[[str], str]
) -> tuple[str, JournalEntry | None, AuthRequest | None]:
    """(outcome before posting, the authorisation found, the 0220 to decide or None)."""
    card = await store.find_card(pan_index(p.pan))
    if card is None:
        return "unknown_card", None, None
    original = await _authorisation_of_pan(store, card, p)
    if original is not None and _posted_before(original, p):
        return "duplicate", original, None  # imported before: never posted again
    if p.kind == "refund":
        if original is not None and original.movement == "credit":  # an online refund credited
            return "already_credited", original, None
        return "refund", None, completion(p, None)
    if original is not None and original.message_class in _POSTED_ALREADY:
        return "already_posted", original, None
    return ("matched" if original is not None else "forced"), original, completion(p, original)


def _decided(outcome: str, decision: Decision | Exception) -> dict[str, Any]:
    if isinstance(decision, Exception):  # this row alone failed (the store, a bug): say so
        return {"outcome": "error", "error": type(decision).__name__}
    if "duplicate.replayed" in decision.reason_codes:
        outcome = "duplicate"
    elif decision.response_code not in APPROVED_CODES:
        outcome = "refused"
    elif "advice.currency_mismatch" in decision.reason_codes:
        outcome = "currency_mismatch"  # journalled for the back office, not posted
    return {
        "outcome": outcome,
        "response_code": str(decision.response_code),
        "reason_codes": decision.reason_codes,
    }


async def _authorisation_of_pan(
    store: CardStore, card: Card, p: Presentment
) -> JournalEntry | None:
    """``_authorisation`` on the card the PAN means now, then on the cards it renewed under
    the same PAN (a renewal, a damaged card's replacement), newest first: an authorisation
    made with the old plastic is presented after the new one took the PAN over."""
    for _ in range(RENEWALS + 1):
        found = await _authorisation(store, card.card_id, p)
        if found is not None or not p.approval_code or not card.replaces:
            return found
        before = await store.get_card(card.replaces)
        if before is None or before.pan_index != card.pan_index:  # a new PAN: not this one's
            return None
        card = before
    return None


async def _authorisation(store: CardStore, card_id: str, p: Presentment) -> JournalEntry | None:
    """The newest approved request of the card with the presentment's approval code and of
    its kind (a refund's authorisation for a refund, a purchase's for a purchase); never a
    completion. The presentment's own 0220 instead when an earlier import posted it."""
    if not p.approval_code:
        return None
    refund = p.kind == "refund"
    query = JournalQuery(
        card_id=card_id,
        since=p.presented_at - MATCH_DAYS * 86400.0,
        approval_code=p.approval_code,
    )  # up to now: an earlier import's 0220 of this row was journalled when it was posted
    # a record dated by its day alone (midnight) or by an acquirer's clock behind the host's
    # comes before its authorisation: as far as a presentment may be ahead (AHEAD)
    authorised_until = p.presented_at + AHEAD
    found = None
    async for entry in store.export_journal(query):
        if _posted_before(entry, p):
            return entry  # this very presentment, posted by an earlier import
        if (
            entry.ts < authorised_until
            and entry.approval_code == p.approval_code
            and entry.response_code in APPROVED_CODES
            and (entry.processing_code[:2] == _REFUND) is refund
            and _authorised(entry)
        ):
            found = entry
    return found


def _posted_before(entry: JournalEntry, p: Presentment) -> bool:
    """``entry`` is ``p``'s own 0220, approved by an earlier import: the same STAN, RRN and
    transmission time (``completion``'s). The store's duplicate check also compares the
    terminal, which is the authorisation's when one is matched: a row matched then and not
    now (its authorisation pruned since, or renewed away) would be a new transmission."""
    return (
        entry.mti[:3] == "022"
        and (entry.stan, entry.rrn, entry.transmission_time) == _transmission(p)
        and entry.response_code in APPROVED_CODES
    )


def _transmission(p: Presentment) -> tuple[str, str, str]:
    """The STAN, RRN and transmission time of ``p``'s 0220: from its ARN and date, so the same
    row imported again is the same transmission."""
    return p.arn[-6:], p.arn[-12:], time.strftime("%m%d%H%M%S", time.gmtime(p.presented_at))


def _authorised(entry: JournalEntry) -> bool:
    """The entry authorised what a presentment charges: a request, or the network's stand-in
    advice that held or posted it (or repeated a request the host had approved); not a
    completion, not an earlier presentment's post (forced under the same code: the next parcel
    or instalment is charged too), not an advice that moved nothing."""
    if entry.message_class in ("authorisation", "financial"):
        return True
    if entry.message_class not in _AUTHORISATIONS | _POSTED_ALREADY:
        return False
    if COMPLETION_REASON in entry.reason_codes:
        return False
    if PRESENTMENT in entry.reason_codes:  # an earlier presentment's post (a forced one)
        return False
    return bool(entry.movement) or ALREADY_APPROVED in entry.reason_codes


def completion(p: Presentment, original: JournalEntry | None) -> AuthRequest:
    """The 0220 a switch would send for the presentment: naming the authorisation (field 90:
    its MTI, STAN, transmission time and acquirer; its terminal) when one was found."""
    moment = time.gmtime(p.presented_at)
    stan, rrn, transmission_time = _transmission(p)
    terminal = original.terminal_id if original else p.terminal_id or "CLEARING"
    acquirer = original.acquirer_id if original else ""
    original_data = None
    if original is not None:
        original_data = (
            f"{original.mti}{original.stan.zfill(6)}{original.transmission_time.zfill(10)}"
            f"{original.acquirer_id.zfill(11)}{'0' * 11}"
        )
    return AuthRequest(
        mti="0220",
        message_class=MessageClass.FINANCIAL_ADVICE,
        pan=p.pan,
        processing_code="200000" if p.kind == "refund" else "000000",
        amount_minor=p.amount_minor,
        currency=p.currency,
        billing_amount_minor=p.billing_amount_minor,
        billing_currency=p.billing_currency or None,
        transmission_time=transmission_time,
        stan=stan,
        local_time=time.strftime("%H%M%S", moment),
        local_date=time.strftime("%m%d", moment),
        acquirer_id=acquirer or None,
        rrn=rrn,
        terminal_id=terminal,
        merchant_id=(original.merchant_id if original else p.merchant_id) or None,
        original_data=original_data,
        reported_response_code="00",
        reported_approval_code=p.approval_code or None,
        presentment=True,
    )
