"""A reversal that changes the card (a PIN change undone, a PIN unblock or the reversed answer's
chip scripts queued again) over a card another writer changed since its snapshot (a wrong PIN
counted, an operator's action, another answer): the change must not be dropped. The store
writes nothing of the reversal and says it is stale; the service decides it again on the card
as it is now. Before, the journal entry and the release were written and the card change was
silently left out: the cardholder's PIN stayed the one the ATM could not complete.

Real components only: the stores on a SQLite file and a real redis-server (and a one-node
Redis Cluster at store level); the other writer is another store opened on the same data, as
another process would, in a thread of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import trio
from iso_client import Switch, next_stan
from test_e2e_auth import (  # noqa: F401 - fixtures
    field_90,
    purchase,
    start_host,
    store_url,
    with_pin,
    wrong_pins,
)
from test_e2e_issuer_scripts import (
    chip_request,
    commands_in,
    expected_command,
    unblocked_at_an_atm,
)
from test_store_contract import (  # noqa: F401 - fixtures
    NOW,
    entry,
    hold,
    redis_cluster_url,
    seeded,
    store,
)

from authhost.auth.service import STALE_ROUNDS, AuthService
from authhost.cards.model import Limits
from authhost.iso.messages import AuthRequest, MessageClass
from authhost.security.pinblock import encrypt_pin_block
from authhost.store import opened_store
from authhost.store.interface import (
    CardStore,
    Commit,
    JournalQuery,
    MoneyMove,
    Movement,
    SnapshotQuery,
)

OPERATOR_LIMITS = Limits(per_transaction=77_700)
T = TypeVar("T")

# --- the store: a required card change over a moved card writes nothing ----------------------


def reversal_of(card, original: int, n: int, amount: int, undone) -> Commit:
    """The commit ``AuthService._reverse`` makes for the reversal (number ``n``) of the hold
    ``original``: its entry, the release, and the card it changes (required)."""
    key = entry(card, original).match_key
    return Commit(
        journal=entry(card, n, amount, mti="0400", message_class="reversal", match_key=key,
                      dedupe_key=f"040|{n:06d}|rrn{n}|T1|1125120000"),
        movement=Movement(card.account_id, MoneyMove.RELEASE, amount, require_funds=False,
                          match_key=key),
        card_id=card.card_id,
        delivered_card=undone,
        card_required=True,
    )  # fmt: skip


async def stans(of: CardStore) -> list[str]:
    return sorted(e.stan for e in await of.journal(JournalQuery(limit=100)))


async def test_a_required_card_change_over_a_changed_card_writes_nothing(store):  # noqa: F811
    """The card changed between the reversal's snapshot and its commit: nothing is written
    (no journal entry, no release, no card change) and the result is stale; decided again
    on the card as it is, the same reversal is written whole, the other change kept."""
    card, _ = await seeded(store, balance=5_000, pin_reference="1111")
    await store.commit(hold(card, 1, 1_000))
    query = SnapshotQuery(card.pan_index, NOW + 2, original_key=entry(card, 1).match_key)
    seen = (await store.snapshot(query)).card
    assert seen is not None
    operator = await store.update_card(replace(seen, limits=OPERATOR_LIMITS))  # meanwhile

    late = await store.commit(reversal_of(card, 1, 2, 1_000, replace(seen, pin_reference="2222")))
    assert late.stale
    assert await stans(store) == ["000001"]  # no entry for the reversal
    assert (await store.get_account(card.account_id)).holds == 1_000  # the hold untouched
    now = await store.get_card(card.card_id)
    assert (now.pin_reference, now.limits, now.version) == ("1111", OPERATOR_LIMITS,
                                                            operator.version)  # fmt: skip

    fresh = (await store.snapshot(query)).card
    assert fresh is not None and fresh.version == operator.version
    done = await store.commit(reversal_of(card, 1, 2, 1_000, replace(fresh, pin_reference="2222")))
    assert not done.stale and done.journal.response_code == "00"
    assert await stans(store) == ["000001", "000002"]
    assert (await store.get_account(card.account_id)).holds == 0
    now = await store.get_card(card.card_id)
    assert (now.pin_reference, now.limits) == ("2222", OPERATOR_LIMITS)
    # a retransmission of the written reversal is its duplicate, however stale its card
    again = await store.commit(reversal_of(card, 1, 2, 1_000, replace(seen, pin_reference="3")))
    assert again.duplicate_of is not None and not again.stale
    assert (await store.get_card(card.card_id)).pin_reference == "2222"


async def test_a_card_change_not_required_stays_best_effort(store):  # noqa: F811
    """An approval's delivered scripts over a moved card: written without the card change,
    as before (the commands go with the next answer); a required change over a card that is
    gone is stale too."""
    card, _ = await seeded(store, chip_scripts=("application_unblock",))
    seen = await store.get_card(card.card_id)
    await store.update_card(replace(seen, limits=OPERATOR_LIMITS))
    approval = replace(hold(card, 1, 100), delivered_card=replace(seen, chip_scripts=()))
    done = await store.commit(approval)
    assert not done.stale and done.journal.response_code == "00"
    now = await store.get_card(card.card_id)
    assert now.chip_scripts == ("application_unblock",) and now.limits == OPERATOR_LIMITS
    gone = replace(seen, card_id="no-such-card", chip_scripts=())
    assert (await store.commit(replace(hold(card, 2, 100), delivered_card=gone,
                                       card_required=True))).stale  # fmt: skip
    assert await stans(store) == ["000001"]


# --- the service: the reversal of a PIN change is decided again on the card as it is ---------


def elsewhere(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``function(*args)`` run to its end in a thread and an event loop of its own, as another
    process would: the caller's loop is blocked meanwhile."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(trio.run(function, *args))
        except BaseException as error:  # raised again in the caller's thread
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


class OperatorBeforeTheCommit:
    """``AuthService``'s shield hook, entered once a round's requests are decided and before
    their commit: here an operator in another process (its own store on the same data, run in
    a thread and an event loop of its own) changes the card, ``times`` rounds running.
    ``deadline`` (a cancel scope): cancelled on the last of them, as a request's deadline
    would be."""

    def __init__(self, url: str, card_id: str, times: int = 1) -> None:
        self.url, self.card_id = url, card_id
        self.left = times
        self.rounds = 0
        self.deadline: trio.CancelScope | None = None
        self.written: Any = None  # the card as the operator last left it

    def __call__(self) -> trio.CancelScope:
        self.rounds += 1
        if self.left:
            self.left -= 1
            self.written = elsewhere(self._operator)
            if not self.left and self.deadline is not None:
                self.deadline.cancel()
        return trio.CancelScope(shield=True)

    async def _operator(self) -> Any:
        async with opened_store(self.url) as other:
            card = await other.get_card(self.card_id)
            assert card is not None
            limits = replace(card.limits or Limits(), per_transaction=77_700 + self.rounds)
            return await other.update_card(replace(card, limits=limits))


def reversal_request(card: dict[str, Any], original: dict[str, Any], mti: str) -> AuthRequest:
    stan = next_stan()
    return AuthRequest(
        mti=mti,
        message_class=MessageClass.REVERSAL if mti == "0400" else MessageClass.REVERSAL_ADVICE,
        pan=card["pan"], processing_code=original["3"], transmission_time=original["7"],
        stan=stan, acquirer_id=original["32"], terminal_id=original["41"],
        merchant_id=original["42"], rrn=f"{int(stan):012d}", currency=card["currency"],
        original_data=field_90(original),
    )  # fmt: skip


async def changed_pin(nursery, tmp_path, url):
    """A host, its switch, the demo card, its PIN before and after a PIN change the host
    approved (over TCP), and that PIN change's fields."""
    host = await start_host(nursery, tmp_path, url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]  # Visa PVV: 4-digit PINs
    old, new = card["pin"], "4826" if card["pin"] != "4826" else "4827"
    change = with_pin(purchase(card, **{"3": "920000", "4": None, "18": "6011"}), host, card, old)
    change["125"] = encrypt_pin_block(host.zpk(), new, card["pan"]).hex().upper()
    assert (await switch.send(change))["39"] == "00"
    return host, switch, card, old, new, change


