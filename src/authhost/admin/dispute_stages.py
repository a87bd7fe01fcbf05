"""The network side of a dispute: its stages, their time limits and the networks' reason codes.

Pure rules, no I/O: the service (``admin.service.dispute_cases``) reads the dispute and its
charge, asks these functions for the dispute after a step (or the reason it is refused), and
writes it over the version it read (a compare-and-set, as resolutions are).

A dispute opened by the cardholder (stage ``opened``) goes through the networks' stages:

    stage            next action, by whom            within (days, [admin] of the configuration)
    opened           the issuer files a chargeback   chargeback_days of the charge (120)
    chargeback       the acquirer represents         representment_days of the chargeback (45)
    represented      the issuer pre-arbitrates       pre_arbitration_days of the representment (30)
    pre_arbitration  the acquirer answers it         pre_arbitration_answer_days of it (30)
    pre_arbitration_accepted (in full)               the issuer resolves it, at once
    pre_arbitration_accepted (in part)  the issuer files arbitration for the rest, or resolves
                                                     arbitration_days of the answer (10)
    pre_arbitration_declined the issuer files arbitration  arbitration_days of the answer (10)
    arbitration      the network rules (won or lost) no limit: the ruling resolves it

and is closed at any stage by a resolution (won, lost, withdrawn: ``resolve_dispute``) or by
the acquirer reversing the charge (reversed). The network stages move no money of the
cardholder's: the provisional credit was given when the dispute opened, and the outcome
settles it for the amounts the stages recorded (``cardholder_keeps``).

Each stage names who acts next and by when (``next_action``): the issuer (file the chargeback,
answer a representment, resolve) or the acquirer (represent, answer the pre-arbitration). An
acquirer's time limit passed with no answer means the issuer won: the issuer's next action is
then to resolve it won, due at once.

A step repeated with the values it was recorded with changes nothing and is answered as it
stands (idempotent); out of order, past its time limit, or with other values it is refused
(409, naming the stage, the limit and what to do instead); a reason code or amount that does
not fit is refused as invalid (422).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from authhost.admin.errors import ConflictError, InvalidRequest
from authhost.store.records import FULL_ARN, Dispute

DAY = 86_400
MAX_FEE_MINOR = 10**9  # an arbitration fee's ceiling, in minor units (a typo's guard)
# how far in the future (the acquirer's clock and time zone) a representment may be dated
AHEAD_S = DAY
CARD_ABSENT = frozenset({"ecommerce", "moto"})  # journal channels with no card at the terminal


@dataclass(frozen=True, slots=True)
class DisputeLimits:
    """The networks' time limits, in days ([admin] of the configuration)."""

    chargeback_days: int = 120  # from the charge, for the issuer to charge back
    representment_days: int = 45  # from the chargeback, for the acquirer to represent
    pre_arbitration_days: int = 30  # from the representment, for the issuer to answer it
    pre_arbitration_answer_days: int = 30  # from the pre-arbitration, for the acquirer's answer
    arbitration_days: int = 10  # from the acquirer's decline, for the issuer to file arbitration
    # the network's arbitration fee recorded with a ruling that gives none ([admin]
    # arbitration_fee_minor, 0: none), in its currency (ISO 4217 numeric; Visa's is USD)
    arbitration_fee_minor: int = 0
    arbitration_fee_currency: str = "840"

    def problem(self) -> str:
        """Why these limits cannot be used ("" when they can)."""
        if not 0 <= self.arbitration_fee_minor <= MAX_FEE_MINOR:
            return f"arbitration_fee_minor must be 0 to {MAX_FEE_MINOR}"
        currency = self.arbitration_fee_currency
        if not (len(currency) == 3 and currency.isascii() and currency.isdigit()):
            return "arbitration_fee_currency must be an ISO 4217 numeric code (3 digits)"
        for name in (
            "chargeback_days",
            "representment_days",
            "pre_arbitration_days",
            "pre_arbitration_answer_days",
            "arbitration_days",
        ):
            value = getattr(self, name)
            if not 1 <= value <= 3650:
                return f"{name} must be 1 to 3650 days, not {value}"
        return ""


@dataclass(frozen=True, slots=True)
class ReasonCode:
    network: str
    code: str
    title: str
    # the cardholder reasons (records.DISPUTE_REASONS) it may be filed for; "other" goes with
    # every code that is not fraud's (the cardholder's reason says nothing to check it by)
    reasons: frozenset[str]


def _codes(network: str, rows: tuple[tuple[str, str, str], ...]) -> dict[str, ReasonCode]:
    found = {}
    for code, title, reasons in rows:
        fits = set(reasons.split())
        if "fraud" not in fits:
            fits.add("other")
        found[code] = ReasonCode(network, code, title, frozenset(fits))
    return found


