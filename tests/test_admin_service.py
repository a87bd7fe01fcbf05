"""The card service on real stores: production, lifecycle, PIN, funds, idempotency, bureau
export, bulk CSV and the demo. Runs on SQLite, and on Redis when the backend is there."""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import replace

import pytest
import trio
from pydantic import ValidationError
from test_admin_support import open_service

from authhost.admin import requests as rq
from authhost.admin.bulk import bulk_issue, read_rows
from authhost.admin.csv_rows import CsvFileError
from authhost.admin.demo import CARDS, demo_export, ensure_demo, export_demo
from authhost.admin.errors import ConflictError, InvalidRequest, NotFoundError
from authhost.admin.service import CardService
from authhost.cards.luhn import is_luhn_valid
from authhost.cards.model import CardKind, CardState, PinMethod
from authhost.cards.track2 import parse_track2
from authhost.security.keystore import KeyStore
from authhost.security.module import PinCheck, SecurityModule, ensure_demo_keys
from authhost.security.pinblock import encrypt_pin_block


def luhn_valid(number: str) -> bool:
    """An independent Luhn oracle (not authhost's own)."""
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(number)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _backends() -> list[str]:
    try:
        import authhost.store.redis  # noqa: F401
    except ImportError:
        return ["sqlite"]
    return ["sqlite", "redis"]


@pytest.fixture(params=_backends())
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_args(request, backend, tmp_path):
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    return tmp_path, backend, redis_url


async def _product_account_card(service: CardService, *, pin_method=PinMethod.VISA_PVV) -> dict:
    await service.create_product(
        rq.NewProduct(
            product_id="p1", issuer_id="bank", name="Debit", bin="476173", pin_method=pin_method
        )
    )
    await service.create_account(rq.NewAccount(account_id="a1", balance=10_000))
    return await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1"))


async def _clear_pan(service: CardService, card_id: str) -> str:
    blob = await service.store.pan_ciphertext(card_id)
    return service.security.decrypt_pan(blob, card_id)


async def _drive(service: CardService, card_id: str, actions: list[str]) -> dict:
    card = await service.get_card(card_id)
    for action in actions:
        card = await service.apply(card_id, action)
    return card


async def test_issue_produces_a_masked_luhn_valid_card_found_by_pan(store_args):
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        assert card["state"] == "created"
        assert card["pan"].startswith("476173******") and len(card["pan"]) == 16
        pan = await _clear_pan(service, card["card_id"])
        assert luhn_valid(pan) and pan.startswith("476173") and pan[-4:] == card["pan"][-4:]
        assert pan not in json.dumps(card)
        assert (await service.find_card(pan))["card_id"] == card["card_id"]
        assert card["expiry"].isdigit() and len(card["expiry"]) == 4


async def test_a_prepaid_product_is_issued_on_a_prepaid_account_only(store_args):
    """A prepaid card on a debit account spent what the account's overdraft allowed beyond
    its loads; the account must be prepaid, which takes no overdraft. The card is issued
    once on a prepaid account, nothing on the debit one, and a card is not moved there."""
    async with open_service(*store_args) as service:
        await service.create_product(
            rq.NewProduct(
                product_id="pp", issuer_id="bank", name="Prepaid", bin="476173", kind="prepaid"
            )  # fmt: skip
        )
        await service.create_account(rq.NewAccount(account_id="debit", balance=1_000))
        await service.create_account(rq.NewAccount(account_id="loaded", kind="prepaid"))
        with pytest.raises(InvalidRequest, match="prepaid product needs a prepaid account"):
            await service.issue_card(rq.IssueCard(product_id="pp", account_id="debit"))
        card = await service.issue_card(rq.IssueCard(product_id="pp", account_id="loaded"))
        with pytest.raises(InvalidRequest, match="prepaid account"):
            await service.personalise(card["card_id"], rq.Personalise(account_id="debit"))
        assert [c["account_id"] for c in await service.list_cards()] == ["loaded"]


