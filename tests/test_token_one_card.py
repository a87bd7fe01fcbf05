"""A wallet token number belongs to one card, on every store: registering one another card
holds (in any state but deleted, its successors' too) is refused 409 naming that card by id,
and of two cards registering one number at once, one wins (the store's hold on the number is
atomic, taken before the card's write)."""

from __future__ import annotations

import pytest
import trio
from test_activation_intents import any_store_args, reissued_with_tokens  # noqa: F401, F811
from test_admin_service import _clear_pan, _drive
from test_admin_support import open_service
from test_e2e_tokens import APPLE_PAY, GOOGLE_PAY, token_number
from test_store_contract import redis_cluster_url  # noqa: F401 - a fixture

from authhost.admin import requests as rq
from authhost.admin.errors import ConflictError
from authhost.admin.service import CardService


async def two_active_cards(service: CardService) -> tuple[str, str]:
    """Two active cards of one product, on two accounts (two cardholders)."""
    await service.create_product(
        rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit", bin="476173")
    )
    ids = []
    for account in ("a1", "a2"):
        await service.create_account(rq.NewAccount(account_id=account, balance=10_000))
        card = await service.issue_card(rq.IssueCard(product_id="p1", account_id=account))
        ids.append((await _drive(service, card["card_id"], ["ship", "activate"]))["card_id"])
    return ids[0], ids[1]


def registered(number: str, wallet: str = APPLE_PAY) -> rq.NewToken:
    return rq.NewToken(token_pan=number, requestor_id=wallet, expiry="3112")


def refusal(caught: pytest.ExceptionInfo, number: str) -> str:
    message = str(caught.value)
    assert number not in message and number[-4:] in message  # masked, as the views show it
    return message


async def test_a_number_another_card_holds_is_refused_until_it_is_deleted(any_store_args):  # noqa: F811
    async with open_service(*any_store_args) as service:
        first, second = await two_active_cards(service)
        number = token_number("501")
        card = await service.add_token(first, registered(number))
        [ref] = [t["token_ref"] for t in card["tokens"]]
        with pytest.raises(ConflictError) as caught:
            await service.add_token(second, registered(number, GOOGLE_PAY))
        assert f"registered on card {first}" in refusal(caught, number)
        suspended = rq.TokenChange(state="suspended", reason="phone lost")
        await service.set_token_state(first, ref, suspended)
        pan = await _clear_pan(service, second)
        expiry = (await service.get_card(second))["expiry"]
        asked = rq.TokenRequest(pan=pan, card_expiry=expiry, token_pan=number,
                                requestor_id=GOOGLE_PAY, device_score=5, account_score=5)  # fmt: skip
        with pytest.raises(ConflictError) as caught:  # a wallet's token request: the same
            await service.token_request(asked)
        assert f"registered on card {first}" in refusal(caught, number)
        assert pan not in str(caught.value)
        assert (await service.get_card(second))["tokens"] == []

        await service.set_token_state(first, ref, rq.TokenChange(state="deleted"))
        answer = await service.token_request(asked)  # deleted there: free for another card
        assert answer["decision"] != "declined" and answer["token_ref"] == ref  # no CVV2
        with pytest.raises(ConflictError) as caught:  # the first card has it (deleted) still
            await service.add_token(first, registered(number))
        assert second not in refusal(caught, number)


async def test_a_token_a_successor_took_over_is_its_own(any_store_args):  # noqa: F811
    """The card that registered the number was reissued and its successor took the token
    over at its activation: the successor is named."""
    async with open_service(*any_store_args) as service:
        old, new, _ = await reissued_with_tokens(service)
        await service.apply(new["card_id"], "activate")
        await service.create_account(rq.NewAccount(account_id="a9", balance=0))
        other = await service.issue_card(rq.IssueCard(product_id="p1", account_id="a9"))
        number = token_number("901")
        with pytest.raises(ConflictError) as caught:
            await service.add_token(other["card_id"], registered(number))
        assert f"registered on card {new['card_id']}" in refusal(caught, number)