# Visa Claims Resolution and Mastercard's chargeback reason codes, with the cardholder reasons
# each fits (the dispute's ``reason``)
REASON_CODES: dict[str, ReasonCode] = {
    **_codes(
        "visa",
        (
            ("10.1", "EMV liability shift counterfeit fraud", "fraud"),
            ("10.2", "EMV liability shift non-counterfeit fraud", "fraud"),
            ("10.3", "other fraud, card present", "fraud"),
            ("10.4", "other fraud, card absent", "fraud"),
            ("10.5", "Visa fraud monitoring program", "fraud"),
            ("11.1", "card recovery bulletin", ""),
            ("11.2", "declined authorisation", ""),
            ("11.3", "no authorisation", ""),
            ("12.1", "late presentment", ""),
            ("12.2", "incorrect transaction code", "amount"),
            ("12.3", "incorrect currency", "amount"),
            ("12.4", "incorrect account number", ""),
            ("12.5", "incorrect amount", "amount"),
            ("12.6.1", "duplicate processing", "duplicate"),
            ("12.6.2", "paid by other means", "duplicate"),
            ("12.7", "invalid data", ""),
            ("13.1", "merchandise or services not received", "not_received"),
            ("13.2", "cancelled recurring transaction", ""),
            ("13.3", "not as described or defective", "not_as_described"),
            ("13.4", "counterfeit merchandise", "not_as_described"),
            ("13.5", "misrepresentation", "not_as_described"),
            ("13.6", "credit not processed", "amount"),
            ("13.7", "cancelled merchandise or services", ""),
            ("13.8", "original credit transaction not accepted", ""),
            ("13.9", "non-receipt of cash or load value", "not_received"),
        ),
    ),
    **_codes(
        "mastercard",
        (
            ("4808", "authorisation-related", ""),
            ("4831", "transaction amount differs (before 4834 took it in)", "amount"),
            ("4834", "point-of-interaction error: duplicate, amount differs", "duplicate amount"),
            ("4837", "no cardholder authorisation", "fraud"),
            ("4840", "fraudulent processing of transactions", "fraud"),
            ("4841", "cancelled recurring or digital goods", ""),
            ("4849", "questionable merchant activity", "fraud"),
            ("4853", "cardholder dispute", "not_received not_as_described amount"),
            ("4855", "goods or services not provided (before 4853 took it in)", "not_received"),
            ("4859", "addendum, no-show or ATM dispute (before 4853)", "not_received"),
            ("4860", "credit not processed (before 4853 took it in)", "amount"),
            ("4863", "cardholder does not recognise, potential fraud", "fraud"),
            ("4870", "chip liability shift", "fraud"),
            ("4871", "chip/PIN liability shift", "fraud"),
        ),
    ),
}
# the code a chargeback is filed under when none is given: (network, reason) -> code ("other":
# give one); a Visa fraud is 10.4 without the card at the terminal, 10.3 with it. Mastercard's
# defaults are the codes of its dispute resolution since 2017, which took the older ones in
# (not received 4855 and credit not processed 4860 into the cardholder dispute 4853, amount
# differs 4831 into the point-of-interaction error 4834); the older ones are still accepted
# when given, for a network that still takes them
DEFAULT_CODES: dict[tuple[str, str], str] = {
    ("visa", "not_received"): "13.1",
    ("visa", "not_as_described"): "13.3",
    ("visa", "duplicate"): "12.6.1",
    ("visa", "amount"): "12.5",
    ("mastercard", "fraud"): "4837",
    ("mastercard", "not_received"): "4853",
    ("mastercard", "not_as_described"): "4853",
    ("mastercard", "duplicate"): "4834",
    ("mastercard", "amount"): "4834",
}


def network_of(pan_masked: str) -> str:
    """The card's network from its BIN (the masked PAN keeps the first six digits): Visa 4,
    Mastercard 51-55 and 2221-2720; "" for another (its codes are not checked against it)."""
    digits = pan_masked[:6]
    if not (len(digits) == 6 and digits.isascii() and digits.isdigit()):
        return ""
    if digits[0] == "4":
        return "visa"
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return "mastercard"
    return ""


def when(ts: float) -> str:
    """A time in a message: ISO 8601 UTC to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def day_start(day: str) -> float:
    """The start of a UTC day (YYYY-MM-DD), epoch seconds: a representment's date."""
    return float(calendar.timegm(time.strptime(day, "%Y-%m-%d")))


def _utc_day(ts: float) -> float:
    """The start of the UTC day ``ts`` falls in."""
    return ts - ts % DAY


def represent_by(dispute: Dispute, limits: DisputeLimits) -> float:
    """The acquirer's limit to represent: the last second of the UTC day ``representment_days``
    after the chargeback. A representment is dated by its day, so one dated that day is in
    time whatever the hour, and the issuer's "no representment: won" waits for the day's end."""
    return _utc_day(dispute.charged_back_at + limits.representment_days * DAY) + DAY - 1


def same_reference(named: str, charged: str) -> bool:
    """A representments line's ``named`` ARN is the one a chargeback went under: in whole when
    both are full ARNs (23 digits), else by the last 12 characters (the RRN), which is all a
    chargeback filed before the full ARN was kept, or a line giving only those, has."""
    if len(named) == len(charged) == FULL_ARN:
        return named == charged
    return named[-12:] == charged[-12:]


@dataclass(frozen=True, slots=True)
class Charge:
    """What the chargeback takes from the disputed charge's journal entry."""

    charged_at: float  # its time: the chargeback's limit counts from it
    pan_masked: str
    arn: str  # its full ARN (a clearing presentment's, 23 digits), else its RRN (the last 12)
    channel: str = ""

    @property
    def network(self) -> str:
        return network_of(self.pan_masked)


@dataclass(frozen=True, slots=True)
class NextAction:
    """Who acts next on an open dispute, what, by when (None: no limit), and in words."""

    owner: str  # issuer, acquirer or network ("" closed)
    # chargeback, representment, pre_arbitration, pre_arbitration_answer, arbitration,
    # arbitration_ruling, resolve
    action: str
    deadline: float | None
    overdue: bool  # the limit passed: the issuer's action is due at once
    todo: str


CLOSED = NextAction("", "", None, False, "")


def deadline(dispute: Dispute, limits: DisputeLimits) -> float | None:
    """When the stage's time limit ends (None: unknown, a dispute recorded before the charge's
    time was kept whose charge is not in the journal)."""
    if dispute.stage == "chargeback":
        return represent_by(dispute, limits)
    if dispute.stage == "represented":
        return dispute.represented_at + limits.pre_arbitration_days * DAY
    if dispute.stage == "pre_arbitration":
        return dispute.pre_arbitration_at + limits.pre_arbitration_answer_days * DAY
    if dispute.stage == "pre_arbitration_accepted" and not arbitrable(dispute):
        return dispute.pre_arbitration_answered_at  # the amounts are settled: resolve it now
    if dispute.stage in ("pre_arbitration_accepted", "pre_arbitration_declined"):
        return dispute.pre_arbitration_answered_at + limits.arbitration_days * DAY
    if dispute.stage == "arbitration":  # the network rules when it rules
        return None
    return dispute.charged_at + limits.chargeback_days * DAY if dispute.charged_at else None