async def reversed_in_another_process(
    host: Any, hook: OperatorBeforeTheCommit, card: dict[str, Any], original: dict[str, Any]
) -> tuple[Any, AuthRequest]:
    """``original``'s 0400 decided by another process whose commit ``hook`` precedes with
    the operator's change: the decision (acknowledged) and the reversal."""
    service = another_process(host, hook)
    reversal = reversal_request(card, original, "0400")
    with trio.fail_after(10):
        (decision,) = await service.decide_many([reversal], time.time())
    assert str(decision.response_code) == "00"
    return decision, reversal


def another_process(host, hook: OperatorBeforeTheCommit) -> AuthService:
    """Another host process's decision service on the same store (reversals run no
    pipeline), ``hook`` its shield."""
    runtime = host.runtime
    return AuthService(runtime.store, runtime.security, None, None, shield=hook)  # type: ignore[arg-type]


async def card_id_of(host, card: dict[str, Any]) -> str:
    found = await host.runtime.store.find_card(host.runtime.security.pan_index(card["pan"]))
    return found.card_id


async def pays_with(switch: Switch, host, card: dict[str, Any], pin: str) -> bool:
    reply = await switch.send(with_pin(purchase(card, amount=100), host, card, pin))
    return reply["39"] == "00"


async def test_a_reversed_pin_change_over_a_changed_card_is_decided_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """An operator changes the card between the reversal's snapshot and its commit: the
    reversal is decided again on the card as it is, the old PIN is back and the operator's
    change stays. Before, the reversal was journalled as undoing the PIN change while the new
    PIN stayed on the card."""
    host, switch, card, old, new, change = await changed_pin(nursery, tmp_path, store_url)
    hook = OperatorBeforeTheCommit(store_url, await card_id_of(host, card))
    decision, reversal = await reversed_in_another_process(host, hook, card, change)
    assert "reversal.pin_change_undone" in decision.reason_codes
    assert await pays_with(switch, host, card, old)  # the old PIN is the card's again
    assert not await pays_with(switch, host, card, new)
    stored = await host.runtime.store.get_card(hook.card_id)
    assert stored.pin_change_key == "" and stored.limits == hook.written.limits
    entries = await host.runtime.store.journal(JournalQuery(limit=100))
    written = [e for e in entries if e.stan == reversal.stan]
    assert len(written) == 1 and "reversal.pin_change_undone" in written[0].reason_codes
    assert hook.rounds == 2  # stale once, then written on a new snapshot


