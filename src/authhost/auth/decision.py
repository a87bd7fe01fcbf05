"""The outcome of one request: what the response says and what the journal records."""

from __future__ import annotations

from dataclasses import dataclass, field

from authhost.cards.tokens import PaymentToken
from authhost.iso.codes import APPROVED_CODES, ResponseCode
from authhost.iso.messages import Balance
from authhost.security.emv import Cryptogram


@dataclass(frozen=True, slots=True)
class Decline:
    """A step's refusal: the response code and a reason code that says which check failed."""

    response_code: ResponseCode
    reason: str  # short machine-readable reason, e.g. "card.lost", "pin.wrong", "rule:CT-01"


@dataclass(slots=True)
class Decision:
    """The pipeline's answer to one request.

    ``response_code`` is what goes into field 39; ``approval_code`` (field 38) is set only on
    approval. ``balances`` fill field 54. ``timings_us`` has one entry per step that ran,
    and the service adds the store's read and write (``store_read``, ``store_write``: those of
    the batch, when requests were decided together).
    """

    response_code: ResponseCode
    approval_code: str | None = None
    reason_codes: list[str] = field(default_factory=list)
    fraud_score: int | None = None
    model_score: int | None = None  # the champion's own, before score rules' points
    challenger_score: int | None = None
    model_skipped: bool = False  # the ML step could not score within its budget
    model_reasons: str = ""  # "feature=+0.00;...": what pushed a high score up (log-odds)
    rule_matches: list[str] = field(default_factory=list)
    review: bool = False  # approved but flagged for an analyst
    balances: list[Balance] = field(default_factory=list)
    timings_us: dict[str, int] = field(default_factory=dict)
    cryptogram: Cryptogram | None = None  # the checked ARQC of a chip request (not sent)
    icc_response: bytes | None = None  # field 55 of the answer: the ARPC (tag 91)
    issuer_script: bytes | None = None  # tag 72 for the chip (appended to icc_response)
    # a partial approval (10): the amount approved, in field 4's currency (None: as asked)
    approved_amount_minor: int | None = None
    # what the card verification step checked, answered where the request asked
    # (iso.codec.encode_response): the 3-D Secure value's results code (field 44 position 13,
    # or Visa's 44.13), the billing address's result (cards.avs: field 48 SE 83, or Visa's
    # 44.2), the CVV2's (M matched, N not: Visa's 44.10 only); "" when not checked
    cavv_result: str = ""
    avs_result: str = ""
    cvv2_result: str = ""
    token: PaymentToken | None = None  # the card's token the request was paid with (not sent)

    @property
    def approved(self) -> bool:
        return self.response_code in APPROVED_CODES