_WON = "resolve it won (disputes resolve {id} --outcome won)"
IN_PART = "pre_arbitration_accepted_in_part"  # the stage accepted, by an answer in part
# each stage's next action while its limit runs: who, what, in words; and in words what the
# issuer does once it passed (its action then is resolve, overdue)
_WAITS: dict[str, tuple[str, str, str, str]] = {
    "opened": (
        "issuer", "chargeback",
        "file the chargeback by {by} (disputes chargeback {id})",
        "too late to charge back (the limit was {by}): resolve it (disputes resolve {id} "
        "--outcome won|lost|withdrawn)",
    ),
    "chargeback": (
        "acquirer", "representment",
        "the acquirer may represent until {by} (disputes represented {id}); none by then: the "
        "issuer won",
        "no representment by {by}: the issuer won; " + _WON,
    ),
    "represented": (
        "issuer", "pre_arbitration",
        "answer the representment by {by}: pre-arbitration (disputes pre-arbitration {id}), or "
        "accept it (disputes resolve {id} --outcome lost)",
        "too late for pre-arbitration (the limit was {by}): the representment stands; resolve "
        "it lost, or won at the bank's cost (disputes resolve {id})",
    ),
    "pre_arbitration": (
        "acquirer", "pre_arbitration_answer",
        "the acquirer answers the pre-arbitration by {by}: record its answer (disputes "
        "pre-arbitration-answer {id} --answer accepted|accepted_in_part|declined)",
        "no answer to the pre-arbitration by {by}: the issuer won; " + _WON,
    ),
    "pre_arbitration_accepted": (
        "issuer", "resolve",
        "the acquirer accepted the pre-arbitration: " + _WON + "; the cardholder keeps what "
        "it accepted",
        "the acquirer accepted the pre-arbitration: " + _WON + "; the cardholder keeps what "
        "it accepted",
    ),
    IN_PART: (
        "issuer", "arbitration",
        "the acquirer accepted part of the pre-arbitration: file arbitration for the rest by "
        "{by} (disputes arbitration {id}), or accept its answer (disputes resolve {id} "
        "--outcome lost: the cardholder keeps what it accepted)",
        "too late for arbitration of the rest (the limit was {by}): the answer stands; resolve "
        "it (disputes resolve {id} --outcome lost): won or lost, the cardholder keeps what "
        "was accepted",
    ),
    "pre_arbitration_declined": (
        "issuer", "arbitration",
        "the acquirer declined the pre-arbitration: file arbitration by {by} (disputes "
        "arbitration {id}), or accept the decline (disputes resolve {id} --outcome lost)",
        "too late for arbitration (the limit was {by}): the decline stands; resolve it lost, "
        "or won at the bank's cost (disputes resolve {id})",
    ),
}  # fmt: skip
_RULING = (
    "the network rules on the arbitration: record its ruling (disputes arbitration-ruling {id} "
    "--ruling won|lost), which resolves the dispute"
)


def next_action(dispute: Dispute, limits: DisputeLimits, now: float) -> NextAction:
    """What the dispute waits for (``CLOSED`` once it is closed)."""
    if dispute.state != "open":
        return CLOSED
    ident = dispute.dispute_id
    if dispute.resolving:
        again = "reconcile" if dispute.resolving.startswith("reconciling:") else "resolve"
        return NextAction(
            "issuer", "resolve", None, False,
            f"being resolved ({dispute.resolving}): {again} it again to finish",
        )  # fmt: skip
    if dispute.stage == "arbitration":
        return NextAction("network", "arbitration_ruling", None, False, _RULING.format(id=ident))
    owner, action, waiting, passed = _WAITS[IN_PART if arbitrable(dispute) else dispute.stage]
    due = deadline(dispute, limits)
    if due is None:
        return NextAction(
            owner, action, None, False,
            f"file the chargeback (disputes chargeback {ident}); the charge's date is not "
            "known, so its limit is not either",
        )  # fmt: skip
    if now > due:
        return NextAction("issuer", "resolve", due, True, passed.format(by=when(due), id=ident))
    return NextAction(owner, action, due, False, waiting.format(by=when(due), id=ident))


def issuer_due_by(dispute: Dispute, limits: DisputeLimits, now: float, until: float) -> bool:
    """Whether the dispute waits on the issuer with a limit at or before ``until`` (an overdue
    one too), or is left half resolved by a failure (due at once: nothing finishes it but the
    issuer resolving it again): what a back office must act on before then."""
    if dispute.state == "open" and dispute.resolving:
        return True
    action = next_action(dispute, limits, now)
    return action.owner == "issuer" and action.deadline is not None and action.deadline <= until


def due_order(dispute: Dispute, limits: DisputeLimits) -> tuple[float, str]:
    """The order of ``issuer_due_by``'s disputes: half resolved first, then soonest limit."""
    due = 0.0 if dispute.resolving else deadline(dispute, limits) or 0.0
    return due, dispute.dispute_id


# --- the steps ---------------------------------------------------------------------------------


def _not_movable(dispute: Dispute, step: str) -> ConflictError | None:
    """Why no network step may be taken on the dispute now, or None."""
    ident = dispute.dispute_id
    if dispute.state != "open":
        return ConflictError(f"dispute {ident} is {dispute.state} already: no {step} on it")
    if dispute.resolving:
        return ConflictError(
            f"dispute {ident} is being resolved ({dispute.resolving}): finish that first"
        )
    return None


def _out_of_order(dispute: Dispute, step: str, limits: DisputeLimits, now: float) -> ConflictError:
    """A step asked for at the wrong stage, with what the dispute waits for instead."""
    return ConflictError(
        f"dispute {dispute.dispute_id} is at stage {dispute.stage}: {step}; next: "
        f"{next_action(dispute, limits, now).todo}"
    )


def _must_be_at(
    dispute: Dispute, stage: str, step: str, why: str, limits: DisputeLimits, now: float
) -> None:
    """Refuse ``step`` on a dispute closed, being resolved, or not at ``stage`` (``why``)."""
    if (refused := _not_movable(dispute, step)) is not None:
        raise refused
    if dispute.stage != stage:
        raise _out_of_order(dispute, why, limits, now)


