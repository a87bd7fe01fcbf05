"""The admin API without the transport: routes, authentication, JSON in and out.

``AdminApi.handle(ApiRequest) -> ApiResponse`` is all the HTTP layer calls, so every rule of
the API (who may call what, how bad input is answered, what is never shown) is here and is
testable without a socket. The route table is also the source of the OpenAPI document.

Answers are JSON. Errors are ``{"error": message}`` (plus ``details`` for invalid fields)
with a 4xx status; an unexpected failure is a 500 with a generic message and the details go
to the log (masked), never to the caller.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ValidationError

from authhost.admin import params
from authhost.admin import requests as rq
from authhost.admin import views as v
from authhost.admin.business_day import DAY_PATTERN
from authhost.admin.errors import InvalidRequest, ServiceError, invalid_request
from authhost.admin.lockout import AdminLockout, peer_host
from authhost.admin.openapi import openapi_document
from authhost.admin.params import EPOCH_END, Param
from authhost.admin.service import LIFECYCLE_ACTIONS, CardService
from authhost.admin.service.lifecycle import SUCCESSOR_ACTIONS
from authhost.admin.timeline import TIMELINE_LIMIT, TIMELINE_MAX
from authhost.admin.tokens import AuthFailure, Principal, TokenTable
from authhost.cards.acceptor_velocity import ACCEPTOR_COUNTERS
from authhost.cards.model import CardState
from authhost.models.registry import NAME_MAX
from authhost.models.segments import SEGMENTS
from authhost.security.errors import SecurityError
from authhost.security.masking import mask_pans_in_text
from authhost.store.interface import IDEMPOTENCY_MIN_KEEP_DAYS, StoreUnavailable
from authhost.store.records import DISPUTE_STATES

log = logging.getLogger("authhost.admin.api")


@dataclass(frozen=True, slots=True)
class ApiRequest:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    peer: str = ""  # the client's address, for the request log (PCI DSS 10.2.2: origination)


@dataclass(slots=True)
class ApiResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=False).encode()
    return ApiResponse(status, body, headers=headers or {})


def error_response(
    status: int, message: str, details: list[dict[str, str]] | None = None
) -> ApiResponse:
    payload: dict[str, Any] = {"error": mask_pans_in_text(message)}
    if details:  # a field's name is the caller's text too (an unknown key may be a PAN)
        payload["details"] = [{k: mask_pans_in_text(v) for k, v in d.items()} for d in details]
    return json_response(status, payload)


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the service acting as the caller, path and query values, body."""

    service: CardService
    path: dict[str, str]
    query: dict[str, str]
    body: Any
    idempotency_key: str
    params: dict[str, Param] = field(default_factory=dict)  # the route's query parameters


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/v1/cards/{card_id}"
    handler: Handler
    summary: str
    write: bool = False
    body: type[BaseModel] | None = None
    body_optional: bool = False
    status: int = 200
    query: tuple[str, ...] = ()
    idempotent: bool = False  # accepts an Idempotency-Key header (creates, funds changes)
    tag: str = ""
    response: type[BaseModel] | None = None  # schema of the answer (OpenAPI, tests)
    # the query parameters this route takes otherwise than QUERY_PARAMS says (a feed's limit
    # is not a listing's, a dispute's states are not a card's)
    query_own: tuple[tuple[str, Param], ...] = ()

    @property
    def query_params(self) -> dict[str, Param]:
        """Each query parameter of the route as it takes it: the document's and the parser's."""
        own = dict(self.query_own)
        return {name: own.get(name, QUERY_PARAMS[name]) for name in self.query}

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        return re.compile(f"^{regex}$")


# --- query parameters -----------------------------------------------------------------------

_LIMIT = Param("integer", "page size, 1-1000 (default 100)", 100, minimum=1, maximum=1000)
_AFTER_ID = Param(
    "integer", "return entries with a larger id (paging)", 0, minimum=0, maximum=10**15
)
_EPOCH = Param("integer", "", minimum=0, exclusive_maximum=EPOCH_END)
_PERIOD = (
    "; a period is a day, or since (up to now), or until (with since: after it), never a "
    "day with either"
)

