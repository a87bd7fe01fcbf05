"""Odd but possible input to the admin API over real TCP: each is answered 2xx or 4xx with a
message (never a 500 or a stack trace), and a number in a message is not masked as a PAN."""

from __future__ import annotations

import json
import logging

import pytest
from test_admin_support import AUDITOR_TOKEN, call, open_service, running_admin

PRODUCT = {"product_id": "p1", "issuer_id": "bank1", "name": "Debit", "bin": "476173"}


def _clean(reply) -> None:
    """A 4xx with a message and nothing of the server's insides."""
    assert 400 <= reply.status < 500, reply
    assert reply.json["error"] and "Traceback" not in reply.body.decode()


async def test_json_nested_deeper_than_the_parser_goes_is_a_400(tmp_path):
    deep = b'{"pan":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    async with open_service(tmp_path) as service, running_admin(service) as port:
        reply = await call(port, "POST", "/v1/cards/search", raw=deep,
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert reply.status == 400 and "nested too deeply" in reply.json["error"], reply


@pytest.mark.parametrize(
    "path",
    [
        "/v1/journal/totals?day=9999-12-31",
        "/v1/accounts/a1/statement?day=9999-12-31",
        "/v1/models/compare?day=9999-12-31",
        "/v1/rules/performance?day=0001-01-01",
        "/v1/journal?rrn=000000004711&day=9999-12-31",
    ],
)
async def test_a_day_outside_2000_2099_is_refused(tmp_path, path):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        await call(port, "POST", "/v1/accounts", payload={"account_id": "a1"})
        reply = await call(port, "GET", path, token=AUDITOR_TOKEN)
        _clean(reply)
        assert reply.status == 422 and "2000-2099" in reply.json["error"], reply


async def test_a_clearing_line_with_digits_of_another_kind_names_its_line(tmp_path):
    rows = [
        "4761731234567890,ABC123,1²00,978,2026-11-27T10:00:00Z,123456789012",  # superscript two
        "4761731234567890,ABC123,1000,٩٧٨,2026-11-27T10:00:00Z,123456789012",  # Arabic-Indic
        "476173123456789²,ABC123,1000,978,2026-11-27T10:00:00Z,123456789012",
        "4761731234567890,ABÇ123,1000,978,2026-11-27T10:00:00Z,123456789012",
        "4761731234567890,ABC123,1000,978,١٧٩٥٧٩٠٠٠٠,123456789012",
    ]
    header = "pan,approval_code,amount_minor,currency,presented_at,arn\n"
    async with open_service(tmp_path) as service, running_admin(service) as port:
        for row in rows:
            body = {"csv": header + row + "\n", "dry_run": True}
            reply = await call(port, "POST", "/v1/clearing", payload=body)
            _clean(reply)
            assert reply.status == 422 and "line 2" in reply.json["error"], (row, reply)


async def test_a_clearing_amount_of_thousands_of_digits_is_a_422_naming_line_and_field(tmp_path):
    """int() of more than 4,300 digits raises an error of its own: it once escaped as a 500
    with a traceback instead of the line's reason."""
    header = "pan,approval_code,amount_minor,currency,presented_at,arn"
    nines = "9" * 5000
    rows = [
        (header, f"4761737843612522,ABC123,{nines},978,1795831000,123456789012", "amount_minor"),
        (header + ",billing_amount_minor,billing_currency",
         f"4761737843612522,ABC123,100,840,1795831000,123456789012,{nines},978",
         "billing_amount_minor"),
        (header, f"4761737843612522,ABC123,100,978,{nines},123456789012", "presented_at"),
    ]  # fmt: skip
    async with open_service(tmp_path) as service, running_admin(service) as port:
        for head, row, field in rows:
            body = {"csv": f"{head}\n{row}\n", "dry_run": True}
            reply = await call(port, "POST", "/v1/clearing", payload=body)
            _clean(reply)
            assert reply.status == 422, (field, reply)
            assert reply.json["error"].startswith(f"line 2: {field} must be"), reply.json
        # zeros in front of a small amount are still that amount (they once raised too)
        padded = f"4761737843612522,ABC123,{'0' * 5000}1,978,1795831000,123456789012"
        reply = await call(port, "POST", "/v1/clearing",
                           payload={"csv": f"{header}\n{padded}\n", "dry_run": True})  # fmt: skip
        assert reply.status == 200 and reply.json["presentments"] == 1, reply


@pytest.mark.parametrize("feed", ["/v1/journal/movements", "/v1/journal/alerts",
                                  "/v1/wallet-events", "/v1/audit", "/v1/reviews",
                                  "/v1/fraud-reports"])  # fmt: skip
async def test_feed_cursors_reach_the_documented_ten_to_the_fifteen(tmp_path, feed):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        # taken: a journal feed then says no entry reaches it (422), the others list nothing
        journal = feed in ("/v1/journal/movements", "/v1/journal/alerts", "/v1/reviews",
                           "/v1/fraud-reports")  # fmt: skip
        for after_id in ("1000000000", "999999999999999", "1000000000000000"):
            reply = await call(port, "GET", f"{feed}?after_id={after_id}", token=AUDITOR_TOKEN)
            assert reply.status == (422 if journal else 200), (after_id, reply)
        refused = await call(port, "GET", f"{feed}?after_id=1000000000000001",
                             token=AUDITOR_TOKEN)  # fmt: skip
        assert refused.status == 400, refused
        assert "from 0 to 1,000,000,000,000,000" in refused.json["error"], refused
        arabic = await call(port, "GET", f"{feed}?after_id=%D9%A1", token=AUDITOR_TOKEN)
        assert arabic.status == 400, arabic


async def test_limits_in_validation_messages_are_not_masked_but_a_pan_named_as_a_field_is(
    tmp_path,
):
    pan = "4761731234567890"
    async with open_service(tmp_path) as service, running_admin(service) as port:
        await call(port, "POST", "/v1/accounts", payload={"account_id": "a1"})
        funds = await call(port, "POST", "/v1/accounts/a1/funds",
                           payload={"amount_minor": 10**16})  # fmt: skip
        assert funds.status == 422 and "1,000,000,000,000,000" in funds.json["error"], funds
        assert "******" not in funds.body.decode()
        odd = await call(port, "POST", "/v1/cards/search", payload={"pan": pan[:-1], pan: 1})
        assert odd.status == 422 and pan not in odd.body.decode(), odd
        assert "476173******7890" in json.dumps(odd.json["details"])


@pytest.mark.parametrize("bin_", ["٤٧٦١٧٣", "４７６１７３", "47617３"])
async def test_a_bin_of_digits_other_than_0_to_9_is_refused(tmp_path, bin_):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        reply = await call(port, "POST", "/v1/products", payload={**PRODUCT, "bin": bin_})
        _clean(reply)
        assert reply.status == 422 and "bin" in reply.json["error"]
        assert await service.list_products() == []


async def test_percent_encoded_path_ids_are_decoded_after_routing(tmp_path):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        made = await call(port, "POST", "/v1/accounts", payload={"account_id": "core:0001"})
        assert made.status == 201, made
        found = await call(port, "GET", "/v1/accounts/core%3A0001", token=AUDITOR_TOKEN)
        assert found.status == 200 and found.json["account_id"] == "core:0001", found
        # a decoded "/" stays inside its parameter: an account id, not another route
        slash = await call(port, "GET", "/v1/accounts/core%2Fholds", token=AUDITOR_TOKEN)
        assert slash.status == 404 and "account core/holds not found" in slash.json["error"]


async def test_each_feed_documents_its_own_limit(tmp_path):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        doc = (await call(port, "GET", "/openapi.json", token=None)).json

    def limit_of(path: str) -> str:
        (param,) = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        return param["description"]

    for feed in ("/v1/journal/movements", "/v1/journal/alerts", "/v1/wallet-events"):
        assert "1-10,000 (default 1,000)" in limit_of(feed), feed
    assert "(default 20)" in limit_of("/v1/acceptors")
    assert "(default 100)" in limit_of("/v1/cards")


async def test_a_refused_request_is_logged_with_its_caller(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="authhost.admin.api")
    async with open_service(tmp_path) as service, running_admin(service) as port:
        reply = await call(port, "GET", "/v1/cards/nope", token=AUDITOR_TOKEN)
        assert reply.status == 404
        anonymous = await call(port, "GET", "/v1/cards/nope", token=None)
        assert anonymous.status == 401
    lines = [r.getMessage() for r in caplog.records if "/v1/cards/nope" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("GET /v1/cards/nope -> 404 (auditor:"), lines
    assert lines[1] == "GET /v1/cards/nope -> 401 (-)"


async def test_days_that_do_not_exist_and_channels_null_are_refused(tmp_path):
    """A stop payment until 2026-99-99 (the shape of a day) was kept; a product change with
    "channels": null emptied its channels, so every request on its cards answered 57."""
    async with open_service(tmp_path) as service, running_admin(service) as port:
        assert (await call(port, "POST", "/v1/products", payload=PRODUCT)).status == 201
        await call(port, "POST", "/v1/accounts", payload={"account_id": "a1"})
        issued = await call(port, "POST", "/v1/cards",
                            payload={"product_id": "p1", "account_id": "a1"})  # fmt: skip
        card_id = issued.json["card_id"]
        for until in ("2026-99-99", "2026-02-30", "1999-12-31"):
            stops = {"stops": [{"merchant_id": "MERCHANT0000001", "until": until}]}
            reply = await call(port, "PUT", f"/v1/cards/{card_id}/stop-payments", payload=stops)
            _clean(reply)
            assert until in reply.json["error"] or until in json.dumps(reply.json), reply
        notice = {"notices": [{"countries": ["840"], "start": "2026-13-01", "end": "2026-13-02"}]}
        _clean(await call(port, "PUT", f"/v1/cards/{card_id}/travel-notices", payload=notice))
        reply = await call(port, "PATCH", "/v1/products/p1", payload={"channels": None})
        _clean(reply)
        assert "channels" in reply.json["error"]
        product = await call(port, "GET", "/v1/products/p1", token=AUDITOR_TOKEN)
        assert product.json["channels"], product  # unchanged
        ok = {"stops": [{"merchant_id": "MERCHANT0000001", "until": "2026-12-31"}]}
        assert (
            await call(port, "PUT", f"/v1/cards/{card_id}/stop-payments", payload=ok)
        ).status == 200