def reason_code(dispute: Dispute, asked: str, charge: Charge) -> ReasonCode:
    """The network reason code the chargeback is filed under: ``asked``, or the default for
    the dispute's reason and the card's network; 422 for a code that is unknown, another
    network's, or does not fit the cardholder's reason."""
    network = charge.network
    if not asked:
        if dispute.reason == "fraud" and network == "visa":
            asked = "10.4" if charge.channel in CARD_ABSENT else "10.3"
        else:
            asked = DEFAULT_CODES.get((network, dispute.reason), "")
        if not asked:
            card = f"a {network} card" if network else "a card of no known network (its BIN)"
            raise InvalidRequest(
                f"give the network reason code (reason_code): the dispute's reason "
                f"({dispute.reason}) has no usual one on {card}; e.g. Visa 13.7, Mastercard 4853"
            )
    found = REASON_CODES.get(asked.strip())
    if found is None:
        raise InvalidRequest(
            f"reason_code {asked[:12]!r} is not a network reason code this host knows: Visa "
            "10.1-10.5, 11.1-11.3, 12.1-12.7 (12.6.1, 12.6.2), 13.1-13.9; Mastercard 4808, "
            "4831, 4834, 4837, 4840, 4841, 4849, 4853, 4855, 4859, 4860, 4863, 4870, 4871"
        )
    if network and found.network != network:
        raise InvalidRequest(
            f"reason_code {found.code} is {found.network}'s; the card is a {network} card "
            f"(BIN {charge.pan_masked[:6]})"
        )
    if dispute.reason not in found.reasons:
        fitting = sorted(
            c.code for c in REASON_CODES.values()
            if dispute.reason in c.reasons and c.network == found.network
        )  # fmt: skip
        raise InvalidRequest(
            f"reason_code {found.code} ({found.title}) does not fit the dispute's reason "
            f"({dispute.reason}); {found.network} codes that do: {', '.join(fitting)}"
        )
    return found


def _as_filed(dispute: Dispute, amount_minor: int | None) -> bool:
    """Whether a chargeback asked again for ``amount_minor`` (None: all of the disputed
    amount) is the one filed: for the amount it was filed for (``chargeback_row``'s), or
    what it claims now that a partial reversal lowered it. With none, all that is disputed
    now: the amount filed, or less once a reversal shrank the dispute below it (a chargeback
    is for the disputed amount at most when it is filed)."""
    filed = dispute.chargeback_minor + recalled_in_part(dispute)
    if amount_minor is None:
        return dispute.amount_minor <= filed
    return amount_minor in (filed, dispute.chargeback_minor)


def charge_back(
    dispute: Dispute,
    charge: Charge,
    *,
    code: str,
    amount_minor: int | None,
    limits: DisputeLimits,
    now: float,
) -> Dispute:
    """The dispute charged back (the issuer files it with the network): stage chargeback,
    under a reason code that fits, for at most the disputed amount (default: all of it),
    within ``chargeback_days`` of the charge. The same dispute when it was charged back with
    these values already."""
    refused = _not_movable(dispute, "chargeback")
    if refused is not None and dispute.stage == "opened":  # never charged back: no repeat
        raise refused
    found = reason_code(dispute, code, charge)
    amount = dispute.amount_minor if amount_minor is None else amount_minor
    if (
        dispute.stage != "opened"
        and found.code == dispute.reason_code
        and _as_filed(dispute, amount_minor)
    ):
        return dispute  # asked again: recorded as asked
    if refused is not None:
        raise refused
    if dispute.stage != "opened":
        raise ConflictError(
            f"dispute {dispute.dispute_id} was charged back already ({dispute.reason_code}, "
            f"{dispute.chargeback_minor + recalled_in_part(dispute)} on "
            f"{when(dispute.charged_back_at)}): a chargeback is "
            f"filed once; it is at stage {dispute.stage}"
        )
    if amount > dispute.amount_minor:
        raise InvalidRequest(
            f"amount_minor {amount} is more than the {dispute.amount_minor} disputed: a "
            "chargeback is for the disputed amount at most"
        )
    limit = charge.charged_at + limits.chargeback_days * DAY
    if now > limit:
        raise ConflictError(
            f"dispute {dispute.dispute_id}: too late to charge back: the network's limit for "
            f"the charge of {when(charge.charged_at)} was {when(limit)} ({limits.chargeback_days}"
            f" days, [admin] chargeback_days); resolve it instead"
        )
    return replace(
        dispute, stage="chargeback", charged_at=charge.charged_at, network=found.network,
        reason_code=found.code, chargeback_minor=amount, charged_back_at=now,
        arn=charge.arn, pan_masked=charge.pan_masked, version=dispute.version + 1,
    )  # fmt: skip


def represented(
    dispute: Dispute,
    *,
    received_at: float | None,
    reference: str,
    amount_minor: int,
    limits: DisputeLimits,
    now: float,
) -> Dispute:
    """The acquirer's representment (second presentment) recorded: its date (default now),
    reference and amount (at most what was charged back), dated within
    ``representment_days`` of the chargeback. The same dispute when it was recorded with
    this reference and amount (and date, when one is given) already."""
    recorded = dispute.representment_reference, dispute.represented_minor
    # a date is a UTC day: one recorded undated (now) is the same as that day's date
    same_date = received_at is None or _utc_day(received_at) == _utc_day(dispute.represented_at)
    if dispute.represented_at and recorded == (reference, amount_minor) and same_date:
        return dispute
    if (refused := _not_movable(dispute, "representment")) is not None:
        raise refused
    if dispute.stage == "opened":
        raise _out_of_order(
            dispute, "a representment answers a chargeback, and none was filed", limits, now
        )
    if dispute.stage != "chargeback":
        raise ConflictError(
            f"dispute {dispute.dispute_id} was represented already (reference "
            f"{dispute.representment_reference}, {dispute.represented_minor} on "
            f"{when(dispute.represented_at)}); it is at stage {dispute.stage}"
        )
    if amount_minor > dispute.chargeback_minor:
        raise InvalidRequest(
            f"amount_minor {amount_minor} is more than the {dispute.chargeback_minor} charged "
            "back: a representment is for the chargeback's amount at most"
        )
    at = now if received_at is None else received_at
    if at < dispute.charged_back_at - dispute.charged_back_at % DAY:  # a date: its day's start
        raise InvalidRequest(
            f"the representment's date {when(at)} is before the chargeback of "
            f"{when(dispute.charged_back_at)}"
        )
    if at > now + AHEAD_S:
        raise InvalidRequest(f"the representment's date {when(at)} is in the future")
    limit = represent_by(dispute, limits)
    if at > limit:
        raise ConflictError(
            f"dispute {dispute.dispute_id}: the representment of {when(at)} came after the "
            f"acquirer's limit, {when(limit)} (the end of the UTC day "
            f"{limits.representment_days} days after the chargeback, [admin] "
            f"representment_days): the issuer won; resolve it won "
            f"(disputes resolve {dispute.dispute_id} --outcome won)"
        )
    return replace(
        dispute, stage="represented", represented_at=at, representment_reference=reference,
        represented_minor=amount_minor, version=dispute.version + 1,
    )  # fmt: skip