QUERY_PARAMS: dict[str, Param] = {
    # each parameter's schema in the OpenAPI document, and what its parser below enforces
    "limit": _LIMIT,
    "offset": Param("integer", "rows to skip", 0, minimum=0, maximum=10**9),
    "after_id": _AFTER_ID,
    "before_id": Param(
        "integer",
        "return entries with a smaller id, newest first (paging back from the newest; not with "
        "order=oldest or after_id)",
        0,
        minimum=0,
        maximum=10**15,
    ),
    "order": Param(
        "string", "oldest first (the default) or newest first", "oldest", enum=("oldest", "newest")
    ),
    "state": Param(
        "string", "only cards in this state", enum=tuple(state.value for state in CardState)
    ),
    "account_id": Param("string", "only cards on this account"),
    "card_id": Param(
        "string",
        "only the disputes of this card and of the cards it replaced or that replaced it (not "
        "with after or due_within_days)",
    ),
    "last4": Param(
        "string",
        "only cards whose number ends in these 4 digits (a caller reads them off the card)",
        pattern=r"^[0-9]{4}$",
    ),
    "name": Param(
        "string",
        "only cards whose cardholder name contains this (either case, accents dropped: the "
        "card carries A-Z; a letter with no ASCII form, ß or Ł, is refused 422)",
        max_length=26,
    ),
    "subject": Param("string", "only entries about this card, account, product or list"),
    "actor": Param(
        "string",
        "only entries this caller wrote: a token's name, cli:<login>, operator:<8 hex>, system",
        max_length=200,
    ),
    "head": Param(
        "string",
        "a head value an earlier verify gave (64 hex): is it still there?",
        pattern=r"^[0-9A-Fa-f]{64}$",
    ),
    "show": Param(
        "string", "open (no verdict yet, the default) or all", "open", enum=("open", "all")
    ),
    "declined": Param(
        "boolean",
        "true: also the flagged requests a later step declined (funds 51...), which never "
        "went through",
        False,
    ),
    "by": Param(
        "string",
        "the counter to rank by, e.g. failed_cvv_10m (the default), count_1h",
        "failed_cvv_10m",
        enum=ACCEPTOR_COUNTERS,
    ),
    "of": Param(
        "string",
        "merchants (the default) or terminals",
        "merchants",
        enum=("merchants", "terminals"),
    ),
    "model": Param(
        "string",
        "an artifact of the models directory (default: the active champion): its directory's "
        "name, not starting with '.', no '/', up to 255 bytes",
        pattern=r"^[^./][^/]*$",
        max_length=NAME_MAX // 4,  # characters: any 63 fit the 255 bytes a name may have
    ),
    "day": Param(
        "string",
        "a business day, YYYY-MM-DD of 2000-2099, as [admin] business_day_* cut it (by "
        "default the UTC day)" + _PERIOD,
        pattern=DAY_PATTERN,
        format="date",
    ),
    "after": Param("string", "list what comes after this id (paging)"),
    "rrn": Param(
        "string",
        "retrieval reference number, field 37 (1-12 printable ASCII characters), or a "
        "clearing presentment's acquirer reference number (13-23 digits)",
        pattern=r"^([ -~]{1,12}|[0-9]{13,23})$",
        required=True,
    ),
    "months": Param(
        "integer", "how many months ahead, this one first, 1-60 (default 12)", 12, 1, 60
    ),
    "days": Param(
        "integer",
        "not used for this many days, 1-3650 (give days or unused_since, one of them)",
        minimum=1,
        maximum=3650,
    ),
    "unused_since": _EPOCH.but(
        description="not used since then, epoch seconds (instead of days; a decimal fraction "
        "is taken too)"
    ),
    "since": _EPOCH.but(
        description="from this time, epoch seconds (inclusive; a decimal fraction is taken "
        "too; before now)" + _PERIOD
    ),
    "until": _EPOCH.but(
        description="to this time, epoch seconds (exclusive; a decimal fraction is taken too)"
        + _PERIOD
    ),
    "before": _EPOCH.but(
        description="only what happened before this time, epoch seconds (paging; a decimal "
        "fraction is taken too)"
    ),
    "chain": Param(
        "boolean", "true (the default): also the cards it succeeds and that succeed it", True
    ),
    "reference_day": Param(
        "string",
        "compare with this business day of the journal instead of the artifact's reference "
        "(YYYY-MM-DD of 2000-2099); or reference_since and reference_until",
        pattern=DAY_PATTERN,
        format="date",
    ),
    "reference_since": _EPOCH.but(
        description="compare with the journal from this time instead of the artifact's "
        "reference, epoch seconds (inclusive; before now)"
    ),
    "reference_until": _EPOCH.but(description="to this time, epoch seconds (exclusive)"),
    "watch": Param(
        "number",
        "the PSI from which a feature is to watch (default 0.10; above 0, below act)",
        0.10,
        minimum=0,
        maximum=100,
    ),
    "act": Param(
        "number",
        "the PSI above which a feature is to act on (default 0.25; above watch)",
        0.25,
        minimum=0,
        maximum=100,
    ),
    "segment": Param(
        "string",
        "also each segment of this kind against the same segment of the reference: channel "
        "(card_present, ecommerce, atm), entry (how the card was read), cross-border "
        "(domestic, cross_border), mcc-group (the merchant category's risk group) or product",
        enum=tuple(SEGMENTS),
    ),
    "lookback_days": Param(
        "integer",
        "days before each card's first fraud to look back, 1-365 (default 60)",
        60,
        minimum=1,
        maximum=365,
    ),
    "min_cards": Param(
        "integer", "fraud cards a merchant needs to be listed, 1-1000 (default 2)", 2, 1, 1000
    ),
    "champion_threshold": Param(
        "integer", "0-999 (default: the champion artifact's own)", minimum=0, maximum=999
    ),
    "challenger_threshold": Param(
        "integer", "0-999 (default: the challenger artifact's own)", minimum=0, maximum=999
    ),
    "amount_minor": Param(
        "integer",
        "also approvals at or above this amount, minor units (0: not)",
        0,
        minimum=0,
        maximum=10**12,
    ),
    "card_not_present": Param(
        "boolean", "true: also approvals without the card (e-commerce, MOTO)", False
    ),
    "abroad": Param("boolean", "true: also approvals outside the card's home country", False),
    "older_than_s": Param(
        "integer",
        "only work begun at least this many seconds ago (default 60)",
        60,
        minimum=0,
        maximum=86_400,
    ),
    "due_within_days": Param(
        "integer",
        "only the open disputes whose next action is the issuer's, due within this many days "
        "(0-3650; 0: overdue or due now), soonest first",
        minimum=0,
        maximum=3650,
    ),
    "keep_days": Param(
        "integer",
        f"days of idempotency results to keep ({IDEMPOTENCY_MIN_KEEP_DAYS}-100,000; "
        "required): older ones are deleted",
        minimum=IDEMPOTENCY_MIN_KEEP_DAYS,
        maximum=100_000,
        required=True,
    ),
}

# path parameters with constraints of their own (the others are ids: any text, 404 if unknown)
PATH_PARAMS: dict[str, Param] = {
    "journal_id": Param("integer", "a journal entry's number", minimum=0, maximum=10**15 - 1),
    "name": Param(
        "string",
        "letters, digits, '.', '_' and '-', up to 64, starting with a letter or digit",
        pattern=rq.LIST_NAME_PATTERN,
    ),
}

# a feed's page size, and the other parameters a route takes otherwise than the rest
FEED_LIMIT = _LIMIT.but(
    description="page size, 1-10,000 (default 1,000)", default=1000, maximum=10_000
)


def _int_param(call: Call, name: str) -> int:
    return params.integer(call.query.get(name), name, call.params[name])


def _number_param(call: Call, name: str) -> float:
    return params.number(call.query.get(name), name, call.params[name])


def _bool_param(call: Call, name: str) -> bool:
    return params.boolean(call.query.get(name), name, call.params[name])


def _choice_param(call: Call, name: str) -> str:
    return params.choice(call.query.get(name), name, call.params[name])


def _float_param(call: Call, name: str) -> float:
    return params.epoch(call.query.get(name), name, call.params[name])


def _page(call: Call) -> tuple[int, int]:
    return _int_param(call, "limit"), _int_param(call, "offset")


# --- handlers -------------------------------------------------------------------------------


async def _list_products(call: Call) -> Any:
    return {"products": await call.service.list_products()}


async def _create_product(call: Call) -> Any:
    return await call.service.create_product(call.body, idempotency_key=call.idempotency_key)


async def _update_product(call: Call) -> Any:
    return await call.service.update_product(call.path["product_id"], call.body)


async def _set_product_limits(call: Call) -> Any:
    return await call.service.set_product_limits(call.path["product_id"], call.body)


async def _get_product(call: Call) -> Any:
    return await call.service.get_product(call.path["product_id"])


async def _list_accounts(call: Call) -> Any:
    limit, offset = _page(call)
    return {"accounts": await call.service.list_accounts(limit=limit, offset=offset)}


async def _create_account(call: Call) -> Any:
    return await call.service.create_account(call.body, idempotency_key=call.idempotency_key)


async def _get_account(call: Call) -> Any:
    return await call.service.get_account(call.path["account_id"])


async def _close_account(call: Call) -> Any:
    reason = call.body.reason if call.body is not None else ""
    return await call.service.close_account(call.path["account_id"], reason)


async def _change_funds(call: Call) -> Any:
    return await call.service.change_funds(
        call.path["account_id"], call.body, idempotency_key=call.idempotency_key
    )


async def _sync_ledger(call: Call) -> Any:
    return await call.service.sync_ledger(call.path["account_id"], call.body)


async def _set_credit_limit(call: Call) -> Any:
    return await call.service.set_credit_limit(call.path["account_id"], call.body)


async def _list_cards(call: Call) -> Any:
    limit, offset = _page(call)
    cards = await call.service.list_cards(
        account_id=call.query.get("account_id", ""),
        state=call.query.get("state", ""),
        limit=limit,
        offset=offset,
        last4=call.query.get("last4", ""),
        name=call.query.get("name", ""),
    )
    return {"cards": cards}