async def test_of_two_cards_registering_one_number_at_once_one_wins(any_store_args):  # noqa: F811
    """The first card's write is held after its hold on the number was taken: the second
    card is refused meanwhile and after, and only the first card has the token."""
    async with open_service(*any_store_args) as service:
        first, second = await two_active_cards(service)
        number = token_number("502")
        store, update_card = service.store, service.store.update_card
        holding, release = trio.Event(), trio.Event()

        async def held_update(card, *rest):
            if card.card_id == first and not release.is_set():
                holding.set()
                await release.wait()
            return await update_card(card, *rest)

        store.update_card = held_update  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.add_token, first, registered(number))
            await holding.wait()
            with pytest.raises(ConflictError) as caught:
                await service.add_token(second, registered(number, GOOGLE_PAY))
            assert f"being registered on card {first}" in refusal(caught, number)
            release.set()
        with pytest.raises(ConflictError) as caught:
            await service.add_token(second, registered(number, GOOGLE_PAY))
        assert f"registered on card {first}" in refusal(caught, number)
        assert len((await service.get_card(first))["tokens"]) == 1
        assert (await service.get_card(second))["tokens"] == []


async def test_a_registration_that_never_landed_holds_the_number_for_a_while(any_store_args):  # noqa: F811
    """A hold whose card write never came (the process died between them) gives way after
    ``TOKEN_HOLD_S``; one that failed is let go at once."""
    async with open_service(*any_store_args) as service:
        first, second = await two_active_cards(service)
        number = token_number("503")
        ref = service.security.pan_index(number)
        await service.store.claim_token(ref, first, service.clock() - 301.0)
        card = await service.add_token(second, registered(number))
        assert [t["token_ref"] for t in card["tokens"]] == [ref]
        with pytest.raises(ConflictError) as caught:  # now the second card's
            await service.add_token(first, registered(number))
        assert f"registered on card {second}" in refusal(caught, number)

        later = token_number("504")
        store, update_card = service.store, service.store.update_card

        async def stale(card, *rest):  # someone else changed the card meanwhile
            await update_card(await store.get_card(card.card_id))
            return await update_card(card, *rest)

        store.update_card = stale  # type: ignore[method-assign]
        with pytest.raises(ConflictError, match="changed by someone else"):
            await service.add_token(first, registered(later))
        store.update_card = update_card  # type: ignore[method-assign]
        card = await service.add_token(second, registered(later))  # let go: free at once
        assert len(card["tokens"]) == 2


async def test_sqlites_migration_holds_the_numbers_cards_had_before_it(tmp_path):
    """A file written before migration 42: its cards' live tokens are held for them."""
    import sqlite3

    number, gone = token_number("505"), token_number("506")
    async with open_service(tmp_path) as service:
        first, second = await two_active_cards(service)
        await service.add_token(first, registered(number))
        await service.add_token(first, registered(gone))
        ref_gone = service.security.pan_index(gone)
        await service.set_token_state(first, ref_gone, rq.TokenChange(state="deleted"))
    with sqlite3.connect(tmp_path / "authhost.db") as conn:  # as it was before migration 42
        conn.execute("DROP TABLE token_holders")
        conn.execute("PRAGMA user_version = 41")  # migration 42 to run again
    async with open_service(tmp_path) as service:
        with pytest.raises(ConflictError) as caught:
            await service.add_token(second, registered(number))
        assert f"registered on card {first}" in refusal(caught, number)
        card = await service.add_token(second, registered(gone))  # deleted there: free
        assert [t["last4"] for t in card["tokens"]] == [gone[-4:]]