async def test_a_reversal_that_keeps_finding_the_card_changed_stops_at_its_deadline(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The card changes before every commit, past the rounds after which velocity marks are
    dropped: the reversal is decided again each round and never written with its change
    left out. Its deadline ends it: no decision (the server answers the timeout code), one
    journal entry with that code and "deadline", nothing else of it written; the switch's
    repeat (0420) is decided afresh and undoes the PIN change."""
    host, switch, card, old, new, change = await changed_pin(nursery, tmp_path, store_url)
    card_id = await card_id_of(host, card)
    hook = OperatorBeforeTheCommit(store_url, card_id, times=STALE_ROUNDS + 5)
    service = another_process(host, hook)
    reversal = reversal_request(card, change, "0400")
    outcomes = None
    with trio.fail_after(60), trio.CancelScope() as deadline:
        hook.deadline = deadline
        outcomes = await service.decide_many([reversal], time.time())
    assert outcomes is None and hook.rounds == STALE_ROUNDS + 5
    assert await service.flush_pending() == 1
    entries = await host.runtime.store.journal(JournalQuery(limit=200))
    written = [e for e in entries if e.stan == reversal.stan]
    assert [(e.response_code, e.reason_codes, e.dedupe_key) for e in written] == [
        ("91", "deadline", "")
    ]
    assert (await host.runtime.store.get_card(card_id)).pin_change_key  # not undone
    assert await pays_with(switch, host, card, new)

    repeat = reversal_request(card, change, "0420")
    (decision,) = await service.decide_many([repeat], time.time())  # no one in the way now
    assert "reversal.pin_change_undone" in decision.reason_codes
    assert await pays_with(switch, host, card, old)


# --- the service: a reversal that queues chip commands again is decided again too -----------


class OperatorQueuesBeforeTheCommit(OperatorBeforeTheCommit):
    """As ``OperatorBeforeTheCommit``, and the operator queues ``command`` for the chip too."""

    def __init__(self, url: str, card_id: str, command: str) -> None:
        super().__init__(url, card_id)
        self.command = command

    async def _operator(self) -> Any:
        changed = await super()._operator()
        async with opened_store(self.url) as other:
            queued = (*changed.chip_scripts, self.command)
            return await other.update_card(replace(changed, chip_scripts=queued))


def written_for(entries, request: AuthRequest) -> list[Any]:
    return [e for e in entries if e.stan == request.stan]


async def test_a_reversed_atm_pin_unblock_over_a_changed_card_is_queued_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """An ATM's PIN unblock (processing code 91) whose answer carried PIN UNBLOCK for the chip
    is reversed while an operator changes the card: the reversal is stale once, then written
    on the card as it is, with PIN UNBLOCK queued again and the operator's change kept.
    Written with the card change left out, the chip would stay blocked offline."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-credit"]  # Visa CVN 10 with an IMK-SMI: sends issuer scripts
    [wrong] = wrong_pins(host, card)
    codes = [(await switch.send(with_pin(purchase(card), host, card, wrong)))["39"] for _ in "123"]
    assert codes == ["55", "55", "75"]
    atm, reply = await unblocked_at_an_atm(switch, host, card)
    card_id = await card_id_of(host, card)
    assert (await host.runtime.store.get_card(card_id)).chip_scripts == ()  # nothing waits

    hook = OperatorBeforeTheCommit(store_url, card_id)
    decision, reversal = await reversed_in_another_process(host, hook, card, atm)
    assert "reversal.pin_unblock_requeued" in decision.reason_codes
    stored = await host.runtime.store.get_card(card_id)
    assert stored.chip_scripts == ("pin_unblock",)  # queued again
    assert stored.limits == hook.written.limits  # the operator's change kept
    assert stored.version > hook.written.version
    written = written_for(await host.runtime.store.journal(JournalQuery(limit=100)), reversal)
    assert len(written) == 1 and "reversal.pin_unblock_requeued" in written[0].reason_codes
    assert hook.rounds == 2  # stale once, then written on a new snapshot

    # the chip's next online request carries the PIN UNBLOCK again
    fields, chip, arqc, atc = chip_request(host, card, purchase(card), 10, atc=0x22)
    reply = await switch.send(with_pin(fields, host, card, card["pin"]))
    assert reply["39"] == "00"
    assert commands_in(reply)[1] == [expected_command(chip, "pin_unblock", arqc, atc)]