def pre_arbitrate(
    dispute: Dispute, *, amount_minor: int | None = None, limits: DisputeLimits, now: float
) -> Dispute:
    """The issuer's pre-arbitration filed against the representment, for at most the amount
    represented (default: all of it; the rest of the representment is accepted), within
    ``pre_arbitration_days`` of it. The same dispute when it was filed already for this
    amount."""
    if dispute.pre_arbitration_at:
        # no amount is all of the representment, as on the first try: a repeat of a partial
        # pre-arbitration names its amount (an "all of it" is another filing, refused)
        asked = dispute.represented_minor if amount_minor is None else amount_minor
        if asked == pre_arbitrated(dispute):
            return dispute
        raise ConflictError(
            f"dispute {dispute.dispute_id} was taken to pre-arbitration already, for "
            f"{pre_arbitrated(dispute)} on {when(dispute.pre_arbitration_at)}: it is filed once"
        )
    _must_be_at(
        dispute, "represented", "pre-arbitration",
        "pre-arbitration answers a representment, and none is recorded", limits, now,
    )  # fmt: skip
    amount = dispute.represented_minor if amount_minor is None else amount_minor
    if amount > dispute.represented_minor:
        raise InvalidRequest(
            f"amount_minor {amount} is more than the {dispute.represented_minor} represented: "
            "a pre-arbitration is for the representment's amount at most"
        )
    limit = dispute.represented_at + limits.pre_arbitration_days * DAY
    if now > limit:
        raise ConflictError(
            f"dispute {dispute.dispute_id}: too late for pre-arbitration: the limit was "
            f"{when(limit)} ({limits.pre_arbitration_days} days after the representment of "
            f"{when(dispute.represented_at)}, [admin] pre_arbitration_days); the "
            f"representment stands: resolve it (disputes resolve {dispute.dispute_id})"
        )
    return replace(
        dispute, stage="pre_arbitration", pre_arbitration_at=now, pre_arbitration_minor=amount,
        version=dispute.version + 1,
    )  # fmt: skip


ACCEPTING = ("accepted", "accepted_in_part")  # the answers that give the issuer money back


def _accepted_amount(dispute: Dispute, answer: str, amount_minor: int | None) -> int:
    """What an answer accepts of the amount pre-arbitrated: all of it (accepted; an amount,
    when given, must be all of it), a part (accepted_in_part: the amount, less than all),
    nothing (declined: no amount). 422 for an amount that does not fit the answer."""
    whole = pre_arbitrated(dispute)
    if answer == "accepted":
        if amount_minor is not None and amount_minor != whole:
            raise InvalidRequest(
                f"amount_minor {amount_minor} is not the {whole} pre-arbitrated: an answer "
                "accepted in full is for all of it (a part: accepted_in_part)"
            )
        return whole
    if answer == "accepted_in_part":
        if amount_minor is None or amount_minor >= whole:
            raise InvalidRequest(
                f"an answer accepted_in_part gives the amount accepted (amount_minor), less "
                f"than the {whole} pre-arbitrated (all of it: accepted)"
            )
        return amount_minor
    if amount_minor is not None:
        raise InvalidRequest("a declined answer accepts nothing: give no amount_minor")
    return 0


def answer_pre_arbitration(
    dispute: Dispute,
    *,
    answer: str,
    amount_minor: int | None,
    limits: DisputeLimits,
    now: float,
    received_at: float | None = None,
) -> Dispute:
    """The acquirer's answer to the issuer's pre-arbitration recorded, dated ``received_at``
    (the start of the UTC day its dispute system gives; default now, as recorded): accepted in
    full or in part (stage pre_arbitration_accepted: the issuer resolves it, the cardholder
    keeping what was accepted) or declined (stage pre_arbitration_declined: the issuer may
    file arbitration within ``arbitration_days`` of it), within
    ``pre_arbitration_answer_days`` of the pre-arbitration: an answer given in time and
    recorded later is in time. The same dispute when it was answered so already (and, when a
    date is given, that day)."""
    if dispute.pre_arbitration_answer:
        recorded = dispute.pre_arbitration_answer, dispute.pre_arbitration_accepted_minor
        try:
            asked = answer, _accepted_amount(dispute, answer, amount_minor)
        except InvalidRequest:  # not what was recorded, whatever it is
            asked = answer, -1
        same_date = received_at is None or _utc_day(received_at) == _utc_day(
            dispute.pre_arbitration_answered_at
        )
        if asked == recorded and same_date:
            return dispute
        raise ConflictError(
            f"dispute {dispute.dispute_id}: the acquirer answered the pre-arbitration already "
            f"({dispute.pre_arbitration_answer}, {dispute.pre_arbitration_accepted_minor} "
            f"accepted, on {when(dispute.pre_arbitration_answered_at)}): it is answered once"
        )
    _must_be_at(
        dispute, "pre_arbitration", "pre-arbitration answer",
        "the acquirer's answer follows a pre-arbitration, and none is recorded", limits, now,
    )  # fmt: skip
    accepted = _accepted_amount(dispute, answer, amount_minor)
    at = now if received_at is None else received_at
    if at < _utc_day(dispute.pre_arbitration_at):  # a date: its day's start
        raise InvalidRequest(
            f"the answer's date {when(at)} is before the pre-arbitration of "
            f"{when(dispute.pre_arbitration_at)}"
        )
    if at > now + AHEAD_S:
        raise InvalidRequest(f"the answer's date {when(at)} is in the future")
    limit = dispute.pre_arbitration_at + limits.pre_arbitration_answer_days * DAY
    if at > limit:
        raise ConflictError(
            f"dispute {dispute.dispute_id}: the acquirer's answer came after its limit, "
            f"{when(limit)} ({limits.pre_arbitration_answer_days} days after the "
            f"pre-arbitration, [admin] pre_arbitration_answer_days): the issuer won; resolve "
            f"it won (disputes resolve {dispute.dispute_id} --outcome won)"
        )
    stage = "pre_arbitration_declined" if answer == "declined" else "pre_arbitration_accepted"
    return replace(
        dispute, stage=stage, pre_arbitration_answer=answer, pre_arbitration_answered_at=at,
        pre_arbitration_accepted_minor=accepted, version=dispute.version + 1,
    )  # fmt: skip


