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
row as a retransmission (``duplicate``): nothing is posted twice. A full Visa or Mastercard
ARN (``FULL_ARN`` digits, its last a Luhn check digit over the others) is also written on
the 0220's journal entry once it is posted (``JournalEntry.arn``), since a chargeback names
it whole; the RRN keeps only its last 12. A shorter reference is kept as the RRN alone.

The 0220s are decided ``BATCH`` at a time, as requests a switch sent together are: one store
write for the batch (``AuthService.decide_many``); each still succeeds or fails alone.

A suspected duplicate presentment (``_duplicate``) is posted as presented all the same (the
network settles it; an issuer cannot refuse it), but flagged in its row of the report
(``suspected_duplicate``, naming the earlier presentment) and counted; the import's caller
opens the chargeback's dispute on it (``CardService.post_clearing``). The rule: a purchase
with the same card, the same approval code (the same authorisation, or the same code
when none is found), the same amount and currency, the same merchant and the same day
(UTC) as a purchase presentment posted before it under another ARN (in an earlier file or
on an earlier line of this one), when what was presented under that code, this one
included, comes to more than the authorisation's amount (0 when none was found). So a
split shipment's parts (other amounts or days, or within the authorised amount), the
next instalment (another day) and a file imported again (the same ARN: a retransmission)
are not flagged.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from authhost.admin.completion_links import INCREMENT
from authhost.auth.decision import Decision
from authhost.cards.luhn import is_luhn_valid
from authhost.cards.model import Card
from authhost.iso.codes import APPROVED_CODES
from authhost.iso.messages import AuthRequest, MessageClass
from authhost.models.context import ALREADY_APPROVED, COMPLETION_REASON, PRESENTMENT
from authhost.security.masking import mask_pan, mask_pans_in_text
from authhost.store.interface import CardStore, JournalQuery, StoreError
from authhost.store.records import FULL_ARN, JournalEntry