async def test_a_renewals_deleted_token_is_free_again(any_store_args):  # noqa: F811
    """A renewal keeps the PAN and carries a copy of the tokens; the card it retired keeps
    its own copy as it was (active). The card in use decides: once the renewal deletes the
    token, another card may register the number; while it has it, the renewal is named."""
    async with open_service(*any_store_args) as service:
        first, second = await two_active_cards(service)
        number = token_number("507")
        ref = (await service.add_token(first, registered(number)))["tokens"][0]["token_ref"]
        renewal = (await service.apply(first, "renew"))["card_id"]
        await _drive(service, renewal, ["ship", "activate"])
        retired = await service.get_card(first)
        assert retired["state"] == "replaced" and retired["tokens"][0]["state"] == "active"
        with pytest.raises(ConflictError) as caught:
            await service.add_token(second, registered(number, GOOGLE_PAY))
        assert f"registered on card {renewal}" in refusal(caught, number)
        await service.set_token_state(renewal, ref, rq.TokenChange(state="deleted"))
        card = await service.add_token(second, registered(number, GOOGLE_PAY))
        assert [t["token_ref"] for t in card["tokens"]] == [ref]


async def test_a_reissue_registers_its_predecessors_number_before_its_activation(any_store_args):  # noqa: F811
    """The token service moves a wallet's token to the new PAN and registers it on the
    reissue before that is activated (``tokens.hand_over`` keeps it as the reissue's own): the
    card it succeeds holding the number is no refusal; a third card still is refused."""
    async with open_service(*any_store_args) as service:
        old, new, refs = await reissued_with_tokens(service)
        number = token_number("901")
        card = await service.add_token(new["card_id"], registered(number, GOOGLE_PAY))
        assert [t["token_ref"] for t in card["tokens"]] == [service.security.pan_index(number)]
        activated = await service.apply(new["card_id"], "activate")
        assert sorted(t["token_ref"] for t in activated["tokens"]) == refs
        await service.create_account(rq.NewAccount(account_id="a9", balance=0))
        other = await service.issue_card(rq.IssueCard(product_id="p1", account_id="a9"))
        with pytest.raises(ConflictError) as caught:
            await service.add_token(other["card_id"], registered(number))
        assert f"registered on card {new['card_id']}" in refusal(caught, number)


async def test_a_pending_renewals_deleted_copy_frees_nothing(any_store_args):  # noqa: F811
    """A renewal not yet activated is not the card in use: its copy of a token deleted says
    nothing while the card it will renew pays with the token still."""
    async with open_service(*any_store_args) as service:
        first, second = await two_active_cards(service)
        number = token_number("508")
        ref = (await service.add_token(first, registered(number)))["tokens"][0]["token_ref"]
        renewal = (await service.apply(first, "renew"))["card_id"]
        await service.set_token_state(renewal, ref, rq.TokenChange(state="deleted"))
        with pytest.raises(ConflictError) as caught:
            await service.add_token(second, registered(number, GOOGLE_PAY))
        assert f"registered on card {first}" in refusal(caught, number)


async def test_a_registration_cancelled_in_its_write_lets_the_number_go(any_store_args):  # noqa: F811
    """A registration cancelled while its card write waits (the request's deadline, a
    shutdown) lets go of its hold then, not ``TOKEN_HOLD_S`` later."""
    async with open_service(*any_store_args) as service:
        first, second = await two_active_cards(service)
        number = token_number("509")
        store, update_card = service.store, service.store.update_card
        waiting = trio.Event()

        async def stuck(card, *rest):
            if card.card_id == first:
                waiting.set()
                await trio.sleep_forever()
            return await update_card(card, *rest)

        store.update_card = stuck  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.add_token, first, registered(number))
            await waiting.wait()
            nursery.cancel_scope.cancel()
        store.update_card = update_card  # type: ignore[method-assign]
        card = await service.add_token(second, registered(number, GOOGLE_PAY))
        assert [t["last4"] for t in card["tokens"]] == [number[-4:]]
        assert (await service.get_card(first))["tokens"] == []