async def test_a_prepaid_product_on_a_credit_account_is_told_it_needs_a_prepaid_one(store_args):
    """The refusal named "a debit or prepaid account" for a prepaid product on a credit
    account, where a debit one is refused too."""
    async with open_service(*store_args) as service:
        await service.create_product(
            rq.NewProduct(
                product_id="pp", issuer_id="bank", name="P", bin="476173", kind="prepaid"
            )  # fmt: skip
        )
        await service.create_account(rq.NewAccount(account_id="credit", kind="credit"))
        with pytest.raises(InvalidRequest) as refused:
            await service.issue_card(rq.IssueCard(product_id="pp", account_id="credit"))
        assert "needs a prepaid account" in refused.value.message
        assert "debit" not in refused.value.message.split(":")[0]


async def test_no_more_overdraft_for_a_debit_account_carrying_a_prepaid_card(store_args):
    """A prepaid product's card issued on a debit account before 2026-11-29 stays there; an
    overdraft given to that account afterwards let the card spend beyond its loads again,
    the very thing the issuing rule stops. Raising it is refused while such a card is live;
    lowering it, other debit accounts, and the account once the card has moved are not."""
    async with open_service(*store_args) as service:
        await service.create_product(
            rq.NewProduct(product_id="pp", issuer_id="bank", name="P", bin="476173")
        )
        await service.create_account(rq.NewAccount(account_id="debit", balance=1_000,
                                                   credit_limit=500))  # fmt: skip
        await service.create_account(rq.NewAccount(account_id="other"))
        await service.create_account(rq.NewAccount(account_id="loaded", kind="prepaid"))
        card = await service.issue_card(rq.IssueCard(product_id="pp", account_id="debit"))
        product = await service.store.get_product("pp")  # what the rule's past left behind:
        await service.store.put_product(  # a prepaid product's card on a debit account
            replace(product, kind=CardKind.PREPAID, version=product.version + 1),
            product.version,
        )
        with pytest.raises(InvalidRequest, match=f"carries card {card['card_id']}"):
            await service.set_credit_limit("debit", rq.CreditLimitChange(credit_limit=50_000))
        assert (await service.get_account("debit"))["credit_limit"] == 500
        lowered = await service.set_credit_limit("debit", rq.CreditLimitChange(credit_limit=0))
        assert lowered["credit_limit"] == 0
        await service.set_credit_limit("other", rq.CreditLimitChange(credit_limit=50_000))
        await service.personalise(card["card_id"], rq.Personalise(account_id="loaded"))
        raised = await service.set_credit_limit("debit", rq.CreditLimitChange(credit_limit=900))
        assert raised["credit_limit"] == 900


async def test_a_lost_prepaid_card_on_a_debit_account_still_stops_a_new_overdraft(store_args):
    """The refusal looked at live cards only: a lost or stolen prepaid card on a debit account
    let the overdraft be raised, and its replacement (issued on the same account, no fit
    check) then spent beyond its loads. A card that may still be replaced counts; one
    replaced (its successor counts instead) or closed does not."""
    async with open_service(*store_args) as service:
        await service.create_product(
            rq.NewProduct(product_id="pp", issuer_id="bank", name="P", bin="476173")
        )
        await service.create_account(rq.NewAccount(account_id="debit", balance=1_000))
        await service.create_account(rq.NewAccount(account_id="gone", balance=1_000))
        await service.create_account(rq.NewAccount(account_id="loaded", kind="prepaid"))
        lost = await service.issue_card(rq.IssueCard(product_id="pp", account_id="debit"))
        closed = await service.issue_card(rq.IssueCard(product_id="pp", account_id="gone"))
        product = await service.store.get_product("pp")  # cards issued before the rule
        await service.store.put_product(
            replace(product, kind=CardKind.PREPAID, version=product.version + 1),
            product.version,
        )
        for action in ("ship", "activate", "report-lost"):
            await service.apply(lost["card_id"], action)
        await service.apply(closed["card_id"], "cancel")
        overdraft = rq.CreditLimitChange(credit_limit=50_000)
        with pytest.raises(InvalidRequest, match=f"carries card {lost['card_id']}"):
            await service.set_credit_limit("debit", overdraft)
        assert (await service.get_account("debit"))["credit_limit"] == 0
        assert (await service.set_credit_limit("gone", overdraft))["credit_limit"] == 50_000
        new = await service.apply(lost["card_id"], "replace")  # on the debit account
        with pytest.raises(InvalidRequest, match=f"carries card {new['card_id']}"):
            await service.set_credit_limit("debit", overdraft)
        await service.personalise(new["card_id"], rq.Personalise(account_id="loaded"))
        assert (await service.set_credit_limit("debit", overdraft))["credit_limit"] == 50_000