def arbitrable(dispute: Dispute) -> bool:
    """Whether the acquirer's answer accepted the pre-arbitration in part, leaving the rest
    (``arbitrated``) for the issuer to take to arbitration as a decline's whole amount is."""
    return (
        dispute.stage == "pre_arbitration_accepted"
        and dispute.pre_arbitration_answer == "accepted_in_part"
    )


def arbitrated(dispute: Dispute) -> int:
    """What an arbitration is (or would be) for: what the acquirer's answer did not accept of
    the amount pre-arbitrated (all of it after a decline, the rest after an answer in part;
    0 with no pre-arbitration answered or accepted in full)."""
    if dispute.pre_arbitration_answer not in ("declined", "accepted_in_part"):
        return 0
    return max(0, pre_arbitrated(dispute) - accepted_at_pre_arbitration(dispute))


def arbitrate(dispute: Dispute, *, limits: DisputeLimits, now: float) -> Dispute:
    """The issuer's arbitration filed with the network after the acquirer declined the
    pre-arbitration, or accepted only part of it (for the rest: ``arbitrated``), within
    ``arbitration_days`` of its answer: stage arbitration, the network's ruling next. The
    same dispute when it was filed already."""
    if dispute.arbitration_at:
        return dispute
    why = (
        "the acquirer accepted the pre-arbitration in full: nothing is left to arbitrate"
        if dispute.stage == "pre_arbitration_accepted"
        else "arbitration follows a pre-arbitration declined or accepted in part, and none "
        "is recorded"
    )
    stage = "pre_arbitration_accepted" if arbitrable(dispute) else "pre_arbitration_declined"
    _must_be_at(dispute, stage, "arbitration", why, limits, now)
    limit = dispute.pre_arbitration_answered_at + limits.arbitration_days * DAY
    if now > limit:
        answered = "declined" if stage == "pre_arbitration_declined" else "accepted part of"
        raise ConflictError(
            f"dispute {dispute.dispute_id}: too late for arbitration: the limit was "
            f"{when(limit)} ({limits.arbitration_days} days after the acquirer {answered} the "
            f"pre-arbitration on {when(dispute.pre_arbitration_answered_at)}, [admin] "
            f"arbitration_days); the answer stands: resolve it (disputes resolve "
            f"{dispute.dispute_id})"
        )
    return replace(dispute, stage="arbitration", arbitration_at=now, version=dispute.version + 1)


def ruling_refused(dispute: Dispute, limits: DisputeLimits, now: float) -> ConflictError | None:
    """Why the network's arbitration ruling cannot resolve the dispute now (None: it may;
    a resolution's own checks follow, as for any resolution)."""
    if dispute.state != "open":
        return ConflictError(
            f"dispute {dispute.dispute_id} is {dispute.state} already: no arbitration ruling on it"
        )
    if dispute.stage != "arbitration":
        return _out_of_order(
            dispute, "a ruling answers an arbitration, and none was filed", limits, now
        )
    return None


def with_arbitration_fee(
    dispute: Dispute, ruling: str, fee_minor: int | None, currency: str, limits: DisputeLimits
) -> Dispute:
    """The dispute with the network's arbitration fee its ruling charges: ``fee_minor`` in
    ``currency`` as the ruling gives it (default: ``limits``' configured fee and currency;
    0: none recorded), borne by the party the ruling went against (the networks charge the
    losing party the filing and review fee): the acquirer when won, the issuer when lost. The
    cardholder's amounts never count it."""
    fee = limits.arbitration_fee_minor if fee_minor is None else fee_minor
    if not fee:
        return dispute
    return replace(
        dispute, arbitration_fee_minor=fee,
        arbitration_fee_currency=currency or limits.arbitration_fee_currency,
        arbitration_fee_payer="acquirer" if ruling == "won" else "issuer",
    )  # fmt: skip


def with_note(dispute: Dispute, note: str, step: str) -> Dispute:
    """The dispute's note with a step's own (already masked) added."""
    if not note:
        return dispute
    added = f"{step}: {note}"
    return replace(dispute, note=f"{dispute.note}; {added}" if dispute.note else added)


# --- what the stages settled ------------------------------------------------------------------
#
# The networks' amounts, for a dispute of D charged back for CB (at most D) and represented for
# R (at most CB):
#
#   not charged back   D - CB   the issuer did not pursue it: the cardholder does not keep it,
#                               whatever the outcome (the bank credits it by hand if it chooses)
#   accepted           CB - R   the acquirer did not contest it: the cardholder's for good, won
#                               or lost (a withdrawal recalls it); all CB is contested until a
#                               representment says less
#   contested          R        the cardholder's if won (the acquirer accepted the
#                               pre-arbitration, or the bank bears it), taken back if lost
#   conceded           R - P    pre-arbitrated for P (at most R): the issuer accepted the rest
#                               of the representment, so it is taken back, won or lost
#   accepted at        A        the acquirer's answer to the pre-arbitration accepted A of P
#   pre-arbitration             (all: P; in part; declined: 0): the cardholder's for good,
#                               as CB - R is; the rest, P - A, the acquirer keeps
#
#   arbitrated         P - A    declined (all of P) or accepted in part (the rest): the
#                               issuer's to take to arbitration; ruled won, the acquirer
#                               gives it back too (it holds only R - P)
#
# so won keeps CB (less what the issuer conceded; once the acquirer answered accepting, only
# CB - R + A: what it accepted, unless the rest went to arbitration), lost keeps CB - R + A
# (nothing when no representment was recorded: the issuer gave the whole chargeback up),
# withdrawn keeps nothing (the chargeback is recalled: the network is told, ``recall_row``).
# A dispute never charged back settles as it always did: won keeps the disputed amount, lost
# and withdrawn nothing. Every amount is capped by ``owed``, what the charge still takes after the
# acquirer's reversals (the disputed amount, at most).