async def _issue_card(call: Call) -> Any:
    return await call.service.issue_card(call.body, idempotency_key=call.idempotency_key)


async def _find_card(call: Call) -> Any:
    return await call.service.find_card(call.body.pan)


async def _get_card(call: Call) -> Any:
    return await call.service.show_card(call.path["card_id"])


async def _personalise(call: Call) -> Any:
    return await call.service.personalise(call.path["card_id"], call.body)


def _lifecycle(action: str) -> Handler:
    async def handler(call: Call) -> Any:
        reason = call.body.reason if call.body is not None else ""
        return await call.service.apply(
            call.path["card_id"], action, reason=reason, idempotency_key=call.idempotency_key
        )

    return handler


async def _set_chip_scripts(call: Call) -> Any:
    return await call.service.set_chip_scripts(call.path["card_id"], call.body)


async def _set_card_controls(call: Call) -> Any:
    return await call.service.set_card_controls(call.path["card_id"], call.body)


async def _set_travel_notices(call: Call) -> Any:
    return await call.service.set_travel_notices(call.path["card_id"], call.body)


async def _add_token(call: Call) -> Any:
    return await call.service.add_token(call.path["card_id"], call.body)


async def _token_request(call: Call) -> Any:
    return await call.service.token_request(call.body)


async def _set_token_state(call: Call) -> Any:
    return await call.service.set_token_state(
        call.path["card_id"], call.path["token_ref"], call.body
    )


async def _set_stop_payments(call: Call) -> Any:
    return await call.service.set_stop_payments(call.path["card_id"], call.body)


async def _set_limits(call: Call) -> Any:
    return await call.service.set_card_limits(call.path["card_id"], call.body)


async def _set_pin(call: Call) -> Any:
    return await call.service.set_pin(call.path["card_id"], call.body)


async def _unlock_pin(call: Call) -> Any:
    return await call.service.unlock_pin(call.path["card_id"])


async def _card_journal(call: Call) -> Any:
    limit, after_id = _int_param(call, "limit"), _int_param(call, "after_id")
    entries = await call.service.card_journal(call.path["card_id"], limit=limit, after_id=after_id)
    return {"journal": entries}


async def _card_timeline(call: Call) -> Any:
    return await call.service.card_timeline(
        call.path["card_id"],
        **_period(call),
        before=_float_param(call, "before"),
        limit=_int_param(call, "limit"),
        chain=_bool_param(call, "chain"),
    )


def _journal_id(call: Call) -> int:
    journal_id = PATH_PARAMS["journal_id"]
    return params.path_integer(
        call.path["journal_id"], journal_id, "journal_id must be a journal entry's number"
    )


async def _report_fraud(call: Call) -> Any:
    return await call.service.report_fraud(call.path["card_id"], _journal_id(call), call.body)


async def _answer_alert(call: Call) -> Any:
    return await call.service.answer_alert(call.path["card_id"], _journal_id(call), call.body)


async def _explain_entry(call: Call) -> Any:
    model = call.query.get("model", "")
    return await call.service.explain_entry(call.path["card_id"], _journal_id(call), model)


async def _explain_rules(call: Call) -> Any:
    return await call.service.explain_rules(call.path["card_id"], _journal_id(call))


async def _expiring_cards(call: Call) -> Any:
    return await call.service.expiring_cards(_int_param(call, "months"))


async def _compromise_alert(call: Call) -> Any:
    alert = call.body
    return await call.service.compromised_cards(
        alert.pans, alert.action, alert.list_name, card_ids=alert.card_ids
    )


async def _dormant_cards(call: Call) -> Any:
    return await call.service.dormant_cards(_unused_since(call))


async def _suspend_dormant(call: Call) -> Any:
    return await call.service.dormant_cards(_unused_since(call), suspend=True)


def _unused_since(call: Call) -> float:
    """``days`` (1-3650) before now, or ``unused_since`` (epoch seconds); one of them."""
    if ("days" in call.query) == ("unused_since" in call.query):
        raise ServiceError("give days (1-3650) or unused_since (epoch seconds), one of them")
    if "days" in call.query:
        return call.service.clock() - _int_param(call, "days") * 86_400.0
    return _float_param(call, "unused_since")


async def _renew_expiring(call: Call) -> Any:
    return await call.service.renew_expiring(call.body)


async def _import_clearing(call: Call) -> Any:
    return await call.service.import_clearing(call.body)


async def _review_queue(call: Call) -> Any:
    limit, after_id = _int_param(call, "limit"), _int_param(call, "after_id")
    shown = _choice_param(call, "show")
    return await call.service.review_queue(
        limit=limit,
        after_id=after_id,
        open_only=shown == "open",
        declined=_bool_param(call, "declined"),
    )


async def _busiest_acceptors(call: Call) -> Any:
    limit = _int_param(call, "limit")
    of, by = _choice_param(call, "of"), _choice_param(call, "by")
    return await call.service.busiest_acceptors(by=by, terminals=of == "terminals", limit=limit)


async def _find_entries(call: Call) -> Any:
    entries = await call.service.find_entries(rrn=call.query.get("rrn", ""), **_period(call))
    return {"journal": entries}


async def _money_movements(call: Call) -> Any:
    after_id = _int_param(call, "after_id")
    return await call.service.money_movements(after_id, _int_param(call, "limit"))


async def _cardholder_alerts(call: Call) -> Any:
    return await call.service.cardholder_alerts(
        _int_param(call, "after_id"),
        _int_param(call, "limit"),
        amount_minor=_int_param(call, "amount_minor"),
        card_not_present=_bool_param(call, "card_not_present"),
        abroad=_bool_param(call, "abroad"),
    )


async def _wallet_events(call: Call) -> Any:
    return await call.service.wallet_events(_int_param(call, "after_id"), _int_param(call, "limit"))


async def _journal_totals(call: Call) -> Any:
    return await call.service.journal_totals(**_period(call))


async def _account_holds(call: Call) -> Any:
    return await call.service.account_holds(call.path["account_id"])


async def _account_statement(call: Call) -> Any:
    return await call.service.account_statement(call.path["account_id"], **_period(call))


async def _compare_models(call: Call) -> Any:
    thresholds = {
        name: _int_param(call, name) if call.query.get(name) else None
        for name in ("champion_threshold", "challenger_threshold")
    }
    return await call.service.compare_models(**_period(call), **thresholds)


async def _model_drift(call: Call) -> Any:
    return await call.service.model_drift(
        **_period(call),
        model=call.query.get("model", ""),
        reference_day=call.query.get("reference_day", ""),
        reference_since=_float_param(call, "reference_since"),
        reference_until=_float_param(call, "reference_until"),
        watch=_number_param(call, "watch"),
        act=_number_param(call, "act"),
        segment=_choice_param(call, "segment"),
    )


async def _common_points(call: Call) -> Any:
    return await call.service.common_points(
        **_period(call),
        lookback_days=_int_param(call, "lookback_days"),
        min_cards=_int_param(call, "min_cards"),
        by=_choice_param(call, "by"),
        limit=_int_param(call, "limit"),
        offset=_int_param(call, "offset"),
    )


async def _rule_performance(call: Call) -> Any:
    return await call.service.rule_performance(**_period(call))