@pytest.mark.parametrize(
    "issue, error",
    [
        ({"product_id": "nope", "account_id": "a1"}, NotFoundError),
        ({"product_id": "p1", "account_id": "nope"}, NotFoundError),
        ({"product_id": "p1", "account_id": "usd"}, InvalidRequest),
    ],
    ids=["unknown product", "unknown account", "account currency differs"],
)
async def test_issue_refuses_what_cannot_be_produced(store_args, issue, error):
    async with open_service(*store_args) as service:
        await _product_account_card(service)
        await service.create_account(rq.NewAccount(account_id="usd", currency="840"))
        with pytest.raises(error):
            await service.issue_card(rq.IssueCard(**issue))
        assert len(await service.list_cards()) == 1


@pytest.mark.parametrize(
    "path, action, expected",
    [
        ([], "ship", "issued"),
        (["ship"], "activate", "active"),
        (["ship", "activate"], "suspend", "suspended"),
        (["ship", "activate", "suspend"], "resume", "active"),
        (["ship", "activate"], "report-lost", "lost"),
        (["ship", "activate", "suspend"], "report-stolen", "stolen"),
        (["ship", "activate"], "report-damaged", "damaged"),
        (["ship", "activate"], "expire", "expired"),
        ([], "cancel", "closed"),
        ([], "activate", None),
        (["ship", "activate"], "ship", None),
        (["ship", "activate", "report-lost"], "resume", None),
        (["ship", "activate", "cancel"], "activate", None),
        (["ship", "activate", "report-stolen"], "cancel", None),
        ([], "suspend", None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_lifecycle_actions_legal_and_illegal(store_args, path, action, expected):
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        before = await _drive(service, card["card_id"], path)
        audit_before = len(await service.audit(subject=card["card_id"], limit=1000))
        if expected is None:
            with pytest.raises(ConflictError, match=before["state"]):
                await service.apply(card["card_id"], action)
            assert await service.get_card(card["card_id"]) == before  # nothing changed
            assert len(await service.audit(subject=card["card_id"], limit=1000)) == audit_before
        else:
            after = await service.apply(card["card_id"], action, reason="test")
            assert after["state"] == expected
            entries = await service.audit(subject=card["card_id"], limit=1000)
            assert entries[-1]["action"] == f"card.{action.replace('-', '_')}"
            assert json.loads(entries[-1]["before"])["state"] == before["state"]
            assert json.loads(entries[-1]["after"])["state"] == expected
            assert entries[-1]["actor"] == "test"


async def test_replacement_and_renewal_rules(store_args):
    async with open_service(*store_args) as service:
        zpk = bytes.fromhex(service.security.demo_test_keys()["zpk"])
        lost = await _product_account_card(service)
        pan = await _clear_pan(service, lost["card_id"])
        await service.set_pin(lost["card_id"], rq.PinChange(pin_block=_block(zpk, "1234", pan)))
        await _drive(service, lost["card_id"], ["ship", "activate", "report-lost"])
        new = await service.apply(lost["card_id"], "replace")
        new_pan = await _clear_pan(service, new["card_id"])
        assert new_pan != pan and new["account_id"] == "a1" and new["replaces"] == lost["card_id"]
        assert new["pin_set"] is False  # a PVV means nothing for another PAN
        assert (await service.get_card(lost["card_id"]))["state"] == "lost"  # still answers 41
        assert (await service.find_card(pan))["card_id"] == lost["card_id"]

        renewed = await _drive(service, new["card_id"], ["ship", "activate"])
        await service.set_pin(new["card_id"], rq.PinChange(pin_block=_block(zpk, "9876", new_pan)))
        renewed = await service.apply(new["card_id"], "renew")
        assert await _clear_pan(service, renewed["card_id"]) == new_pan  # same PAN
        assert renewed["pin_set"] is True and renewed["sequence"] == "01"
        # the cardholder keeps using the old card until the renewed one is activated
        assert (await service.get_card(new["card_id"]))["state"] == "active"
        assert (await service.find_card(new_pan))["card_id"] == new["card_id"]
        await _drive(service, renewed["card_id"], ["ship", "activate"])
        assert (await service.get_card(new["card_id"]))["state"] == "replaced"
        assert (await service.find_card(new_pan))["card_id"] == renewed["card_id"]
        actions = [e["action"] for e in await service.audit(subject=new["card_id"])]
        assert actions[-1] == "card.retire"

        with pytest.raises(ConflictError):
            await service.apply(new["card_id"], "renew")  # already replaced


def _block(zpk: bytes, pin: str, pan: str) -> str:
    return encrypt_pin_block(zpk, pin, pan).hex().upper()


@pytest.mark.parametrize("method", [PinMethod.VISA_PVV, PinMethod.IBM3624])
async def test_pin_set_from_encrypted_block_stores_only_a_reference(store_args, method):
    async with open_service(*store_args) as service:
        card = await _product_account_card(service, pin_method=method)
        pan = await _clear_pan(service, card["card_id"])
        zpk = bytes.fromhex(service.security.demo_test_keys()["zpk"])
        view = await service.set_pin(
            card["card_id"], rq.PinChange(pin_block=_block(zpk, "2580", pan))
        )
        assert view["pin_set"] is True and "pin_reference" not in view
        stored = await service.store.get_card(card["card_id"])
        assert stored.pin_reference and stored.pin_reference != "2580"
        product = await service.store.get_product("p1")
        source = service.security.pin_source(None, None)

        def check(pin: str) -> PinCheck:
            return service.security.verify_pin(
                encrypt_pin_block(zpk, pin, pan),
                pan,
                source,
                method,
                product.pvk_name,
                product.pvki,
                stored.pin_reference,
            )

        assert check("2580") is PinCheck.OK
        assert check("2581") is PinCheck.WRONG
        actions = [e["action"] for e in await service.audit(subject=card["card_id"])]
        assert actions[-1] == "pin.set"
        # the PIN is nowhere in the audit: searched with the fields that hold random digits
        # (times, ids, the masked PAN's last four) taken out, where "2580" turns up by chance
        random_digits = {
            "ts",
            "audit_id",
            "subject",
            "created_at",
            "activated_at",
            "card_id",
            "pan",
        }
        for entry in await service.audit(subject=card["card_id"]):
            states = [json.loads(entry[side]) for side in ("before", "after") if entry[side]]
            searched = [{k: v for k, v in entry.items() if k not in ("before", "after")}, *states]
            rest = [{k: v for k, v in d.items() if k not in random_digits} for d in searched]
            assert "2580" not in json.dumps(rest)
            assert all(
                k in ("pin_method", "pin_set", "pin_tries") for d in states for k in d if "pin" in k
            )


async def test_pin_block_under_a_wrong_key_is_refused_and_changes_nothing(store_args):
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        pan = await _clear_pan(service, card["card_id"])
        wrong = secrets.token_bytes(16)
        with pytest.raises(InvalidRequest, match="PIN"):
            await service.set_pin(
                card["card_id"], rq.PinChange(pin_block=_block(wrong, "1234", pan))
            )
        assert (await service.get_card(card["card_id"]))["pin_set"] is False


async def test_pin_unlock_resets_the_try_counter(store_args):
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        stored = await service.store.get_card(card["card_id"])
        from dataclasses import replace

        await service.store.update_card(replace(stored, pin_tries=3))
        view = await service.unlock_pin(card["card_id"])
        assert view["pin_tries"] == 0
        assert (await service.audit(subject=card["card_id"]))[-1]["action"] == "pin.unlock"


async def test_funds_and_credit_limits(store_args):
    async with open_service(*store_args) as service:
        await service.create_account(rq.NewAccount(account_id="d", balance=1_000))
        view = await service.change_funds("d", rq.FundsChange(amount_minor=500))
        assert view["balance"] == 1_500 and view["open_to_buy"] == 1_500
        with pytest.raises(ConflictError, match="1500 available"):
            await service.change_funds("d", rq.FundsChange(amount_minor=-2_000))
        assert (await service.get_account("d"))["balance"] == 1_500
        # a debit account's limit is its arranged overdraft: the balance may go below zero
        overdraft = await service.set_credit_limit("d", rq.CreditLimitChange(credit_limit=700))
        assert overdraft["open_to_buy"] == 2_200
        below = await service.change_funds("d", rq.FundsChange(amount_minor=-2_000))
        assert below["balance"] == -500 and below["open_to_buy"] == 200
        with pytest.raises(ConflictError, match="200 available"):
            await service.change_funds("d", rq.FundsChange(amount_minor=-201))
        await service.create_account(rq.NewAccount(account_id="p", kind="prepaid", balance=50))
        with pytest.raises(InvalidRequest, match="prepaid"):
            await service.set_credit_limit("p", rq.CreditLimitChange(credit_limit=5))
        with pytest.raises(ValidationError, match="prepaid"):  # the request itself is wrong
            rq.NewAccount(account_id="p2", kind="prepaid", credit_limit=5)

        await service.create_account(rq.NewAccount(account_id="c", kind="credit", credit_limit=900))
        await service.change_funds("c", rq.FundsChange(amount_minor=-300))  # a fee: debt grows
        paid = await service.change_funds("c", rq.FundsChange(amount_minor=100))  # a payment
        assert paid["balance"] == 200 and paid["open_to_buy"] == 700
        raised = await service.set_credit_limit("c", rq.CreditLimitChange(credit_limit=2_000))
        assert raised["open_to_buy"] == 1_800
        with pytest.raises(NotFoundError):
            await service.change_funds("missing", rq.FundsChange(amount_minor=1))


async def test_idempotent_creates(store_args):
    async with open_service(*store_args) as service:
        spec = rq.NewAccount(balance=100)
        first = await service.create_account(spec, idempotency_key="k1")
        again = await service.create_account(spec, idempotency_key="k1")
        assert first == again and len(await service.list_accounts()) == 1
        with pytest.raises(ConflictError, match="different request"):
            await service.create_account(rq.NewAccount(balance=5), idempotency_key="k1")
        with pytest.raises(ConflictError, match="already exists"):
            await service.create_account(rq.NewAccount(account_id=first["account_id"]))


async def test_personalisation_export_is_the_one_clear_pan_file(store_args, tmp_path):
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        await service.personalise(
            card["card_id"], rq.Personalise(cardholder_name="ADA LOVELACE", address_ref="addr-7")
        )
        out = tmp_path / "bureau.jsonl"
        assert await service.export_personalisation([card["card_id"]], out) == 1
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        record = json.loads(out.read_text())
        pan = await _clear_pan(service, card["card_id"])
        assert record["pan"] == pan and record["cardholder_name"] == "ADA LOVELACE"
        for name, service_code in (("cvv", card["service_code"]), ("cvv2", "000")):
            assert service.security.verify_card_value(
                pan, card["expiry"], service_code, record[name], "cvk"
            )
        assert parse_track2(record["chip_track2"]).verification_value == record["icvv"]
        audit = await service.audit(subject=card["card_id"])
        assert audit[-1]["action"] == "card.export_personalisation"
        assert pan not in json.dumps(audit)

        with pytest.raises(ConflictError, match="exists"):
            await service.export_personalisation([card["card_id"]], out)  # never overwritten
        await _drive(service, card["card_id"], ["ship", "activate"])
        with pytest.raises(ConflictError, match="active"):
            await service.export_personalisation([card["card_id"]], tmp_path / "again.jsonl")
        assert not (tmp_path / "again.jsonl").exists()


async def test_personalisation_export_names_each_cards_product(store_args, tmp_path):
    """Two products on one BIN (a classic and a gold plastic, say) are told apart in the
    bureau file by ``product_id``; before, a record named no product and the bureau could not
    know which plastic or chip profile a PAN of the shared BIN was for."""
    async with open_service(*store_args) as service:
        first = await _product_account_card(service)
        await service.create_product(
            rq.NewProduct(product_id="gold", issuer_id="bank", name="Gold", bin="476173")
        )
        second = await service.issue_card(rq.IssueCard(product_id="gold", account_id="a1"))
        out = tmp_path / "bureau.jsonl"
        assert await service.export_personalisation([first["card_id"], second["card_id"]], out) == 2
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert {r["card_id"]: r["product_id"] for r in records} == {
            first["card_id"]: "p1",
            second["card_id"]: "gold",
        }


async def test_bulk_csv_bad_row_is_reported_and_the_rest_issued_once(store_args, tmp_path):
    async with open_service(*store_args) as service:
        await _product_account_card(service)
        csv_file = tmp_path / "cards.csv"
        csv_file.write_text(
            "product_id,account_id,cardholder_name\n"
            "p1,a1,ADA LOVELACE\n"
            "p1,missing-account,ALAN TURING\n"
            "p1,a1,BAD NAME <script>\n"
            "p1,a1\n"
            "\n"
            "p1,a1,GRACE HOPPER\n"
        )
        rows = read_rows(csv_file)
        summary = await bulk_issue(service, rows)
        assert summary.issued == 2
        errors = {failure.line: failure.error for failure in summary.failed}
        assert sorted(errors) == [3, 4, 5]
        assert "account missing-account not found" in errors[3]
        assert "cardholder_name" in errors[4]
        assert "expected 3 cells, found 2" in errors[5]
        assert len(await service.list_cards()) == 1 + 2

        again = await bulk_issue(service, read_rows(csv_file))  # a re-run issues nothing new
        assert again.issued == 2 and len(await service.list_cards()) == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("account_id\nx\n", "missing column(s) product_id"),
        ("product_id,account_id,colour\n", "unknown column(s) colour"),
        (b"product_id,account_id\n\xff\xfe\n", "cannot read the file"),  # not UTF-8
        ("product_id,account_id\x00\n", "line 1: "),  # a NUL in the header
    ],
)
def test_bulk_file_level_errors(tmp_path, content, message):
    path = tmp_path / "cards.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(CsvFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_rows(path)


async def test_a_demo_made_by_an_older_version_serves_again(store_args, tmp_path):
    """Its products were made from an older spec under the same idempotency keys: the demo
    keeps them rather than being refused (a 'serve --demo' upgrade used to stop there)."""
    from authhost.admin.demo import PRODUCTS

    async with open_service(*store_args) as service:
        demo = service.acting_as("demo")
        for product in PRODUCTS:  # as an authhost without the chip fields made them
            older = product.model_copy(
                update={"imk_ac_name": "", "chip_cvn": 18, "imk_smi_name": "", "imk_smc_name": ""}
            )
            await demo.create_product(older, idempotency_key=f"demo:{product.product_id}")
        cards = await ensure_demo(service)
        assert len(cards) == len(CARDS)
        kept = await service.store.get_product("demo-visa-debit")
        assert kept is not None and kept.imk_ac_name == ""  # not rewritten behind its back


async def test_demo_is_idempotent_and_exports_the_documented_shape(store_args, tmp_path):
    async with open_service(*store_args) as service:
        first = await ensure_demo(service)
        second = await ensure_demo(service)
        assert [c["card_id"] for c in first] == [c["card_id"] for c in second]
        assert len(await service.list_cards(limit=1000)) == len(CARDS)
        assert len(await service.list_accounts()) == 4 and len(await service.list_products()) == 3
        states = {c["state"] for c in first}
        assert states >= {s.value for s in CardState} - {"replaced"}

        out = tmp_path / "demo.json"
        assert await export_demo(service, out) == len(CARDS)
        doc = json.loads(out.read_text())
        assert doc["test_only"] is True
        assert set(doc["keys"]) == {"zpk", "bdk", "imk_ac", "imk_smi", "imk_smc", "zmk", "cavv"}
        assert all(len(bytes.fromhex(v)) in (16, 24) for v in doc["keys"].values())
        keys = ["pan", "expiry", "service_code", "cvv2", "track2", "pin", "state", "account"]
        keys += ["currency", "available", "chip_cvn", "cavv_checked"]
        [tokenised] = [c for c in doc["cards"] if "token" in c]  # a wallet's, on a phone
        assert is_luhn_valid(tokenised["token"]["pan"]) and tokenised["state"] == "active"
        assert tokenised["token"]["pan"] != tokenised["pan"]
        [addressed] = [c for c in doc["cards"] if "billing_address" in c]  # for AVS
        assert set(addressed["billing_address"]) == {"postcode", "street"}
        for card in doc["cards"]:
            optional = [name for name in ("billing_address", "token") if name in card]
            assert list(card) == keys + optional
            track = parse_track2(card["track2"])
            assert (track.pan, track.expiry, track.service_code) == (
                card["pan"],
                card["expiry"],
                card["service_code"],
            )
            assert luhn_valid(card["pan"]) and card["currency"] == "978"
            assert service.security.verify_card_value(
                card["pan"], card["expiry"], "000", card["cvv2"], "cvk"
            )
            assert service.security.verify_card_value(
                card["pan"], card["expiry"], "999", track.verification_value, "cvk"
            )
        active = [c for c in doc["cards"] if c["state"] == "active"]
        assert len(active) >= 3 and all(c["pin"] for c in active)
        assert {c["available"] for c in active} >= {250_000, 5_000}


async def test_demo_export_is_refused_on_a_production_key_store(tmp_path):
    async with open_service(tmp_path) as service:
        await ensure_demo(service)  # demo data exists, but the keys are now production ones
        key_store = KeyStore.create(tmp_path / "prod-keys.json", secrets.token_bytes(32))
        ensure_demo_keys(key_store)
        real = CardService(service.store, SecurityModule(key_store), "t")
        with pytest.raises(ConflictError, match="not a demo installation"):
            await demo_export(real)
        with pytest.raises(ConflictError, match="demo installation"):
            await ensure_demo(real)
        with pytest.raises(ConflictError):
            await export_demo(real, tmp_path / "export.json")
        assert not (tmp_path / "export.json").exists()


async def test_concurrent_creates_with_one_idempotency_key_create_once(store_args):
    async with open_service(*store_args) as service:
        await _product_account_card(service)
        spec = rq.IssueCard(product_id="p1", account_id="a1", cardholder_name="TWIN")
        results = []

        async def issue() -> None:
            results.append(await service.acting_as("api").issue_card(spec, idempotency_key="t"))

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(issue)
        assert len({r["card_id"] for r in results}) == 1
        assert len(await service.list_cards()) == 2  # the setup card and one twin-safe card


async def test_one_idempotency_key_creates_once_across_processes(store_args):
    """The API's workers and the CLI are processes of their own, each with its own store
    connection: the key is reserved in the store, so one of them issues the card and the
    others answer with it."""
    from authhost.store.redis import RedisCardStore
    from authhost.store.sqlite import SqliteCardStore

    tmp_path, backend, redis_url = store_args
    async with open_service(*store_args) as service:
        await _product_account_card(service)
        if backend == "sqlite":
            others = [await SqliteCardStore.open(tmp_path / "authhost.db") for _ in range(3)]
        else:
            prefix = service.store._keys.prefix
            others = [await RedisCardStore.open(redis_url, prefix=prefix) for _ in range(3)]
        processes = [service] + [CardService(s, service.security, "cli") for s in others]
        spec = rq.IssueCard(product_id="p1", account_id="a1", cardholder_name="ONCE")
        results = []

        async def issue(process: CardService) -> None:
            results.append(await process.issue_card(spec, idempotency_key="across"))

        try:
            async with trio.open_nursery() as nursery:
                for process in processes * 2:
                    nursery.start_soon(issue, process)
        finally:
            for other in reversed(others):  # (each Redis client's tasks nest in the last's)
                await other.close()
        assert len(results) == 8 and len({r["card_id"] for r in results}) == 1
        assert len(await service.list_cards()) == 2  # the setup card and the one issued


async def test_no_clear_pan_in_the_sqlite_files_after_admin_work(tmp_path):
    async with open_service(tmp_path) as service:
        views = await ensure_demo(service)
        pans = [c["pan"] for c in (await demo_export(service))["cards"]]
        for view in views[:3]:
            await service.apply(view["card_id"], "renew", reason="scan")
        await service.personalise(views[4]["card_id"], rq.Personalise(address_ref="addr-1"))
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("authhost.db*"))
    assert len(stored) > 10_000
    for pan in pans:
        assert pan.encode() not in stored
        assert pan.encode("utf-16-le") not in stored