OUTCOMES = ("won", "lost", "withdrawn")
SETTLED = ("won", "lost")  # the outcomes a later reversal of the charge may leave paid twice


def charged_back(dispute: Dispute) -> bool:
    """Whether the dispute's chargeback was filed (sent to the network)."""
    return bool(dispute.charged_back_at)


def accepted_at_pre_arbitration(dispute: Dispute) -> int:
    """What the acquirer's answer accepted of the pre-arbitration (0: none, or declined)."""
    if dispute.pre_arbitration_answer in ACCEPTING:
        return dispute.pre_arbitration_accepted_minor
    return 0


def accepted_by_acquirer(dispute: Dispute) -> int:
    """What the acquirer did not contest of the chargeback: the part its representment left,
    and what its answer accepted of the pre-arbitration (0 before a representment is
    recorded: until then all of it may be contested)."""
    if not dispute.represented_at:
        return 0
    return max(0, dispute.chargeback_minor - held_by_acquirer(dispute))


def held_by_acquirer(dispute: Dispute, outcome: str = "") -> int:
    """What of the chargeback the acquirer holds: what its representment took back, less what
    its answer to the pre-arbitration gave back. ``outcome``: the resolution that closes the
    dispute with this write; resolved ``won`` after a pre-arbitration the acquirer never
    answered (its limit passed) or an arbitration the network ruled for the issuer, the
    acquirer gave the pre-arbitrated part back and holds only what the issuer conceded. A
    win after a decline with no ruling is the bank's cost: the acquirer keeps it all."""
    if not dispute.represented_at:
        return 0
    if outcome == "won" and dispute.pre_arbitration_at and dispute.arbitration_ruling == "won":
        return conceded_by_issuer(dispute)  # the ruling gave back what its answer did not
    if dispute.pre_arbitration_answer in ACCEPTING:
        return max(0, dispute.represented_minor - dispute.pre_arbitration_accepted_minor)
    if outcome == "won" and dispute.pre_arbitration_at and not dispute.pre_arbitration_answer:
        return conceded_by_issuer(dispute)
    return dispute.represented_minor


def pre_arbitrated(dispute: Dispute) -> int:
    """What the issuer's pre-arbitration is for (0: none filed); one recorded before its
    amount was kept was for the whole representment."""
    if not dispute.pre_arbitration_at:
        return 0
    return dispute.pre_arbitration_minor or dispute.represented_minor


def conceded_by_issuer(dispute: Dispute) -> int:
    """What the issuer accepted of the representment by pre-arbitrating less than it."""
    if not dispute.pre_arbitration_at:
        return 0
    return max(0, dispute.represented_minor - pre_arbitrated(dispute))


def cardholder_keeps(dispute: Dispute, outcome: str, owed: int | None = None) -> int:
    """What the cardholder ends with of the disputed amount when the dispute is resolved
    ``outcome`` (the table above); ``owed``: what the charge still takes after the acquirer's
    reversals (default: the disputed amount)."""
    owed = dispute.amount_minor if owed is None else min(owed, dispute.amount_minor)
    if outcome == "withdrawn":
        return 0
    if not charged_back(dispute):
        return owed if outcome == "won" else 0
    if outcome == "won" and (
        dispute.pre_arbitration_answer not in ACCEPTING or dispute.arbitration_at
    ):  # (arbitrated after an answer in part: won, the rest as well as what it accepted)
        return min(owed, max(0, dispute.chargeback_minor - conceded_by_issuer(dispute)))
    # lost, or won once the acquirer answered: what it accepted (in part: only that part)
    return min(owed, accepted_by_acquirer(dispute))


def recalled_minor(dispute: Dispute) -> int:
    """What a recall (``recalled``) gives back to the acquirer through the network: the
    chargeback (as lowered by partial recalls) less what the acquirer holds of it already."""
    return max(0, dispute.chargeback_minor - held_by_acquirer(dispute))


def recalled_in_part(dispute: Dispute) -> int:
    """What partial recalls lowered the chargeback by since it was filed."""
    return sum(amount for _, amount in dispute.recalls)


def lowered_chargeback(dispute: Dispute, still: int, outcome: str = "") -> int:
    """What a reversal that leaves the charge taking ``still`` lowers the chargeback by: the
    issuer holds the chargeback less what a representment took back, and must not hold more
    than the charge still takes, or it recovers the reversed part twice (the reversal gave it
    to the cardholder, the chargeback takes it from the acquirer). 0 before a chargeback, and
    for a whole reversal (``still`` 0) of a dispute whose chargeback the full recall line
    (``recall_row``) gives back: closed ``reversed`` (no ``outcome``), withdrawn, or lost
    before a representment. Resolved won or lost otherwise, a whole reversal lowers it to
    what the acquirer holds: the chargeback stands, and nothing else would recall it on the
    day it was resolved.

    ``outcome``: the resolution that closes the dispute with this write ("" while it stays
    open): what the acquirer holds is counted for it (``held_by_acquirer``: resolved won
    after a pre-arbitration left unanswered or an arbitration ruled won, the issuer has back
    what it pre-arbitrated and holds the chargeback less only what it conceded; an open
    dispute's counts the whole representment, which a loss may still leave with the
    acquirer, less what its answer accepted)."""
    if not charged_back(dispute) or still < 0:
        return 0
    if still == 0 and (not outcome or recalled(replace(dispute, state=outcome))):
        return 0
    return max(0, dispute.chargeback_minor - held_by_acquirer(dispute, outcome) - still)


def with_partial_recall(dispute: Dispute, lowered: int, now: float) -> Dispute:
    """The dispute with its chargeback lowered by ``lowered`` (``lowered_chargeback``), the
    lowering kept for the chargebacks file's partial recall line."""
    return replace(
        dispute,
        chargeback_minor=dispute.chargeback_minor - lowered,
        recalls=(*dispute.recalls, (now, lowered)),
    )