def _period(call: Call) -> dict[str, Any]:
    """A report's period from the query: a business ``day``, or ``since`` and ``until``."""
    day = call.query.get("day", "")
    return {"day": day, "since": _float_param(call, "since"), "until": _float_param(call, "until")}


async def _open_dispute(call: Call) -> Any:
    return await call.service.open_dispute(
        call.path["card_id"], _journal_id(call), call.body, idempotency_key=call.idempotency_key
    )


async def _resolve_dispute(call: Call) -> Any:
    return await call.service.resolve_dispute(call.path["dispute_id"], call.body)


async def _reconcile_dispute(call: Call) -> Any:
    return await call.service.reconcile_dispute(call.path["dispute_id"])


async def _get_dispute(call: Call) -> Any:
    return await call.service.get_dispute(call.path["dispute_id"])


async def _list_disputes(call: Call) -> Any:
    limit = _int_param(call, "limit")
    due = _int_param(call, "due_within_days") if call.query.get("due_within_days") else None
    disputes = await call.service.list_disputes(
        state=call.query.get("state", ""), limit=limit, after=call.query.get("after", ""),
        due_within_days=due, card_id=call.query.get("card_id", ""),
    )  # fmt: skip
    return {"disputes": disputes}


async def _charge_back_dispute(call: Call) -> Any:
    return await call.service.charge_back_dispute(call.path["dispute_id"], call.body)


async def _record_representment(call: Call) -> Any:
    return await call.service.record_representment(call.path["dispute_id"], call.body)


async def _pre_arbitrate_dispute(call: Call) -> Any:
    return await call.service.pre_arbitrate_dispute(call.path["dispute_id"], call.body)


async def _answer_pre_arbitration(call: Call) -> Any:
    return await call.service.answer_pre_arbitration(call.path["dispute_id"], call.body)


async def _arbitrate_dispute(call: Call) -> Any:
    return await call.service.arbitrate_dispute(call.path["dispute_id"], call.body)


async def _rule_arbitration(call: Call) -> Any:
    return await call.service.rule_arbitration(call.path["dispute_id"], call.body)


async def _chargebacks_filed(call: Call) -> Any:
    return await call.service.chargebacks_filed(**_period(call))


async def _import_representments(call: Call) -> Any:
    return await call.service.import_representments(call.body)


async def _fraud_reports(call: Call) -> Any:
    limit, after_id = _int_param(call, "limit"), _int_param(call, "after_id")
    reports = await call.service.fraud_reports(limit=limit, after_id=after_id)
    return {"reports": reports, "next_after_id": reports[-1]["report_id"] if reports else after_id}


async def _unfinished(call: Call) -> Any:
    return await call.service.unfinished()


async def _finish_unfinished(call: Call) -> Any:
    older_than = _int_param(call, "older_than_s")
    return await call.service.finish_unfinished(float(older_than))


async def _prune_idempotency(call: Call) -> Any:
    if not call.query.get("keep_days"):
        raise ServiceError("query parameter keep_days is required: the days of results to keep")
    return await call.service.prune_idempotency(_int_param(call, "keep_days"))


async def _verify_audit(call: Call) -> Any:
    return await call.service.verify_audit(expect_head=call.query.get("head", "").lower())


async def _audit(call: Call) -> Any:
    limit, after_id = _int_param(call, "limit"), _int_param(call, "after_id")
    subject = call.query.get("subject", "")
    newest = _choice_param(call, "order") == "newest"
    if call.query.get("order") == "oldest" and call.query.get("before_id"):
        raise InvalidRequest("before_id pages newest first: not with order=oldest")
    entries = await call.service.audit(
        subject=subject,
        limit=limit,
        after_id=after_id,
        newest_first=newest,
        before_id=_int_param(call, "before_id"),
        actor=call.query.get("actor", ""),
    )
    return {"audit": entries}


async def _list_names(call: Call) -> Any:
    return {"lists": await call.service.list_names()}


async def _get_list(call: Call) -> Any:
    return await call.service.get_list(call.path["name"])


async def _put_list(call: Call) -> Any:
    return await call.service.put_list(call.path["name"], call.body)