async def test_card_limits_override_the_product_and_can_be_removed(store_args):
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        view = await service.set_card_limits(
            card["card_id"], rq.LimitsSpec(per_transaction=5_000, daily_count=3)
        )
        assert view["limits"]["per_transaction"] == 5_000 and view["limits"]["daily_count"] == 3
        stored = await service.store.get_card(card["card_id"])
        product = await service.store.get_product("p1")
        assert product.limits.overridden_by(stored.limits).per_transaction == 5_000
        cleared = await service.set_card_limits(card["card_id"], rq.LimitsSpec())
        assert cleared["limits"] is None
        actions = [e["action"] for e in await service.audit(subject=card["card_id"])]
        assert actions[-2:] == ["card.limits", "card.limits"]


async def _renewed_pair(service: CardService) -> tuple[dict, dict]:
    """An active card and its renewal, shipped but not yet activated."""
    old = await _drive(service, (await _product_account_card(service))["card_id"],
                       ["ship", "activate"])  # fmt: skip
    new = await service.apply(old["card_id"], "renew")
    await service.apply(new["card_id"], "ship")
    return old, new


def _race_updates_of(service: CardService, card_id: str, times: int) -> list[int]:
    """Let a real authorisation commit (a wrong PIN: the card's try counter and version move)
    land on ``card_id`` just before each of the next ``times`` writes to that card, as a
    request racing the activation would; returns the try counts written."""
    from authhost.store.interface import Commit
    from authhost.store.records import JournalEntry

    store, written = service.store, []
    update_card = store.update_card

    async def racing_update(card, *audit):
        if card.card_id == card_id and len(written) < times:
            current = await store.get_card(card_id)
            written.append(current.pin_tries + 1)
            entry = JournalEntry(ts=1.0, mti="0100", message_class="authorisation",
                                 response_code="55", card_id=card_id,
                                 account_id=current.account_id)  # fmt: skip
            await store.commit(Commit(entry, card_id=card_id, pin_wrong=True))
        return await update_card(card, *audit)

    store.update_card = racing_update  # type: ignore[method-assign]
    return written


