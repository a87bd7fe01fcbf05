"""PANs in the forms the admin API's masking missed, over real TCP: glued to a word in a path
("pan_4761...") or a reason ("x4761..."), percent-encoded in a path; PANs typed into free-text
fields that are stored and shown in clear (refused); and the small input rules: a body-less
route refuses a malformed body, report times are plain ASCII decimals."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from test_admin_cli import cli  # noqa: F401 - the fixture
from test_admin_support import AUDITOR_TOKEN, call, open_service, running_admin

PRODUCT = {"product_id": "p1", "issuer_id": "bank1", "name": "Debit", "bin": "476173"}
PAN = "4761737843612522"  # passes the Luhn check
OTHER_PAN = "4761730732155554"  # so does this one


async def _card(port: int) -> str:
    assert (await call(port, "POST", "/v1/products", payload=PRODUCT)).status == 201
    assert (await call(port, "POST", "/v1/accounts", payload={"account_id": "a1"})).status == 201
    issued = await call(port, "POST", "/v1/cards", payload={"product_id": "p1", "account_id": "a1"})
    assert issued.status == 201, issued
    return issued.json["card_id"]


def _log_text(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


async def test_a_pan_glued_to_a_word_or_percent_encoded_in_a_path_is_masked(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    encoded = "".join(f"%{ord(c):02X}" for c in OTHER_PAN)
    async with open_service(tmp_path) as service, running_admin(service) as port:
        glued = await call(port, "GET", f"/v1/cards/pan_{PAN}", token=AUDITOR_TOKEN)
        assert glued.status == 404, glued
        assert PAN not in glued.body.decode() and "476173******2522" in glued.json["error"]
        hidden = await call(port, "GET", f"/v1/cards/{encoded}", token=AUDITOR_TOKEN)
        assert hidden.status == 404, hidden
        assert OTHER_PAN not in hidden.body.decode()
    text = _log_text(caplog)
    assert "GET /v1/cards/pan_476173******2522 -> 404 (auditor:" in text, text
    assert "GET /v1/cards/476173******5554 -> 404 (auditor:" in text, text
    assert PAN not in text and OTHER_PAN not in text and encoded not in text


async def test_a_lifecycle_reason_with_a_glued_pan_is_audited_masked(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with open_service(tmp_path) as service, running_admin(service) as port:
        card_id = await _card(port)
        for action, reason in (("ship", f"x{OTHER_PAN}"), ("cancel", f"ticket_{PAN}y")):
            done = await call(port, "POST", f"/v1/cards/{card_id}/{action}",
                              payload={"reason": reason})  # fmt: skip
            assert done.status == 200, done
        audit = await call(port, "GET", f"/v1/audit?subject={card_id}", token=AUDITOR_TOKEN)
        entries = json.dumps(audit.json["audit"])
        assert "x476173******5554" in entries and "ticket_476173******2522y" in entries
        assert card_id in entries  # the card's own id is whole
        assert OTHER_PAN not in entries and PAN not in entries
        assert OTHER_PAN not in _log_text(caplog) and PAN not in _log_text(caplog)


@pytest.mark.parametrize("field", ["cardholder_name", "address_ref"])
@pytest.mark.parametrize(
    "value", [PAN, f"MR {PAN}", "4761 7378 4361 2522", "4761-7378-4361-2522"],
    ids=["bare", "in a name", "grouped by blanks", "grouped by dashes"],
)  # fmt: skip
async def test_a_pan_in_a_free_text_field_is_refused_and_not_echoed(tmp_path, field, value):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        card_id = await _card(port)
        changed = await call(port, "POST", f"/v1/cards/{card_id}/personalise",
                             payload={field: value})  # fmt: skip
        assert changed.status == 422, changed
        assert field in changed.json["error"] and "card number" in changed.json["error"]
        issued = await call(port, "POST", "/v1/cards",
                            payload={"product_id": "p1", "account_id": "a1", field: value})  # fmt: skip
        assert issued.status == 422, issued
        for reply in (changed, issued):
            body = reply.body.decode()
            assert PAN not in body and "2522" not in body, body
        card = await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)
        assert card.json[field] == ""
        assert len((await call(port, "GET", "/v1/cards", token=AUDITOR_TOKEN)).json["cards"]) == 1


async def test_digits_that_are_no_card_number_stay_allowed(tmp_path):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        card_id = await _card(port)
        fine = {"cardholder_name": "FLAT 12 ADA LOVELACE", "address_ref": f"addr-{PAN[:-1]}3"}
        changed = await call(port, "POST", f"/v1/cards/{card_id}/personalise", payload=fine)
        assert changed.status == 200, changed  # 16 digits failing the Luhn check: no PAN
        assert changed.json["address_ref"] == fine["address_ref"]
        named = await call(port, "POST", "/v1/products",
                           payload={**PRODUCT, "product_id": "p2", "name": f"Gold {PAN}"})  # fmt: skip
        assert named.status == 422 and PAN not in named.body.decode(), named
        # list values are merchant ids, terminal ids, BINs: digit runs, taken as they are
        values = {"values": ["476173", "123456789012345"]}
        assert (await call(port, "PUT", "/v1/lists/merchants", payload=values)).status == 200


def test_bulk_issue_refuses_a_row_whose_cardholder_name_is_a_pan(cli, tmp_path):  # noqa: F811
    assert cli("products", "create", "--product-id", "p", "--issuer-id", "b", "--name", "D",
               "--bin", "476173").exit_code == 0  # fmt: skip
    assert cli("accounts", "create", "--account-id", "a").exit_code == 0
    rows = tmp_path / "cards.csv"
    rows.write_text(f"product_id,account_id,cardholder_name\np,a,ADA LOVELACE\np,a,{PAN}\n")
    results = tmp_path / "results.csv"
    done = cli("cards", "bulk-issue", str(rows), "--results", str(results))
    assert done.exit_code == 1
    assert f"{rows}:3: " in done.stderr and "card number" in done.stderr, done.stderr
    assert "2 row(s): 1 issued, 1 failed" in done.stderr
    assert PAN not in done.output and PAN not in results.read_text()


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"{not json", 400), (b"[1]", 400), (b'"x"', 400), (b'{"reason": "x"}', 422),
     (b"{}", 200), (b"", 200)],
)  # fmt: skip
async def test_pin_unlock_refuses_a_body_it_cannot_take(tmp_path, raw, status):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        card_id = await _card(port)
        # a wrong PIN counted: the unlock has work to do (with none, on a product without
        # issuer scripts, it is 409 whatever the body)
        stored = await service.store.get_card(card_id)
        await service.store.update_card(dataclasses.replace(stored, pin_tries=1))
        reply = await call(port, "POST", f"/v1/cards/{card_id}/pin/unlock", raw=raw,
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert reply.status == status, reply
        suspend = await call(port, "POST", "/v1/cards/dormant/suspend?days=30", raw=raw,
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert suspend.status == status, suspend


@pytest.mark.parametrize(
    "value",
    ["%D9%A1%D9%A7%D9%A0%D9%A0", "1_000", "%201000%20", "1000%20", "1e9", "inf", "nan", "+5",
     "-0", ".5", "5.", "0x10", "%EF%BC%91"],
)  # fmt: skip
async def test_times_in_the_query_are_plain_ascii_decimals(tmp_path, value):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        for path in (f"/v1/journal/totals?since={value}&until=2000000000",
                     f"/v1/journal/totals?since=1&until={value}",
                     f"/v1/cards/dormant?unused_since={value}"):  # fmt: skip
            reply = await call(port, "GET", path, token=AUDITOR_TOKEN)
            assert reply.status == 400, (path, reply)
            assert "must be a number" in reply.json["error"]
        fine = await call(port, "GET", "/v1/journal/totals?since=1700000000.25&until=1800000000",
                          token=AUDITOR_TOKEN)  # fmt: skip
        assert fine.status == 200, fine
        dormant = await call(port, "GET", "/v1/cards/dormant?unused_since=1700000000",
                             token=AUDITOR_TOKEN)  # fmt: skip
        assert dormant.status == 200, dormant


async def test_a_since_alone_runs_up_to_now_and_a_future_one_is_refused(tmp_path):
    """ "Since this morning" needs no until: the reports run to now (they answered 400 'give a
    day, or until after since'); a since still to come is named as such."""
    import time

    async with open_service(tmp_path) as service, running_admin(service) as port:
        since = int(time.time()) - 3600
        for path in ("/v1/journal/totals", "/v1/rules/performance"):
            reply = await call(port, "GET", f"{path}?since={since}", token=AUDITOR_TOKEN)
            assert reply.status == 200, (path, reply)
            later = await call(port, "GET", f"{path}?since={since + 7200}", token=AUDITOR_TOKEN)
            assert later.status == 422, (path, later)
            assert "is in the future" in later.json["error"]
        totals = await call(port, "GET", f"/v1/journal/totals?since={since}", token=AUDITOR_TOKEN)
        assert totals.json["until"][:13] == time.strftime("%Y-%m-%dT%H", time.gmtime())


async def test_every_search_by_pan_is_audited_with_the_pan_masked(tmp_path):
    """PCI DSS 10.2.1.1: a person trying card numbers to learn which are live leaves a trail,
    found or not, under their own token's name; the audit never holds the number."""
    async with open_service(tmp_path) as service, running_admin(service) as port:
        card_id = await _card(port)
        card = await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)
        sealed = await service.store.pan_ciphertext(card_id)
        issued_pan = service.security.decrypt_pan(sealed, card_id)
        found = await call(port, "POST", "/v1/cards/search", payload={"pan": issued_pan},
                            token=AUDITOR_TOKEN)  # fmt: skip
        assert found.status == 200 and found.json["card_id"] == card_id, found
        missing = await call(port, "POST", "/v1/cards/search", payload={"pan": OTHER_PAN},
                             token=AUDITOR_TOKEN)  # fmt: skip
        assert missing.status == 404, missing
        audit = await call(port, "GET", "/v1/audit?limit=1000", token=AUDITOR_TOKEN)
    searches = [a for a in audit.json["audit"] if a["action"] == "card.search"]
    assert [(a["subject"], json.loads(a["after"])) for a in searches] == [
        (card_id, {"pan": card.json["pan"], "found": True}),
        ("", {"pan": "476173******5554", "found": False}),
    ], searches
    assert {a["actor"] for a in searches} == {searches[0]["actor"]} and "auditor" in searches[0][
        "actor"
    ]
    assert issued_pan not in audit.body.decode() and OTHER_PAN not in audit.body.decode()