def _routes() -> list[Route]:
    routes = [
        Route(
            "GET",
            "/v1/products",
            _list_products,
            "List card products",
            tag="products",
            response=v.ProductList,
        ),
        Route(
            "POST",
            "/v1/products",
            _create_product,
            "Create a card product",
            write=True,
            body=rq.NewProduct,
            status=201,
            idempotent=True,
            tag="products",
            response=v.ProductView,
        ),
        Route(
            "GET",
            "/v1/products/{product_id}",
            _get_product,
            "One product",
            tag="products",
            response=v.ProductView,
        ),
        Route(
            "PATCH",
            "/v1/products/{product_id}",
            _update_product,
            "Change a live product's name, limits, channels, blocked MCCs and countries, "
            "validity or chip counter jump limit (the next authorisation sees it); audited",
            write=True,
            body=rq.ProductChange,
            tag="products",
            response=v.ProductView,
        ),
        Route(
            "PUT",
            "/v1/products/{product_id}/limits",
            _set_product_limits,
            "Set the product's whole set of limits (those not given: no limit; PATCH with "
            "`limits` changes the named ones and keeps the others); audited",
            write=True,
            body=rq.LimitsSpec,
            tag="products",
            response=v.ProductView,
        ),
        Route(
            "GET",
            "/v1/accounts",
            _list_accounts,
            "List accounts",
            query=("limit", "offset"),
            tag="accounts",
            response=v.AccountList,
        ),
        Route(
            "POST",
            "/v1/accounts",
            _create_account,
            "Open an account",
            write=True,
            body=rq.NewAccount,
            status=201,
            idempotent=True,
            tag="accounts",
            response=v.AccountView,
        ),
        Route(
            "GET",
            "/v1/accounts/{account_id}",
            _get_account,
            "One account",
            tag="accounts",
            response=v.AccountView,
        ),
        Route(
            "POST",
            "/v1/accounts/{account_id}/close",
            _close_account,
            "Close an account: cancel every live card on it, once nothing is held, owed or "
            "disputed",
            write=True,
            body=rq.CardAction,
            body_optional=True,
            tag="accounts",
            response=v.AccountClosed,
        ),
        Route(
            "POST",
            "/v1/accounts/{account_id}/ledger-balance",
            _sync_ledger,
            "Set the balance to the bank's ledger balance through a journal id, plus what the "
            "host journalled after it",
            write=True,
            body=rq.LedgerBalance,
            tag="accounts",
            response=v.LedgerSynced,
        ),
        Route(
            "POST",
            "/v1/accounts/{account_id}/funds",
            _change_funds,
            "Load funds (positive) or take them off (negative); with an Idempotency-Key, once",
            write=True,
            idempotent=True,
            body=rq.FundsChange,
            tag="accounts",
            response=v.AccountView,
        ),
        Route(
            "PUT",
            "/v1/accounts/{account_id}/credit-limit",
            _set_credit_limit,
            "Set a credit account's limit, or a debit account's arranged overdraft",
            write=True,
            body=rq.CreditLimitChange,
            tag="accounts",
            response=v.AccountView,
        ),
        Route(
            "GET",
            "/v1/accounts/{account_id}/holds",
            _account_holds,
            "The holds that keep the account's money from being spent, each with the "
            "authorisation behind it and when it expires",
            tag="accounts",
            response=v.AccountHolds,
        ),
        Route(
            "GET",
            "/v1/accounts/{account_id}/statement",
            _account_statement,
            "What moved the account's money in a day or period: holds, postings, refunds and "
            "reversals, each with its card, merchant and approval code, and their sums",
            query=("day", "since", "until"),
            tag="accounts",
            response=v.AccountStatement,
        ),
        Route(
            "GET",
            "/v1/cards",
            _list_cards,
            "List cards",
            query=("account_id", "state", "last4", "name", "limit", "offset"),
            tag="cards",
            response=v.CardList,
        ),
        Route(
            "POST",
            "/v1/cards",
            _issue_card,
            "Issue (produce) a card: state created, masked PAN returned",
            write=True,
            body=rq.IssueCard,
            status=201,
            idempotent=True,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "GET",
            "/v1/cards/expiring",
            _expiring_cards,
            "Live cards without a successor expiring in each of the next months: the renewal "
            "runs to plan",
            query=("months",),
            tag="cards",
            response=v.ExpiringCards,
        ),
        Route(
            "POST",
            "/v1/cards/compromised",
            _compromise_alert,
            "A network's compromise alert: this issuer's live cards among the PANs (or the "
            "card ids, as a common point of purchase report lists them) are put on a rules list "
            "(watch), suspended or reissued; the others counted; the PANs never kept",
            write=True,
            body=rq.CompromiseAlert,
            tag="cards",
            response=v.CompromiseReport,
        ),
        Route(
            "GET",
            "/v1/cards/dormant",
            _dormant_cards,
            "Active cards not used for `days` (or since `unused_since`, epoch seconds): no "
            "journal entry since, or never used since their activation; each with last_used",
            query=("days", "unused_since"),
            tag="cards",
            response=v.DormantCards,
        ),
        Route(
            "POST",
            "/v1/cards/dormant/suspend",
            _suspend_dormant,
            "Suspend the active cards not used for `days` (or since `unused_since`), each with "
            "reason dormant (audited); the cardholder's bank resumes one when asked",
            write=True,
            body=rq.NoFields,
            body_optional=True,
            query=("days", "unused_since"),
            tag="cards",
            response=v.DormantCards,
        ),
        Route(
            "POST",
            "/v1/cards/renewals",
            _renew_expiring,
            "The monthly renewal run: renew every live card expiring in a month (or, with "
            "dry_run, list them)",
            write=True,
            body=rq.RenewalRun,
            tag="cards",
            response=v.RenewalRunView,
        ),
        Route(
            "POST",
            "/v1/cards/search",
            _find_card,
            "Find the current card for a PAN (PAN in the body, never in the URL)",
            body=rq.CardSearch,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "GET", "/v1/cards/{card_id}", _get_card, "One card", tag="cards", response=v.CardView
        ),
        Route(
            "POST",
            "/v1/cards/{card_id}/personalise",
            _personalise,
            "Set cardholder name, account link, delivery address reference",
            write=True,
            body=rq.Personalise,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "PUT",
            "/v1/cards/{card_id}/limits",
            _set_limits,
            "Set the card's own limits (override the product's; all null removes them)",
            write=True,
            body=rq.LimitsSpec,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "PUT",
            "/v1/cards/{card_id}/controls",
            _set_card_controls,
            "Switch channels, merchant categories or countries off on one card (the "
            "cardholder's own controls, on top of the product's; all empty removes them)",
            write=True,
            body=rq.CardControlsSpec,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "PUT",
            "/v1/cards/{card_id}/chip-scripts",
            _set_chip_scripts,
            "Queue issuer script commands for the card's chip (application_block, "
            "application_unblock, pin_unblock), sent with its next online request; an empty "
            "list withdraws them",
            write=True,
            body=rq.ChipScriptsSpec,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "PUT",
            "/v1/cards/{card_id}/travel-notices",
            _set_travel_notices,
            "Set the card's travel notices (all of them; [] removes them): rules read whether "
            "one covers a request's country that day as card.travel_notice",
            write=True,
            body=rq.TravelNotices,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "POST",
            "/v1/cards/{card_id}/tokens",
            _add_token,
            "Register a payment token the network's token service issued for the card (a "
            "wallet, a merchant's card on file): payments with it (field 48 SE 33) are the "
            "card's while it is active; an unknown, suspended or deleted token is declined 62. "
            "The number is kept as its keyed index and last four digits",
            write=True,
            body=rq.NewToken,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "POST",
            "/v1/token-requests",
            _token_request,
            "The issuer's answer to a wallet's token request, for the network's token service: "
            "approved (the token is active), authentication_required (it waits, suspended, for "
            "the cardholder's one-time code; then set it active) or declined, with reasons. The "
            "card is found by its PAN; the card data and the wallet's device and account "
            "scores decide (cards.provisioning)",
            write=True,
            body=rq.TokenRequest,
            tag="cards",
            response=v.TokenRequestAnswer,
        ),
        Route(
            "PUT",
            "/v1/cards/{card_id}/tokens/{token_ref}",
            _set_token_state,
            "Suspend (a lost phone), resume or delete (final) one of the card's tokens; the "
            "plastic and the other tokens are unaffected",
            write=True,
            body=rq.TokenChange,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "PUT",
            "/v1/cards/{card_id}/stop-payments",
            _set_stop_payments,
            "Set the card's stop payments (all of them; [] withdraws them): a merchant-initiated "
            "charge (field 48 SE 22 SF 05 M...) from a stopped merchant is declined R1, from any "
            'merchant with merchant_id "*" R3, through the stop\'s until day',
            write=True,
            body=rq.StopPayments,
            tag="cards",
            response=v.CardView,
        ),
        Route(
            "PUT",
            "/v1/cards/{card_id}/pin",
            _set_pin,
            "Set or reset the PIN from an encrypted PIN block",
            write=True,
            body=rq.PinChange,
            tag="pin",
            response=v.CardView,
        ),
        Route(
            "POST",
            "/v1/cards/{card_id}/pin/unlock",
            _unlock_pin,
            "Reset the wrong-PIN counter",
            write=True,
            body=rq.NoFields,
            body_optional=True,
            tag="pin",
            response=v.CardView,
        ),
        Route(
            "GET",
            "/v1/cards/{card_id}/journal",
            _card_journal,
            "The card's authorisation history",
            query=("limit", "after_id"),
            tag="journal",
            response=v.JournalList,
        ),
        Route(
            "GET",
            "/v1/cards/{card_id}/timeline",
            _card_timeline,
            "The card's case timeline, newest first: its authorisations, reversals and "
            "advices, every audited change (lifecycle, PIN, limits, tokens, lookups), fraud "
            "reports and disputes, with the cards it succeeds and that succeed it (renewals, "
            "replacements, reissues) unless chain=false; each event with its time, kind, card, "
            "masked PAN, a one-line summary and the ids to drill into; page on with "
            "before=next_before",
            query=("day", "since", "until", "before", "limit", "chain"),
            tag="journal",
            response=v.CardTimelineView,
            query_own=(
                (
                    "limit",
                    _LIMIT.but(
                        description=f"events, 1-{TIMELINE_MAX:,} (default {TIMELINE_LIMIT})",
                        default=TIMELINE_LIMIT,
                        maximum=TIMELINE_MAX,
                    ),
                ),
            ),
        ),
        Route(
            "POST",
            "/v1/clearing",
            _import_clearing,
            "Post a clearing file's presentments against their authorisations (or match them)",
            write=True,
            body=rq.ClearingImport,
            tag="journal",
        ),
        Route(
            "GET",
            "/v1/cards/{card_id}/journal/{journal_id}/explain",
            _explain_entry,
            "Why the model scored a journalled transaction so: its features, score and reasons",
            query=("model",),
            tag="journal",
        ),
        Route(
            "GET",
            "/v1/cards/{card_id}/journal/{journal_id}/rules",
            _explain_rules,
            "What each rule of the server's rules file makes of a journalled transaction: "
            "matched or not, with the values of the variables it reads, the set's outcome, "
            "and what the journal recorded; rules_ran is false for a request declined before "
            "the fraud step, where no rule ran",
            tag="journal",
        ),
        Route(
            "POST",
            "/v1/cards/{card_id}/journal/{journal_id}/fraud-report",
            _report_fraud,
            "Report a journalled transaction as fraud (or genuine): the label training reads",
            write=True,
            body=rq.FraudReportSpec,
            tag="journal",
            response=v.FraudReportView,
        ),
        Route(
            "POST",
            "/v1/cards/{card_id}/journal/{journal_id}/cardholder-answer",
            _answer_alert,
            "The cardholder's answer to an alert about a payment, for the notification service: "
            "it was them (labelled genuine; the card gets a pass so that a retry at that "
            "merchant, up to that amount, is not declined as suspected fraud) or it was not "
            "(labelled fraud; the card is suspended, and with reissue reissued under a new PAN)",
            write=True,
            body=rq.CardholderAnswer,
            tag="journal",
            response=v.CardholderAnswerView,
        ),
        Route(
            "GET",
            "/v1/reviews",
            _review_queue,
            "Transactions the rules flagged for review, with their verdict so far",
            query=("show", "declined", "limit", "after_id"),
            tag="journal",
            response=v.ReviewQueue,
        ),
        Route(
            "GET",
            "/v1/acceptors",
            _busiest_acceptors,
            "The merchants or terminals with the most of one counter over the last 10 minutes "
            "or hour (card testing now), from the journal",
            query=("by", "of", "limit"),
            tag="journal",
            response=v.BusiestAcceptors,
            query_own=(
                (
                    "limit",
                    _LIMIT.but(description="how many to list, 1-1000 (default 20)", default=20),
                ),
            ),
        ),
        Route(
            "GET",
            "/v1/journal",
            _find_entries,
            "The journal entries of a day or period with a retrieval reference number (field "
            "37): what was answered when a switch asks about a transaction",
            query=("rrn", "day", "since", "until"),
            tag="journal",
            response=v.JournalList,
        ),
        Route(
            "GET",
            "/v1/journal/movements",
            _money_movements,
            "The money movements after journal id `after_id`, in journal order, for the core "
            "banking ledger: each entry that moved money (hold, post, credit, release, "
            "take_back), once it is 2 s old; poll again with next_after_id",
            query=("after_id", "limit"),
            tag="journal",
            response=v.MoneyMovements,
            query_own=(("limit", FEED_LIMIT),),
        ),
        Route(
            "GET",
            "/v1/journal/alerts",
            _cardholder_alerts,
            "The cardholder alerts after journal id `after_id`, in journal order, for the "
            "notification service (SMS, push): always a payment declined as suspected fraud "
            "(59), a lost or stolen card used (41, 43), the PIN locked (75), money received, a "
            "payment from a wallet token under a day old; "
            "and approvals at or above `amount_minor`, without the card present "
            "(`card_not_present=true`) or abroad (`abroad=true`). Once 2 s old; poll again with "
            "next_after_id",
            query=("after_id", "limit", "amount_minor", "card_not_present", "abroad"),
            tag="journal",
            response=v.CardholderAlerts,
            query_own=(("limit", FEED_LIMIT),),
        ),
        Route(
            "GET",
            "/v1/wallet-events",
            _wallet_events,
            "Token events after audit id `after_id`, in audit order, for the notification "
            "service: a card added to a wallet, asked for (approved, waiting for a code, or "
            "declined), a token activated, suspended or deleted. The cardholder hears of a card "
            "put in a phone before its first payment; poll again with next_after_id",
            query=("after_id", "limit"),
            tag="cards",
            response=v.WalletEvents,
            query_own=(("limit", FEED_LIMIT),),
        ),
        Route(
            "GET",
            "/v1/journal/totals",
            _journal_totals,
            "A business day's (or a period's) totals for reconciliation: holds, postings, "
            "refunds and reversals per currency and acquirer, declines by response code",
            query=("day", "since", "until"),
            tag="journal",
            response=v.JournalTotals,
        ),
        Route(
            "GET",
            "/v1/models/compare",
            _compare_models,
            "The champion against the challenger over the requests both scored in a day or "
            "period: alerts, reported frauds caught, agreement",
            query=("day", "since", "until", "champion_threshold", "challenger_threshold"),
            tag="journal",
            response=v.ModelComparison,
        ),
        Route(
            "GET",
            "/v1/models/drift",
            _model_drift,
            "Is the model still seeing the traffic it was trained on? Each feature's and the "
            "score's Population Stability Index over the requests it scored in a day or "
            "period, against the artifact's reference (its held-out training days) or a "
            "reference period, most drifted first: stable, watch, act",
            query=(
                "day",
                "since",
                "until",
                "model",
                "reference_day",
                "reference_since",
                "reference_until",
                "watch",
                "act",
                "segment",
            ),  # fmt: skip
            tag="journal",
            response=v.ModelDrift,
        ),
        Route(
            "GET",
            "/v1/rules/performance",
            _rule_performance,
            "What each rule did in a day or period, as the journal recorded it: matches, "
            "approved, declined (and by the rule itself), let through by a cardholder's pass, "
            "reviewed, and the fraud reports on its matches: fraud, genuine (the cardholders' "
            "'it was me'), declined genuine (and of those the rule's own declines, which "
            "order the rules), precision",
            query=("day", "since", "until"),
            tag="journal",
            response=v.RulePerformanceReport,
        ),
        Route(
            "GET",
            "/v1/fraud/common-points",
            _common_points,
            "Common point of purchase: the merchants (by=terminal: terminals) where the cards "
            "whose first fraud fell in the period had an approved purchase in the lookback_days "
            "before it, by fraud cards and lift over the base rate, and the cards that visited "
            "the top ones with no fraud yet (masked PANs): the ones to watch or reissue",
            query=("day", "since", "until", "lookback_days", "min_cards", "by", "limit", "offset"),
            tag="journal",
            response=v.CommonPointsReport,
            query_own=(
                (
                    "by",
                    Param(
                        "string",
                        "merchant (field 42, the default) or terminal (fields 42 and 41)",
                        "merchant",
                        enum=("merchant", "terminal"),
                    ),
                ),
                ("limit", _LIMIT.but(description="rows, 1-1000 (default 20)", default=20)),
            ),
        ),
        Route(
            "POST",
            "/v1/cards/{card_id}/journal/{journal_id}/dispute",
            _open_dispute,
            "Open the cardholder's dispute of a posted transaction, with a provisional credit "
            "unless provisional_credit is false: both recorded, or neither; with an "
            "Idempotency-Key, once",
            write=True,
            body=rq.DisputeOpen,
            tag="disputes",
            idempotent=True,
            response=v.DisputeView,
        ),
        Route(
            "POST",
            "/v1/disputes/{dispute_id}/resolve",
            _resolve_dispute,
            "Close a dispute: won (the money stays with the cardholder), lost or withdrawn (a "
            "provisional credit is taken back); once charged back, for the stages' amounts: won "
            "keeps the chargeback, lost what the representment accepted, withdrawn nothing (a "
            "recall in the chargebacks file); the same outcome again answers it as it stands "
            "(and audits it if its entry is missing)",
            write=True,
            body=rq.DisputeResolution,
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "POST",
            "/v1/disputes/{dispute_id}/reconcile",
            _reconcile_dispute,
            "Set the acquirer's reversals of the charge against an open dispute now (the "
            "server does it every minute): the disputed amount shrinks to what the charge "
            "still takes, a provisional credit above it is taken back, and a charge reversed "
            "whole closes the dispute reversed; a dispute resolved won or lost whose charge "
            "was reversed since: what the cardholder holds twice is taken back",
            write=True,
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "POST",
            "/v1/disputes/{dispute_id}/chargeback",
            _charge_back_dispute,
            "File an open dispute's chargeback with the network: a reason code that fits the "
            "dispute's reason and the card's network (default: its usual one), at most the "
            "disputed amount, within [admin] chargeback_days of the charge; the same again "
            "changes nothing",
            write=True,
            body=rq.DisputeChargeback,
            body_optional=True,
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "POST",
            "/v1/disputes/{dispute_id}/represented",
            _record_representment,
            "Record the acquirer's representment (second presentment) of a charged-back "
            "dispute: its date, reference and amount, within [admin] representment_days of the "
            "chargeback; the same again changes nothing",
            write=True,
            body=rq.DisputeRepresentment,
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "POST",
            "/v1/disputes/{dispute_id}/pre-arbitration",
            _pre_arbitrate_dispute,
            "Answer a representment with pre-arbitration, for at most the amount represented "
            "(default: all of it), within [admin] pre_arbitration_days of it; the same again "
            "changes nothing",
            write=True,
            body=rq.DisputePreArbitration,
            body_optional=True,
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "POST",
            "/v1/disputes/{dispute_id}/pre-arbitration-answer",
            _answer_pre_arbitration,
            "Record the acquirer's answer to the pre-arbitration: accepted (all of it), "
            "accepted_in_part (amount_minor) or declined, within [admin] "
            "pre_arbitration_answer_days of it; accepted, the resolution leaves the cardholder "
            "what it accepted; declined, the issuer may file arbitration; the same again "
            "changes nothing",
            write=True,
            body=rq.DisputePreArbitrationAnswer,
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "POST",
            "/v1/disputes/{dispute_id}/arbitration",
            _arbitrate_dispute,
            "File arbitration with the network after the acquirer declined the pre-arbitration "
            "(or accepted only part of it: for the rest), within [admin] arbitration_days of "
            "its answer; the same again changes nothing",
            write=True,
            body=rq.DisputeArbitration,
            body_optional=True,
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "POST",
            "/v1/disputes/{dispute_id}/arbitration-ruling",
            _rule_arbitration,
            "Record the network's ruling on an arbitration, which resolves the dispute won or "
            "lost with a resolution's money movement, and its fee (fee_minor, fee_currency; "
            "default [admin] arbitration_fee_minor), borne by the losing party; the same ruling "
            "again changes nothing",
            write=True,
            body=rq.DisputeArbitrationRuling,
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "GET",
            "/v1/disputes/chargebacks",
            _chargebacks_filed,
            "The chargebacks filed in a business day or period, and the recalls of disputes "
            "withdrawn (or lost before any representment) in it after their chargeback, and of "
            "the part a reversal made the chargeback claim twice (open or resolved), for the "
            "networks' dispute systems: dispute id, ARN as journalled, masked PAN, amount, "
            "currency, network, reason code, date, action (chargeback or recall), when "
            "recalled, at which stage",
            query=("day", "since", "until"),
            tag="disputes",
            response=v.ChargebacksFiled,
        ),
        Route(
            "POST",
            "/v1/disputes/representments",
            _import_representments,
            "Record a file of the acquirers' representments (CSV, a line per dispute id or "
            "ARN): each line on its own, a refused one reported with its number and reason "
            "and nothing of it written",
            write=True,
            body=rq.RepresentmentsImport,
            tag="disputes",
            response=v.RepresentmentsImported,
        ),
        Route(
            "GET",
            "/v1/disputes",
            _list_disputes,
            "Disputes, oldest first (state: open, won, lost, withdrawn, reversed); with "
            "due_within_days, the open ones the issuer must act on within that many days "
            "(overdue ones too), soonest limit first",
            query=("state", "limit", "after", "due_within_days", "card_id"),
            query_own=(
                ("state", Param("string", "only disputes in this state", enum=DISPUTE_STATES)),
            ),
            tag="disputes",
            response=v.DisputeList,
        ),
        Route(
            "GET",
            "/v1/disputes/{dispute_id}",
            _get_dispute,
            "One dispute",
            tag="disputes",
            response=v.DisputeView,
        ),
        Route(
            "GET",
            "/v1/fraud-reports",
            _fraud_reports,
            "Fraud reports in the order they were written, after report_id after_id: a late "
            "report on an old entry, or a changed verdict, comes after those read before",
            query=("limit", "after_id"),
            tag="journal",
            response=v.FraudReportList,
            query_own=(
                (
                    "after_id",
                    _AFTER_ID.but(
                        description="return the reports written after this report_id (paging: "
                        "next_after_id)"
                    ),
                ),
            ),
        ),
        Route(
            "GET",
            "/v1/audit",
            _audit,
            "Audit log of changes: oldest first (after_id pages on), or with order=newest "
            "newest first (before_id pages back)",
            query=("subject", "actor", "limit", "after_id", "order", "before_id"),
            tag="audit",
            response=v.AuditList,
        ),
        Route(
            "GET",
            "/v1/audit/verify",
            _verify_audit,
            "Check the audit log's hash chain: every entry as written, none removed",
            query=("head",),
            tag="audit",
            response=v.AuditVerification,
        ),
        Route(
            "GET",
            "/v1/store/unfinished",
            _unfinished,
            "Work a crash or a store outage cut short and not finished yet (activations that "
            "hand over, dispute openings whose credit posted), with its age",
            tag="store",
            response=v.UnfinishedWork,
        ),
        Route(
            "POST",
            "/v1/store/finish",
            _finish_unfinished,
            "Finish that work now (the server does it every 5 minutes): each write once, "
            "audited; busy while another process is finishing",
            write=True,
            query=("older_than_s",),
            tag="store",
            response=v.FinishRun,
        ),
        Route(
            "POST",
            "/v1/store/prune-idempotency",
            _prune_idempotency,
            "Delete the results of requests made with an Idempotency-Key more than keep_days "
            "ago (the server does it daily, [admin] idempotency_keep_days): a repeat of one is "
            "a new request from then on; markers stay (a closed account's). Audited",
            write=True,
            query=("keep_days",),
            tag="store",
            response=v.IdempotencyPruned,
        ),
        Route(
            "GET",
            "/v1/lists",
            _list_names,
            "Names of the fraud rules' lists",
            tag="lists",
            response=v.ListNames,
        ),
        Route(
            "GET",
            "/v1/lists/{name}",
            _get_list,
            "One named list",
            tag="lists",
            response=v.NamedList,
        ),
        Route(
            "PUT",
            "/v1/lists/{name}",
            _put_list,
            "Replace a named list",
            write=True,
            body=rq.ListValues,
            tag="lists",
            response=v.NamedList,
        ),
    ]
    for action, summary in LIFECYCLE_ACTIONS.items():
        routes.append(
            Route(
                "POST",
                f"/v1/cards/{{card_id}}/{action}",
                _lifecycle(action),
                summary,
                write=True,
                body=rq.CardAction,
                body_optional=True,
                tag="cards",
                response=v.CardView,
                idempotent=action in SUCCESSOR_ACTIONS,  # they make a card: once per key
            )
        )
    return routes