def amounts(dispute: Dispute) -> dict[str, int | None]:
    """The dispute's amounts by stage, and what the cardholder keeps: once closed, what it
    ended with; while open, what each outcome would leave it (``if_won_minor``...), by the
    disputed amount (a resolution also counts reversals the reconcile has not yet)."""
    closed = dispute.state != "open"
    not_pursued = dispute.amount_minor - dispute.chargeback_minor if charged_back(dispute) else 0
    return {
        "disputed_minor": dispute.amount_minor,
        "charged_back_minor": dispute.chargeback_minor,
        "not_charged_back_minor": max(0, not_pursued),
        "represented_minor": dispute.represented_minor,
        "recalled_minor": recalled_in_part(dispute),
        "accepted_by_acquirer_minor": accepted_by_acquirer(dispute),
        "pre_arbitration_minor": pre_arbitrated(dispute),
        "pre_arbitration_accepted_minor": accepted_at_pre_arbitration(dispute),
        "conceded_by_issuer_minor": conceded_by_issuer(dispute),
        "arbitration_minor": arbitrated(dispute),
        # the network's, in its own currency (``arbitration_fee``): never the cardholder's
        "arbitration_fee_minor": dispute.arbitration_fee_minor,
        "cardholder_keeps_minor": dispute.credited_minor if closed else None,
        **{
            f"if_{outcome}_minor": None if closed else cardholder_keeps(dispute, outcome)
            for outcome in OUTCOMES
        },
    }


# --- the networks' files -----------------------------------------------------------------------

CHARGEBACK_COLUMNS = (
    "dispute_id", "arn", "pan", "amount_minor", "currency", "network", "reason_code",
    "charged_back_at", "journal_id", "action", "recalled_at", "withdrawn_at_stage",
)  # fmt: skip


def chargeback_row(dispute: Dispute) -> dict[str, str | int]:
    """One line of the chargebacks file (``CHARGEBACK_COLUMNS``) for a chargeback filed: the
    PAN masked, as stored."""
    return {
        "dispute_id": dispute.dispute_id,
        "arn": dispute.arn,
        "pan": dispute.pan_masked,
        "amount_minor": dispute.chargeback_minor + recalled_in_part(dispute),  # as filed
        "currency": dispute.currency,
        "network": dispute.network,
        "reason_code": dispute.reason_code,
        "charged_back_at": when(dispute.charged_back_at),
        "journal_id": dispute.journal_id,
        "action": "chargeback",
        "recalled_at": "",
        "withdrawn_at_stage": "",
    }


def recall_row(dispute: Dispute) -> dict[str, str | int]:
    """The line that recalls the chargeback of a dispute withdrawn after it was filed: the
    chargeback's own values (the network matches them), the amount going back to the acquirer
    (``recalled_minor``), when it was withdrawn and at which stage (a recall at stage
    pre_arbitration withdraws the pre-arbitration too)."""
    return {
        **chargeback_row(dispute),
        "amount_minor": recalled_minor(dispute),
        "action": "recall",
        "recalled_at": when(dispute.closed_at),
        "withdrawn_at_stage": dispute.stage,
    }


def partial_recall_rows(
    dispute: Dispute,
    start: float,
    end: float,
    recalls: tuple[tuple[float, int], ...] | None = None,
) -> list[dict[str, str | int]]:
    """The lines that recall part of the chargeback, those lowered in ``[start, end)``: the
    chargeback's own values, the amount it was lowered by, when, and ``withdrawn_at_stage``
    empty (the dispute goes on, for the chargeback as lowered). ``recalls``: others than the
    dispute's own (``recalls_after_closing``)."""
    return [
        {
            **chargeback_row(dispute),
            "amount_minor": amount,
            "action": "recall",
            "recalled_at": when(at),
            "withdrawn_at_stage": "",
        }  # fmt: skip
        for at, amount in (dispute.recalls if recalls is None else recalls)
        if start <= at < end
    ]


def owes_recalls_after_closing(dispute: Dispute) -> bool:
    """Whether a reversal of the charge after the dispute was resolved may owe the acquirer
    part of its chargeback back (``recalls_after_closing``): resolved won or lost with the
    chargeback standing (not recalled whole)."""
    return dispute.state in ("won", "lost") and charged_back(dispute) and not recalled(dispute)


def recalls_after_closing(
    dispute: Dispute, charged: int, reversals: Iterable[tuple[float, int]]
) -> tuple[tuple[float, int], ...]:
    """The chargeback's recalls that the acquirer's reversals of the charge owe once the
    dispute was resolved (the resolution lowered it for those it counted, and nothing since):
    each reversal (its time and what it released, in the journal's order, from the first)
    leaves the charge of ``charged`` taking less, and the issuer may hold no more of the
    chargeback than that beyond what the acquirer holds (``lowered_chargeback``), or it
    recovers the reversed part twice. A reversal the resolution counted owes nothing: the
    chargeback was lowered for it. (when, how much) for each that owes a part, dated no
    earlier than the resolution: one approved before it that it did not count (between its
    look at the journal and its write) is owed from then, and a chargebacks file of the
    reversal's day, written before the resolution, could not have had it."""
    if not owes_recalls_after_closing(dispute):
        return ()
    held = held_by_acquirer(dispute, dispute.state)
    claim, released, owed = dispute.chargeback_minor, 0, []
    for at, amount in reversals:
        released += amount
        still = min(dispute.amount_minor, max(0, charged - released))
        if (over := claim - held - still) > 0:
            owed.append((max(at, dispute.closed_at), over))
            claim -= over
    return tuple(owed)


def recalled(dispute: Dispute) -> bool:
    """Whether the dispute's chargeback is to be recalled: withdrawn after it was filed, lost
    with no representment recorded (the issuer gave the whole chargeback up and the cardholder
    keeps none of it, so the acquirer is owed it back: else the issuer would hold the
    chargeback's money for nobody), or closed ``reversed`` after it (the acquirer reversed the
    whole charge, which gave the cardholder the money back: the chargeback would recover it a
    second time)."""
    if not charged_back(dispute):
        return False
    if dispute.state in ("withdrawn", "reversed"):
        return True
    return dispute.state == "lost" and not dispute.represented_at


def network_life_days(limits: DisputeLimits) -> int:
    """The longest a dispute's network side runs from its charge: every stage's limit added
    (235 days by default). Past it the networks closed the case: nothing is left to recall."""
    return (
        limits.chargeback_days + limits.representment_days + limits.pre_arbitration_days
        + limits.pre_arbitration_answer_days + limits.arbitration_days
    )  # fmt: skip