async def test_a_reversed_answer_with_queued_scripts_over_a_changed_card_queues_them_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """A purchase whose answer carried the operator's queued APPLICATION UNBLOCK is reversed
    while an operator changes the card and queues PIN UNBLOCK: the reversal is stale once,
    then written on the card as it is: the hold released, APPLICATION UNBLOCK queued again
    after the operator's PIN UNBLOCK, the operator's limits kept."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-3624"]  # Mastercard CVN 16 with an IMK-SMI
    card_id = await card_id_of(host, card)
    db = host.runtime.store
    seen = await db.get_card(card_id)
    await db.update_card(replace(seen, chip_scripts=("application_unblock",)))  # operator
    holds = (await db.get_account(seen.account_id)).holds

    fields, chip, arqc, atc = chip_request(host, card, purchase(card, amount=1_200), 16, 0x60)
    reply = await switch.send(fields)
    assert reply["39"] == "00"
    assert commands_in(reply)[1] == [expected_command(chip, "application_unblock", arqc, atc)]
    sent = await db.get_card(card_id)
    assert sent.chip_scripts == () and sent.chip_scripts_sent == ("application_unblock",)
    assert (await db.get_account(seen.account_id)).holds == holds + 1_200

    hook = OperatorQueuesBeforeTheCommit(store_url, card_id, "pin_unblock")
    decision, reversal = await reversed_in_another_process(host, hook, card, fields)
    assert {"reversal.chip_scripts_requeued", "reversal.full"} <= set(decision.reason_codes)
    stored = await db.get_card(card_id)
    assert stored.chip_scripts == ("pin_unblock", "application_unblock")
    assert stored.chip_scripts_sent == () and stored.chip_scripts_sent_key == ""
    assert stored.limits == hook.written.limits  # the operator's change kept
    assert (await db.get_account(seen.account_id)).holds == holds  # released, once
    written = written_for(await db.journal(JournalQuery(limit=100)), reversal)
    assert len(written) == 1
    assert {"reversal.chip_scripts_requeued", "reversal.full"} <= set(
        written[0].reason_codes.split(";")
    )
    assert hook.rounds == 2  # stale once, then written on a new snapshot