ROUTES: list[Route] = _routes()


class AdminApi:
    """Routes a request to its handler as the authenticated caller."""

    def __init__(
        self, service: CardService, tokens: TokenTable, lockout: AdminLockout | None = None
    ) -> None:
        self.service = service
        self.tokens = tokens
        self.lockout = lockout if lockout is not None else AdminLockout()
        self.routes = ROUTES
        self._openapi = json.dumps(openapi_document(self.routes)).encode()

    async def handle(self, request: ApiRequest) -> ApiResponse:
        caller: list[Principal] = []  # the authenticated caller, once known, refused or not
        path = urlsplit(request.target).path
        host = peer_host(request.peer)
        wait = self.lockout.retry_after(host)
        try:
            if wait:  # locked out: no token is checked, a right one neither
                raise AuthFailure(429, "too many invalid tokens from this address; try later")
            response = await self._dispatch(request, caller)
        except AuthFailure as failure:
            headers = {"www-authenticate": "Bearer"} if failure.status == 401 else {}
            if failure.status == 429:
                headers = {"retry-after": str(wait)}
            elif (
                failure.status == 401
                and self.tokens.by_digest
                and request.headers.get("authorization")
            ):
                self._failed(host, request.peer)
            response = error_response(failure.status, failure.message)
            response.headers.update(headers)
        except ServiceError as error:
            response = error_response(error.status, error.message, error.details)
        except SecurityError as error:  # missing key, key store problem: messages are safe
            log.error("admin API: security module: %s", error)
            response = error_response(503, f"security module: {error}")
        except Exception as error:
            backend = getattr(self.service.store, "backend_errors", ())
            if isinstance(error, (StoreUnavailable, *backend)):
                # a full disk, Redis out of memory or unreachable: not the request's fault
                text = mask_pans_in_text(f"{error}"[:300]) or type(error).__name__
                log.error("admin API: %s %s: the store failed: %s", _safe(request.method),
                          _safe(path), text)  # fmt: skip
                response = error_response(503, f"the store failed; try again: {text}")
            else:
                log.exception(
                    "admin API: unexpected error on %s %s", _safe(request.method), _safe(path)
                )
                response = error_response(500, "internal error; see the server log")
        log.info(
            "%s %s -> %d (%s)",
            _safe(request.method),
            _safe(path),
            response.status,
            caller[0].name if caller else "-",
            extra={"fields": {"peer": request.peer}} if request.peer else None,
        )
        return response

    def _failed(self, host: str, peer: str) -> None:
        """A wrong token counted against its address; the lockout it starts logged once (the
        address, never the token)."""
        if self.lockout.failed(host):
            log.warning(
                "admin API: %s locked out for %d s after %d invalid tokens",
                _safe(host), self.lockout.lockout_s, self.lockout.failures,
                extra={"fields": {"peer": peer}},
            )  # fmt: skip

    async def _dispatch(self, request: ApiRequest, caller: list[Principal]) -> ApiResponse:
        parts = urlsplit(request.target)
        path = parts.path.rstrip("/") or "/"
        if path == "/openapi.json" and request.method in ("GET", "HEAD"):
            return ApiResponse(200, self._openapi)
        route, params, allowed = self._match(request.method, path)
        if route is None:
            if allowed:
                response = error_response(405, f"method {request.method} not allowed here")
                response.headers["allow"] = ", ".join(sorted(allowed))
                return response
            return error_response(404, "no such endpoint; see /openapi.json")

        principal = self.tokens.authenticate(request.headers.get("authorization"))
        caller.append(principal)
        if route.write and not principal.can_write:
            raise AuthFailure(403, f"role {principal.role.value} may not change data")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(query) - set(route.query))
        if unknown:
            raise ServiceError(f"unknown query parameter(s): {', '.join(unknown)}")
        call = Call(
            service=self.service.acting_as(principal.name),
            path=params,
            query=query,
            body=self._body(route, request),
            idempotency_key=_idempotency_key(route, request),
            params=route.query_params,
        )
        result = await route.handler(call)
        return json_response(route.status, result)

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], set[str]]:
        allowed: set[str] = set()
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                # matched on the path as sent, then decoded: "core%3A0001" is the account
                # "core:0001", and a decoded "/" stays inside its parameter
                params = {name: unquote(value) for name, value in found.groupdict().items()}
                return route, params, allowed
            allowed.add(route.method)
        return None, {}, allowed

    @staticmethod
    def _body(route: Route, request: ApiRequest) -> Any:
        if route.body is None:
            return None
        if not request.body.strip():
            if route.body_optional:
                return route.body()
            raise ServiceError("a JSON body is required")
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type.lower():
            raise ServiceError("the body must be JSON (Content-Type: application/json)")
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise ServiceError("the body is not valid JSON") from None
        except RecursionError:  # nested deeper than the parser goes: no request needs it
            raise ServiceError("the body's JSON is nested too deeply") from None
        if not isinstance(data, dict):
            raise ServiceError("the body must be a JSON object")
        try:
            return route.body.model_validate(data)
        except ValidationError as exc:
            raise invalid_request(exc) from None


def _idempotency_key(route: Route, request: ApiRequest) -> str:
    key = request.headers.get("idempotency-key", "").strip()
    if key and not route.idempotent:
        raise ServiceError("Idempotency-Key is only accepted on creates and funds changes")
    if len(key) > 200:
        raise ServiceError("Idempotency-Key is longer than 200 characters")
    return key


def _safe(path: str) -> str:
    """A request's path for the log: percent-decoded (a PAN written %34%37%36... is still one)
    before masking, with what is not printable escaped (a decoded %0A ends no log line)."""
    decoded = unquote(path, errors="replace")
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in decoded)
    return mask_pans_in_text(shown)[:200]