async def test_activating_a_renewal_retires_the_predecessor_despite_a_racing_change(store_args):
    async with open_service(*store_args) as service:
        old, new = await _renewed_pair(service)
        written = _race_updates_of(service, old["card_id"], times=1)
        await service.apply(new["card_id"], "activate")
        retired = await service.store.get_card(old["card_id"])
        assert retired.state is CardState.REPLACED
        assert retired.pin_tries == written[0] == 1  # the racing change was kept, not overwritten
        actions = [e["action"] for e in await service.audit(subject=old["card_id"])]
        assert actions[-1] == "card.retire"


async def test_a_predecessor_that_keeps_changing_is_reported_and_stays_live(store_args):
    from authhost.admin.service import RETIRE_TRIES

    async with open_service(*store_args) as service:
        old, new = await _renewed_pair(service)
        _race_updates_of(service, old["card_id"], times=RETIRE_TRIES)
        with pytest.raises(ConflictError, match="predecessor .* is still live"):
            await service.apply(new["card_id"], "activate")
        assert (await service.get_card(new["card_id"]))["state"] == "active"  # it happened
        assert (await service.get_card(old["card_id"]))["state"] == "active"


async def test_the_server_applies_journal_retention_itself_and_audits_it(store_args, monkeypatch):
    """[auth] journal_keep_days: the runtime's service prunes a minute after start (here at
    once) and then daily, as the system actor."""
    import trio

    from authhost import runtime
    from authhost.store.interface import Commit, JournalQuery
    from authhost.store.records import JournalEntry

    monkeypatch.setattr(runtime, "JOURNAL_PRUNE_FIRST_S", 0.0)
    async with open_service(*store_args) as service:
        now = service.clock()
        for i, age_days in enumerate((90, 40, 2)):
            entry = JournalEntry(ts=now - age_days * 86400, mti="0100", response_code="00",
                                 message_class="authorisation", stan=f"{i:06d}")  # fmt: skip
            await service.store.commit(Commit(journal=entry))
        with trio.move_on_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(runtime.prune_journal, service, 35)
                while not await service.store.audit(subject="journal"):
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        left = await service.store.journal(JournalQuery(limit=10))
        assert [e.stan for e in left] == ["000002"]
        (audit,) = await service.store.audit(subject="journal")
        assert audit.action == "journal.prune" and json.loads(audit.after)["entries"] == 2


async def test_the_demo_export_replaces_its_file_whole(tmp_path):
    """``serve --demo --workers N`` has every worker export the demo file at once: written in
    place (truncated, then filled), one worker's truncation could leave the simulator a file
    cut short. The export is written aside and renamed over: never an open file rewritten."""
    async with open_service(tmp_path) as service:
        await ensure_demo(service)
        out = tmp_path / "demo-cards.json"
        out.write_text("{}")
        os.chmod(out, 0o644)
        before = out.stat().st_ino
        await export_demo(service, out)
        assert out.stat().st_ino != before  # a new file renamed into place
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert json.loads(out.read_text())["test_only"] is True
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