MATCH_DAYS = 30  # how far back a presentment's authorisation is looked for (and AHEAD on)
BATCH = 64  # 0220s decided together (one group commit)
RENEWALS = 4  # cards renewed under one PAN looked through for a presentment's authorisation
_EARLIEST, _LATEST = 946_684_800.0, 4_102_444_800.0  # 2000-01-01, 2100-01-01 UTC
# how far ahead of the host's clock a presentment may be dated (the acquirers' clocks, their
# time zones' dates): beyond, it is a typo, and posting it would date the charge to come
AHEAD = 86_400.0
COLUMNS = ("pan", "approval_code", "amount_minor", "currency", "presented_at", "arn")
OPTIONAL = (
    "merchant_id", "terminal_id", "type", "billing_amount_minor", "billing_currency",
    # the merchant as the network's clearing record names it (Visa's TCR0, Mastercard's
    # DE 26 and 43): a forced row's and a refund's only merchant data (``_merchant_of``)
    "mcc", "merchant_name", "merchant_country",
)  # fmt: skip
NAME_LENGTH = 40  # field 43: the merchant's name and location
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
    mcc: str = ""  # field 18
    merchant_name: str = ""  # field 43, its name and location
    merchant_country: str = ""  # field 19, ISO 3166 numeric


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
    if len(arn) == FULL_ARN and not is_luhn_valid(arn):  # a typo: a chargeback would bounce
        raise bad("arn of 23 digits fails its check digit (Luhn over the first 22)")
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
    mcc = (row.get("mcc") or "").strip()
    if mcc and not (_digits(mcc) and len(mcc) == 4):
        raise bad("mcc must be 4 digits")
    country = (row.get("merchant_country") or "").strip()
    if country and not (_digits(country) and len(country) == 3):
        raise bad("merchant_country must be an ISO 3166 numeric code (3 digits)")
    name = (row.get("merchant_name") or "").rstrip()
    if len(name) > NAME_LENGTH or not (name.isascii() and name.isprintable()):
        raise bad(f"merchant_name must be up to {NAME_LENGTH} printable ASCII characters")
    if mask_pans_in_text(name) != name:  # journalled and shown in clear, where no PAN may be
        raise bad("merchant_name must not hold a card number")
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
        mcc=mcc,
        merchant_name=name,
        merchant_country=country,
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
    *,
    keep: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Match and post every presentment (``decide_many``: the server's
    ``AuthService.decide_many``; None: match only, a dry run), ``batch`` 0220s at a time.
    ``keep`` is awaited before each presentment is matched and each suspect settled: the
    caller renews its lease there (``service.clearing_imports``: one import at a time), and
    what it raises stops the import.
    Returns the counts and one line per presentment, in file order (PAN masked); a suspected
    duplicate presentment's line has ``suspected_duplicate`` (and, once posted, the
    ``card_id`` and the ``presentment_journal_id`` of its 0220, for its dispute)."""
    rows: list[dict[str, Any]] = []
    waiting: list[tuple[dict[str, Any], AuthRequest]] = []
    # this file's purchases to post so far, by card and approval code: a later line's
    # duplicate is found among them (their 0220s are not journalled yet, or ever in a dry run)
    this_file: dict[tuple[str, str], list[_Presented]] = {}
    suspects: list[tuple[dict[str, Any], Presentment, _Match]] = []
    # the rows whose full ARN goes on their 0220's journal entry once it is posted
    full_arns: list[tuple[dict[str, Any], Presentment, _Match]] = []

    async def decide() -> None:
        assert decide_many is not None  # only rows to post wait
        outcomes = await decide_many([request for _, request in waiting], time.time())
        for (row, _), outcome in zip(waiting, outcomes, strict=True):
            row.update(_decided(row["outcome"], outcome))
        waiting.clear()

    for p in presentments:
        if keep is not None:
            await keep()
        match = await _matched(p, store, pan_index)
        outcome, original, request = match.outcome, match.original, match.request
        row = {"line": p.line, "pan": mask_pan(p.pan), "arn": p.arn, "outcome": outcome}
        if original is not None:
            row["journal_id"] = original.journal_id
        rows.append(row)
        key = (match.card_id, p.approval_code)
        # (a row posted before: the lines after it came later)
        lines = this_file.get(key, []) if outcome != "duplicate" else []
        # a line an earlier batch posted is in the journal too: counted once, as its line
        posted = {(e.rrn, e.day) for e in lines}
        earlier = [e for e in match.presented if (e.rrn, e.day) not in posted] + lines
        suspect = None
        if outcome in _CHARGED:
            suspect = _duplicate(p, match.merchant_id, match.authorised_minor, earlier)
        if suspect is not None:
            row["suspected_duplicate"] = suspect
            suspects.append((row, p, match))
        if len(p.arn) == FULL_ARN and (request is not None or outcome == "duplicate"):
            full_arns.append((row, p, match))  # (a duplicate's: journalled before migration 40)
        if request is not None:
            if p.kind == "purchase" and p.approval_code:
                this_file.setdefault(key, []).append(_Presented.of(p, match.merchant_id))
            if decide_many is not None:
                waiting.append((row, request))
                if len(waiting) >= batch:
                    await decide()
    if waiting:
        await decide()
    if decide_many is not None:
        for row, p, match in full_arns:
            if keep is not None:
                await keep()
            await _keep_arn(row, p, match, store)
    by_line = {row["line"]: row for row in rows} if suspects else {}
    for row, p, match in suspects:
        if keep is not None:
            await keep()
        await _settle_suspect(row, p, match, by_line, store, posting=decide_many is not None)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    return {
        "presentments": len(rows),
        "outcomes": counts,
        "suspected_duplicates": sum("suspected_duplicate" in row for row in rows),
        "rows": rows,
    }


# what a presentment's row may end as and still have charged the account (a dry run's
# matched and forced rows would: they are what it reports)
_CHARGED = frozenset({"matched", "forced", "duplicate"})


async def _settle_suspect(
    row: dict[str, Any],
    p: Presentment,
    match: _Match,
    by_line: dict[int, dict[str, Any]],
    store: CardStore,
    *,
    posting: bool,
) -> None:
    """Keep a suspected duplicate's flag only if its 0220 charged the account (not refused,
    failed or journalled unposted for its currency) and so did the earlier line of this file
    it repeats; once posted, name its card and the journal entry to dispute."""
    before = row["suspected_duplicate"].get("line")
    earlier = by_line.get(before) if before else None
    if row["outcome"] not in _CHARGED or (earlier and earlier["outcome"] not in _CHARGED):
        del row["suspected_duplicate"]
        return
    own = match.own
    if own is None and posting:  # posted now: its 0220, journalled under the ARN
        own = await _own_entry(store, match.card_id, p)
    if own is not None:
        row["card_id"], row["presentment_journal_id"] = own.card_id, own.journal_id


async def _keep_arn(row: dict[str, Any], p: Presentment, match: _Match, store: CardStore) -> None:
    """Write ``p``'s full ARN on its 0220's journal entry: one posted now, or one an earlier
    import posted without it (an older authhost's); nothing for a row that was not journalled
    approved (refused, failed). A failure is said in the row (``arn_error``), never raised:
    the money is posted already, and importing the file again writes it."""
    own = match.own or await _own_entry(store, match.card_id, p)
    if own is None or own.arn == p.arn:
        return
    try:
        await store.set_journal_arn(own, p.arn)  # False: pruned meanwhile, nothing to name
    except (StoreError, *store.backend_errors) as exc:
        row["arn_error"] = f"the full ARN was not kept ({type(exc).__name__}): import again"


async def _own_entry(store: CardStore, card_id: str, p: Presentment) -> JournalEntry | None:
    """``p``'s own 0220, posted by this import (or a concurrent one): found by its RRN."""
    query = JournalQuery(
        card_id=card_id,
        since=p.presented_at - AHEAD,  # posted now, and p is dated at most AHEAD from now
        approval_code=p.approval_code,
        rrn=_transmission(p)[1],
    )
    async for entry in store.export_journal(query):
        if _posted_before(entry, p):
            return entry
    return None


@dataclass(frozen=True)
class _Presented:
    """A purchase presentment posted (or to be posted) under an approval code: an earlier
    file's (its 0220 in the journal) or an earlier line of this file."""

    amount_minor: int  # what the merchant presented (field 4 of the 0220)
    currency: str
    charged_minor: int  # what it charged the account (its billing amount)
    merchant_id: str
    day: str  # MMDD (UTC) of its presentment time
    arn: str = ""  # a line of this file's; the journal keeps the last 12 digits (the RRN)
    line: int = 0
    journal_id: int = 0
    rrn: str = ""

    @classmethod
    def of(cls, p: Presentment, merchant_id: str) -> _Presented:
        return cls(
            p.amount_minor, p.currency, p.billing_amount_minor or p.amount_minor, merchant_id,
            _transmission(p)[2][:4], arn=p.arn, line=p.line, rrn=p.arn[-12:],
        )  # fmt: skip

    @classmethod
    def journalled(cls, entry: JournalEntry) -> _Presented:
        return cls(
            entry.transaction_amount_minor or entry.amount_minor,
            entry.transaction_currency or entry.currency, entry.hold_amount,
            entry.merchant_id, entry.transmission_time[:4], journal_id=entry.journal_id,
            rrn=entry.rrn,
        )  # fmt: skip

    def same_charge(self, other: _Presented) -> bool:
        return (self.amount_minor, self.currency, self.merchant_id, self.day) == (
            other.amount_minor, other.currency, other.merchant_id, other.day,
        )  # fmt: skip


def _duplicate(
    p: Presentment, merchant_id: str, authorised: int, earlier: Sequence[_Presented]
) -> dict[str, Any] | None:
    """What ``p`` is a suspected duplicate of (the report's ``suspected_duplicate``), or
    None. The rule (the module's docstring): a purchase under an approval code, the same
    amount, currency, merchant and day as a presentment posted before it under the same
    card and code (``earlier``: never ``p``'s own ARN), and all that was presented under the
    code, ``p`` included, above the ``authorised`` amount."""
    if p.kind != "purchase" or not p.approval_code:
        return None
    this = _Presented.of(p, merchant_id)
    same = next((e for e in earlier if e.same_charge(this)), None)
    if same is None:
        return None
    presented = sum(e.charged_minor for e in earlier) + this.charged_minor
    if presented <= authorised:  # a split shipment's parts, within what was authorised
        return None
    of: dict[str, Any] = (
        {"line": same.line, "arn": same.arn}
        if same.line
        else {"journal_id": same.journal_id, "rrn": same.rrn}
    )
    return {"of": of, "presented_minor": presented, "authorised_minor": authorised}


class _Match(NamedTuple):
    """What ``_matched`` found for a presentment."""

    outcome: str  # before posting
    original: JournalEntry | None = None  # the authorisation (or ``own``, when replayed)
    request: AuthRequest | None = None  # the 0220 to decide
    card_id: str = ""
    own: JournalEntry | None = None  # its 0220, posted by an earlier import
    # the purchase presentments posted under its approval code before it (after its
    # authorisation), the amount authorised (0: none found) and the 0220's merchant
    presented: tuple[_Presented, ...] = ()
    authorised_minor: int = 0
    merchant_id: str = ""


async def _matched(p: Presentment, store: CardStore, pan_index: Callable[[str], str]) -> _Match:
    """The outcome before posting, the authorisation found and the 0220 to decide (None: no
    post), with what a duplicate is judged by."""
    card = await store.find_card(pan_index(p.pan))
    if card is None:
        return _Match("unknown_card")
    scan = await _authorisation_of_pan(store, card, p)
    original = scan.authorisation
    after = original.journal_id if original is not None else 0
    found = dict(
        card_id=card.card_id,
        own=scan.own,
        presented=tuple(_Presented.journalled(e) for e in scan.presented if e.journal_id > after),
        authorised_minor=original.amount_minor if original is not None else 0,
    )
    if scan.own is not None:  # imported before: never posted again
        return _Match("duplicate", scan.own, None, merchant_id=scan.own.merchant_id, **found)
    merchant = (original.merchant_id if original else p.merchant_id) or ""
    if p.kind == "refund":
        if original is not None and original.movement == "credit":  # an online refund credited
            return _Match("already_credited", original, None, **found)
        return _Match("refund", None, completion(p, None), **found)
    if original is not None and original.message_class in _POSTED_ALREADY:
        return _Match("already_posted", original, None, **found)
    completed = scan.completed
    if original is not None and (completed is None or completed.journal_id <= after):
        completed = await _completion_of(store, original)
    if completed is not None and completed.journal_id > after:
        # the switch's 0220 completion of this pre-authorisation (or the one its code, which
        # the host answered it, names) posted it already
        return _Match("already_posted", completed, None, **found)
    outcome = "matched" if original is not None else "forced"
    return _Match(outcome, original, completion(p, original), merchant_id=merchant, **found)


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


class _Scan(NamedTuple):
    """A look through a card's journal for a presentment's approval code."""

    authorisation: JournalEntry | None = None  # the newest (before ``own``, if found)
    own: JournalEntry | None = None  # the presentment's own 0220, from an earlier import
    presented: tuple[JournalEntry, ...] = ()  # purchase presentments posted before it
    # the newest 0220 completion a switch sent online under the code, which posted the
    # authorisation's purchase: its presentment is that money, not more of it
    completed: JournalEntry | None = None


async def _authorisation_of_pan(store: CardStore, card: Card, p: Presentment) -> _Scan:
    """``_authorisation`` on the card the PAN means now, then on the cards it renewed under
    the same PAN (a renewal, a damaged card's replacement), newest first: an authorisation
    made with the old plastic is presented after the new one took the PAN over."""
    presented: tuple[JournalEntry, ...] = ()
    for _ in range(RENEWALS + 1):
        scan = await _authorisation(store, card.card_id, p)
        presented = scan.presented + presented  # the older card's are older
        if scan.authorisation or scan.own or not p.approval_code or not card.replaces:
            return scan._replace(presented=presented)
        before = await store.get_card(card.replaces)
        if before is None or before.pan_index != card.pan_index:  # a new PAN: not this one's
            return _Scan(presented=presented)
        card = before
    return _Scan(presented=presented)


async def _authorisation(store: CardStore, card_id: str, p: Presentment) -> _Scan:
    """The newest approved request of the card with the presentment's approval code and of
    its kind (a refund's authorisation for a refund, a purchase's for a purchase); never a
    completion. The presentment's own 0220 too when an earlier import posted it (and what was
    found before it); and the purchase presentments posted under the code."""
    if not p.approval_code:
        return _Scan()
    refund = p.kind == "refund"
    query = JournalQuery(
        card_id=card_id,
        since=p.presented_at - MATCH_DAYS * 86400.0,
        approval_code=p.approval_code,
    )  # up to now: an earlier import's 0220 of this row was journalled when it was posted
    # a record dated by its day alone (midnight) or by an acquirer's clock behind the host's
    # comes before its authorisation: as far as a presentment may be ahead (AHEAD)
    authorised_until = p.presented_at + AHEAD
    found = completed = None
    presented: list[JournalEntry] = []
    async for entry in store.export_journal(query):  # in journal order
        if _posted_before(entry, p):  # this very presentment, posted by an earlier import
            return _Scan(found, entry, tuple(presented), completed)
        if (
            entry.ts < authorised_until
            and entry.approval_code == p.approval_code
            and entry.response_code in APPROVED_CODES
            and (entry.processing_code[:2] == _REFUND) is refund
            and _authorised(entry)
        ):
            found = entry
        elif _presented_purchase(entry, p.approval_code):
            presented.append(entry)
        elif not refund and _completed_online(entry, p.approval_code):
            completed = entry
    return _Scan(found, None, tuple(presented), completed)


async def _completion_of(store: CardStore, original: JournalEntry) -> JournalEntry | None:
    """The newest switch's 0220 completion journalled after ``original`` (a pre-authorisation
    that held) that names its hold (``JournalEntry.completes``): one sent without field 38
    was answered a code of its own, which the presentment under the pre-authorisation's code
    does not find. An incremental authorisation's is its chain's: a completion names the
    chain's first hold, which the store's hold of the increment names (``Hold.parent``; its
    journal entry does not). None for any other authorisation: nothing is read."""
    if original.movement != "hold" or not original.match_key:
        return None
    completes = original.match_key
    if INCREMENT in original.reason_codes.split(";"):
        hold = await store.hold_of(original.account_id, original.match_key)
        if hold is None or not hold.parent:
            return await _completion_of_increment(store, original)
        completes = hold.parent
    query = JournalQuery(
        card_id=original.card_id,
        since=original.ts,
        after_id=original.journal_id,
        completes=completes,
    )
    completed = None
    async for entry in store.export_journal(query):  # in journal order: the newest last
        if _online_completion(entry):
            completed = entry
    return completed


async def _completion_of_increment(
    store: CardStore, increment: JournalEntry
) -> JournalEntry | None:
    """The completion of the chain an incremental authorisation added to, when the store
    keeps no hold of the increment to name it (gone): a completion names the chain's first
    hold, placed before the increment on the same card at the terminal the increment names
    it from (``auth.keys``: its own). The completion after the increment naming such a hold,
    when all of those name one hold; None when they name two (two rooms on one card at one
    hotel: which one the increment extended is not known, and taking the other's completion
    would leave the increment's chain never charged)."""
    terminal = increment.terminal_id.strip()
    query = JournalQuery(card_id=increment.card_id, since=increment.ts - MATCH_DAYS * 86400.0)
    heads: set[str] = set()  # the first holds' match keys
    completed: JournalEntry | None = None
    named: set[str] = set()
    async for entry in store.export_journal(query):  # in journal order
        if entry.journal_id < increment.journal_id:
            if (
                entry.movement == "hold"
                and entry.response_code in APPROVED_CODES
                and entry.terminal_id.strip() == terminal
                and INCREMENT not in entry.reason_codes.split(";")
            ):
                heads.add(entry.match_key)
        elif entry.completes in heads and _online_completion(entry):
            completed = entry
            named.add(entry.completes)
    return completed if len(named) == 1 else None


def _completed_online(entry: JournalEntry, approval_code: str) -> bool:
    """``entry`` is a switch's 0220 completion that posted a purchase under the code (field
    38 carries the pre-authorisation's, as the networks' completion advices do), not a
    clearing row's: the clearing presents that purchase again, which posting would charge
    twice."""
    return entry.approval_code == approval_code and _online_completion(entry)


def _online_completion(entry: JournalEntry) -> bool:
    """``entry`` is a switch's approved 0220 completion that posted a purchase (not a
    clearing row's)."""
    return (
        entry.mti[:3] == "022"
        and entry.response_code in APPROVED_CODES
        and entry.movement == "post"
        and COMPLETION_REASON in entry.reason_codes
        and PRESENTMENT not in entry.reason_codes
        and entry.processing_code[:2] != _REFUND
    )


def _presented_purchase(entry: JournalEntry, approval_code: str) -> bool:
    """``entry`` is a purchase presentment a clearing import posted under the code."""
    return (
        entry.mti[:3] == "022"
        and PRESENTMENT in entry.reason_codes
        and entry.approval_code == approval_code
        and entry.response_code in APPROVED_CODES
        and entry.movement == "post"
        and entry.processing_code[:2] != _REFUND
    )


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
    its MTI, STAN, transmission time and acquirer; its terminal, merchant, MCC, name and
    location, country and channel: ``_merchant_of``) when one was found."""
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
        **_merchant_of(original, p),
    )


# the channel an authorisation was journalled with, as the field 25 that gives it back
# (``_derived``): field 22 alone says contactless, the MCC an ATM, anything else is a POS
_CONDITION_OF_CHANNEL = {"ecommerce": "59", "moto": "08"}


def _merchant_of(original: JournalEntry | None, p: Presentment) -> dict[str, Any]:
    """The presentment's merchant data (MCC, field 43, the acquirer's country, the entry mode
    and the channel): the authorisation's, from its journal entry the import already read,
    so a presentment is journalled, stated and fed to the ledger as the purchase it settles;
    where the authorisation has none, or none was found (a forced row, a refund), the file's
    own ``mcc``, ``merchant_name`` and ``merchant_country`` columns (empty when the file
    has none). An advice runs no controls, so the MCC never blocks the post."""
    if original is None:
        return {
            "mcc": p.mcc or None,
            "merchant_name_location": p.merchant_name or None,
            "country": p.merchant_country or None,
        }
    return {
        "mcc": original.mcc or p.mcc or None,
        "merchant_name_location": original.merchant_name or p.merchant_name or None,
        "country": original.country or p.merchant_country or None,
        "pos_entry_mode": original.pos_entry_mode or None,
        "pos_condition_code": _CONDITION_OF_CHANNEL.get(original.channel),
    }
