"""Payment tokens over TCP on both stores: a wallet payment the network de-tokenised (field 2
the card's PAN, field 48 SE 33 the token) is approved while the token is one of the card's and
active; a suspended (lost phone), deleted or unknown token is declined 62 while the plastic pays
on; the journal and the rules see the wallet; tokens are registered and changed over the admin
API and the CLI, audited, and never stored, shown or logged as numbers."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import replace
from pathlib import Path

import trio
from host_admin import card_id_of, cli_config, run_cli, visa_at_host
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, OPERATOR_TOKEN, call
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture
from typer.testing import CliRunner

import authhost.admin.wallet_events as wallet_events_module
from authhost.cards.luhn import luhn_check_digit
from authhost.iso.messages import TokenData
from authhost.iso.subfields import build_pan_mapping
from authhost.security.module import SecurityModule
from authhost.store import opened_store
from authhost.store.interface import JournalQuery
from simulator.cli import app as sim_app

GOOGLE_PAY = "50120834693"
APPLE_PAY = "50110030273"


def wallet_payment(card: dict, token: dict | TokenData, amount: int = 1_000) -> dict:
    """An in-app purchase paid with a wallet token, as the network sends it de-tokenised."""
    if isinstance(token, dict):
        token = TokenData(token["pan"], token["expiry"], token["requestor_id"], "C")
    web = {"18": "5999", "22": "812", "25": "59", "35": None, "41": "APP00001"}
    return purchase(card, amount, **web, **{"42": "INAPPSHOP000001", "48": "33" + _sized(token)})


def ecommerce(card: dict, amount: int = 1_000) -> dict:
    """The same shop, the card number typed in with its CVV2."""
    web = {"18": "5999", "22": "812", "25": "59", "35": None, "41": "APP00001"}
    cvv2 = f"92{len(card['cvv2']):02d}{card['cvv2']}"
    return purchase(card, amount, **web, **{"42": "INAPPSHOP000001", "48": cvv2})


def _sized(token: TokenData) -> str:
    value = build_pan_mapping(token)
    return f"{len(value):02d}{value}"


def host_pan_index(host, pan: str) -> str:
    """The store's index of a PAN, from the host's key store (as the server computes it)."""
    return SecurityModule.open(host.config.security).pan_index(pan)


def token_number(seed: str) -> str:
    body = "4761739" + seed.rjust(8, "0")
    return body + luhn_check_digit(body)


async def test_a_token_pays_while_active_and_the_plastic_pays_on(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    caplog,
):
    caplog.set_level(logging.INFO)
    at = await visa_at_host(nursery, tmp_path, store_url)
    card, token = at.visa, at.visa["token"]
    path = f"/v1/cards/{at.card_id}"
    [stored] = (await call(at.port, "GET", path)).json["tokens"]
    assert (stored["wallet"], stored["state"], stored["last4"]) == (
        "google_pay",
        "active",
        token["pan"][-4:],
    )
    ref = stored["token_ref"]

    assert (await at.switch.send(wallet_payment(card, token)))["39"] == "00"
    suspended = await call(
        at.port,
        "PUT",
        f"{path}/tokens/{ref}",
        payload={"state": "suspended", "reason": "lost phone"},
    )
    assert suspended.status == 200 and suspended.json["tokens"][0]["state"] == "suspended"
    assert (await at.switch.send(wallet_payment(card, token)))["39"] == "62"
    assert (await at.switch.send(ecommerce(card)))["39"] == "00"  # the plastic pays on
    resumed = await call(at.port, "PUT", f"{path}/tokens/{ref}", payload={"state": "active"})
    assert resumed.status == 200
    assert (await at.switch.send(wallet_payment(card, token)))["39"] == "00"
    deleted = await call(at.port, "PUT", f"{path}/tokens/{ref}", payload={"state": "deleted"})
    assert deleted.status == 200
    assert (await at.switch.send(wallet_payment(card, token)))["39"] == "62"
    final = await call(at.port, "PUT", f"{path}/tokens/{ref}", payload={"state": "active"})
    assert final.status == 409 and "deleted" in final.json["error"]
    missing = await call(at.port, "PUT", f"{path}/tokens/nope", payload={"state": "active"})
    assert missing.status == 404
    # a token the network says it mapped to this card, but the issuer never consented to
    stranger = TokenData(token_number("1234"), "3012", APPLE_PAY, "C")
    assert (await at.switch.send(wallet_payment(card, stranger)))["39"] == "62"

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(card_id=at.card_id, limit=100))
    seen = [(e.response_code, e.wallet, e.token_last4, e.reason_codes.split(";")[0])
            for e in entries]  # fmt: skip
    last4 = token["pan"][-4:]
    assert seen == [
        ("00", "google_pay", last4, ""),
        ("62", "google_pay", last4, "token.suspended"),
        ("00", "", "", ""),
        ("00", "google_pay", last4, ""),
        ("62", "google_pay", last4, "token.deleted"),
        ("62", "", "", "token.unknown"),
    ]
    audit = await call(at.port, "GET", f"/v1/audit?subject={at.card_id}")
    actions = [a["action"] for a in audit.json["audit"]]
    for action in ("card.token_suspended", "card.token_active", "card.token_deleted"):
        assert action in actions
    for number in (token["pan"], stranger.number):  # never written anywhere in clear
        assert number not in caplog.text
        assert number not in str(audit.json)


async def test_tokens_are_registered_over_the_api_and_the_cli(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    card, path = at.visa, f"/v1/cards/{at.card_id}/tokens"
    apple = token_number("777")
    added = await call(
        at.port, "POST", path, payload={"token_pan": apple, "requestor_id": APPLE_PAY,
                                        "expiry": "3103", "device": "watch"}
    )  # fmt: skip
    assert added.status == 200, added
    [new] = [t for t in added.json["tokens"] if t["last4"] == apple[-4:]]
    assert (new["wallet"], new["device"], new["state"]) == ("apple_pay", "watch", "active")
    assert apple not in str(added.json)
    token = TokenData(apple, "3103", APPLE_PAY, "C")
    assert (await at.switch.send(wallet_payment(card, token)))["39"] == "00"

    again = await call(
        at.port, "POST", path, payload={"token_pan": apple, "requestor_id": APPLE_PAY}
    )
    assert again.status == 409
    other_id = await card_id_of(at.port, at.host.cards["active-credit"]["pan"])
    taken = await call(  # another card: refused, naming the card that holds it, by id only
        at.port, "POST", f"/v1/cards/{other_id}/tokens",
        payload={"token_pan": apple, "requestor_id": GOOGLE_PAY},
    )  # fmt: skip
    assert taken.status == 409 and f"registered on card {at.card_id}" in taken.json["error"]
    assert apple not in taken.json["error"] and at.visa["pan"] not in taken.json["error"]
    bad = apple[:-1] + str((int(apple[-1]) + 1) % 10)
    refused = await call(
        at.port, "POST", path, payload={"token_pan": bad, "requestor_id": APPLE_PAY}
    )
    assert refused.status == 422 and bad not in refused.json["error"]
    own = await call(at.port, "POST", path, payload={"token_pan": card["pan"],
                                                     "requestor_id": APPLE_PAY})  # fmt: skip
    assert own.status == 422
    short = await call(at.port, "POST", path, payload={"token_pan": apple, "requestor_id": "1"})
    assert short.status == 422
    old = token_number("778")  # a token whose own expiry has passed: the wallet's date
    added = await call(
        at.port,
        "POST",
        path,
        payload={"token_pan": old, "requestor_id": APPLE_PAY, "expiry": "2001"},
    )
    assert added.status == 200
    expired = await at.switch.send(wallet_payment(card, TokenData(old, "2001", APPLE_PAY, "C")))
    assert expired["39"] == "54"

    # the CLI: the number from stdin, never an argument; then suspend it by its reference
    config = cli_config(tmp_path, store_url)
    merchant = token_number("4242")
    code, output = await run_cli(
        "cards", "token-add", at.card_id, "--requestor-id", "40010075001", "--wallet", "merchant",
        "--config", str(config), input=merchant + "\n",
    )  # fmt: skip
    assert code == 0, output
    assert merchant not in output and merchant[-4:] in output
    view = (await call(at.port, "GET", f"/v1/cards/{at.card_id}")).json
    [on_file] = [t for t in view["tokens"] if t["wallet"] == "merchant"]
    code, output = await run_cli(
        "cards", "token-state", at.card_id, on_file["token_ref"], "--state", "suspended",
        "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    token = TokenData(merchant, "", "40010075001", "E")
    assert (await at.switch.send(wallet_payment(card, token)))["39"] == "62"
    if store_url.startswith("sqlite"):  # no token or card number in the file, nor its WAL
        files = list(tmp_path.glob("authhost.db*"))
        assert any(f.name.endswith("-wal") for f in files)
        for file in files:
            data = file.read_bytes()
            for number in (apple, merchant, old, card["pan"]):
                assert number.encode() not in data and number[6:].encode() not in data


WALLET_RULES = (
    Path(__file__).parent.parent / "examples" / "rules" / "wallet_rules.toml"
).read_text()


async def test_rules_see_the_wallet_and_a_broken_token_is_a_format_error(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host = await start_host(nursery, tmp_path, store_url, rules=WALLET_RULES)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    assert (await switch.send(wallet_payment(card, card["token"], 20_000)))["39"] == "59"
    assert (await switch.send(wallet_payment(card, card["token"], 5_000)))["39"] == "00"
    assert (await switch.send(ecommerce(card, 20_000)))["39"] == "00"  # not tokenised
    async with opened_store(store_url) as store:  # the token was put in the wallet 3 days ago
        stored = await store.find_card(host_pan_index(host, card["pan"]))
        assert stored is not None
        aged = replace(stored.tokens[0], created_at=stored.tokens[0].created_at - 3 * 86400)
        await store.update_card(replace(stored, tokens=(aged,)))
    assert (await switch.send(wallet_payment(card, card["token"], 20_000)))["39"] == "00"
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=10))
    assert [e.review for e in entries] == [False, True, False, False]  # WAL-02: a new token
    ages = [e.token_age_hours for e in entries]
    assert ages[0] < 1 and ages[1] < 1 and ages[2] == -1 and 72 <= ages[3] < 73
    broken = wallet_payment(card, card["token"])
    broken["48"] = "3306" + "0299AB"  # a token number that is not one
    assert (await switch.send(broken))["39"] == "30"


async def test_a_wallets_token_request_is_approved_stepped_up_or_declined(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    caplog,
):
    """Green: the token pays at once. Yellow (a wallet that doubts its device, no CVV2, a
    card put in several phones in a day): the token waits until the cardholder's one-time code
    is verified. Red (wrong CVV2 or expiry, a lost card, a wallet that says the device is bad):
    no token. Each answer is audited; no number is shown or logged."""
    caplog.set_level(logging.INFO)
    at = await visa_at_host(nursery, tmp_path, store_url)
    card = at.visa

    def asked(token: str, **changes) -> dict:
        request = {"pan": card["pan"], "card_expiry": card["expiry"], "cvv2": card["cvv2"],
                   "token_pan": token, "requestor_id": APPLE_PAY, "expiry": "3112",
                   "device_score": 5, "account_score": 4}  # fmt: skip
        return {**request, **changes}

    green = token_number("501")
    answer = await call(at.port, "POST", "/v1/token-requests", payload=asked(green))
    assert answer.status == 200, answer
    assert (answer.json["decision"], answer.json["reasons"]) == ("approved", [])
    assert answer.json["card_id"] == at.card_id and answer.json["token_ref"]
    paid = wallet_payment(card, TokenData(green, "3112", APPLE_PAY, "C"))
    assert (await at.switch.send(paid))["39"] == "00"

    # the demo's token (today) and this one: a third phone in a day, and a doubtful device
    yellow = token_number("502")
    answer = await call(at.port, "POST", "/v1/token-requests",
                        payload=asked(yellow, device_score=2, cvv2=""))  # fmt: skip
    assert answer.json["decision"] == "authentication_required"
    assert set(answer.json["reasons"]) == {
        "provisioning.low_device_score",
        "provisioning.no_cvv2",
        "provisioning.recent_tokens",
    }
    waiting = TokenData(yellow, "3112", APPLE_PAY, "C")
    assert (await at.switch.send(wallet_payment(card, waiting)))["39"] == "62"  # not yet
    ref = answer.json["token_ref"]
    verified = await call(at.port, "PUT", f"/v1/cards/{at.card_id}/tokens/{ref}",
                          payload={"state": "active", "reason": "one-time code verified"})  # fmt: skip
    assert verified.status == 200
    assert (await at.switch.send(wallet_payment(card, waiting)))["39"] == "00"

    for changes, reason in (
        ({"cvv2": "000" if card["cvv2"] != "000" else "111"}, "provisioning.cvv2_failed"),
        ({"card_expiry": "2001"}, "provisioning.expiry_mismatch"),
        ({"device_score": 1}, "provisioning.device_score"),
    ):
        red = await call(at.port, "POST", "/v1/token-requests",
                         payload=asked(token_number("503"), **changes))  # fmt: skip
        assert red.status == 200 and red.json["decision"] == "declined"
        assert reason in red.json["reasons"] and red.json["token_ref"] == ""
    lost = at.host.cards["lost"]
    red = await call(at.port, "POST", "/v1/token-requests",
                     payload={**asked(token_number("504")), "pan": lost["pan"],
                              "card_expiry": lost["expiry"], "cvv2": lost["cvv2"]})  # fmt: skip
    assert red.json["decision"] == "declined" and red.json["reasons"] == ["provisioning.card_lost"]
    unknown = await call(at.port, "POST", "/v1/token-requests",
                         payload={**asked(token_number("505")), "pan": token_number("506")})  # fmt: skip
    assert unknown.status == 404

    view = (await call(at.port, "GET", f"/v1/cards/{at.card_id}")).json
    assert len(view["tokens"]) == 3  # the demo's, green, yellow: no red one
    audit = await call(at.port, "GET", f"/v1/audit?subject={at.card_id}")
    requests = [a for a in audit.json["audit"] if a["action"] == "card.token_request"]
    assert len(requests) == 5  # two registered, three declined
    for secret in (green, yellow, card["pan"]):
        assert secret not in str(audit.json) and secret not in caplog.text
    # the CVV2 (three digits: as a bare string it would be found in any id or time) is never
    # kept under any name in the audit's views
    for entry in requests:
        kept = json.loads(entry["after"])
        assert card["cvv2"] not in _values_named(kept, "cvv") and "cvv2" not in kept


async def test_wrong_cvv2s_in_token_requests_stop_the_right_one(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """A QSA walk tried 12 wrong CVV2s in token requests, then the right one: approved, the
    token active. A token request was a CVV2 oracle with no limit (1,000 tries at most) that
    ends in a working token; after 3 wrong ones in a day every request is declined."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    card = at.visa
    wrong = "000" if card["cvv2"] != "000" else "111"
    request = {"pan": card["pan"], "card_expiry": card["expiry"], "token_pan": token_number("601"),
               "requestor_id": APPLE_PAY, "expiry": "3112", "device_score": 5}  # fmt: skip
    for _ in range(3):
        red = await call(at.port, "POST", "/v1/token-requests", payload={**request, "cvv2": wrong})
        assert red.json["reasons"] == ["provisioning.cvv2_failed"], red
    right = await call(at.port, "POST", "/v1/token-requests",
                       payload={**request, "cvv2": card["cvv2"]})  # fmt: skip
    assert right.status == 200 and right.json["decision"] == "declined", right
    assert right.json["reasons"] == ["provisioning.cvv2_tries"] and not right.json["token_ref"]


async def test_a_locked_card_does_not_say_whether_a_cvv2_is_right(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Once 3 wrong CVV2s locked token requests, a wrong one was answered cvv2_failed and
    cvv2_tries, the right one cvv2_tries alone: the oracle went on, the lock only delayed the
    token (the right CVV2, learnt while locked, got it the day after)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    card = at.visa
    wrong = [c for c in ("000", "111", "222", "333", "444") if c != card["cvv2"]]
    request = {"pan": card["pan"], "card_expiry": card["expiry"], "token_pan": token_number("602"),
               "requestor_id": APPLE_PAY, "expiry": "3112", "device_score": 5}  # fmt: skip
    for cvv2 in wrong[:3]:
        await call(at.port, "POST", "/v1/token-requests", payload={**request, "cvv2": cvv2})
    answers = [
        (await call(at.port, "POST", "/v1/token-requests", payload={**request, "cvv2": c})).json
        for c in (wrong[3], card["cvv2"])
    ]
    assert [a["reasons"] for a in answers] == [["provisioning.cvv2_tries"]] * 2, answers


async def test_requests_without_a_cvv2_do_not_hide_the_wrong_ones(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The count read the card's newest 200 audit entries: 3 wrong CVV2s, then 200 declined
    requests with no CVV2, and the count was 0 again (3 more guesses per 200 requests)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    card = at.visa
    wrong = "000" if card["cvv2"] != "000" else "111"
    request = {"pan": card["pan"], "card_expiry": card["expiry"], "token_pan": token_number("603"),
               "requestor_id": APPLE_PAY, "expiry": "3112", "device_score": 5}  # fmt: skip
    for _ in range(3):
        await call(at.port, "POST", "/v1/token-requests", payload={**request, "cvv2": wrong})
    filler = {**request, "card_expiry": "0101"}  # declined (expiry), no CVV2
    for _ in range(200):
        await call(at.port, "POST", "/v1/token-requests", payload=filler)
    right = await call(at.port, "POST", "/v1/token-requests",
                       payload={**request, "cvv2": card["cvv2"]})  # fmt: skip
    assert right.json["reasons"] == ["provisioning.cvv2_tries"], right.json


async def test_the_notification_service_hears_of_every_wallet_event_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    monkeypatch,
):
    """A card put in a phone (registered, or asked for: approved, waiting, declined), a token
    activated, suspended, deleted: each an event once, in order, with the token's last four
    digits and wallet and never a number; other audit entries are not events."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    card, base = at.visa, f"/v1/cards/{at.card_id}"
    first = await call(at.port, "GET", "/v1/wallet-events", token=AUDITOR_TOKEN)
    assert [e["event"] for e in first.json["events"]] == ["token_added"]  # the demo's phone
    cursor = first.json["next_after_id"]
    assert first.json["events"][0]["token"]["wallet"] == "google_pay"

    def asked(token: str, **changes) -> dict:
        return {"pan": card["pan"], "card_expiry": card["expiry"], "cvv2": card["cvv2"],
                "token_pan": token, "requestor_id": APPLE_PAY, "device": "watch",
                **changes}  # fmt: skip

    approved = await call(at.port, "POST", "/v1/token-requests", payload=asked(token_number("71")))
    other = await call(at.port, "PUT", f"{base}/controls", payload={"blocked_channels": ["moto"]})
    assert other.status == 200  # audited, and not a wallet event
    waiting = await call(at.port, "POST", "/v1/token-requests",
                         payload=asked(token_number("72"), device_score=2))  # fmt: skip
    await call(
        at.port,
        "POST",
        "/v1/token-requests",
        payload=asked(token_number("73"), cvv2="999" if card["cvv2"] != "999" else "998"),
    )
    ref = waiting.json["token_ref"]
    await call(at.port, "PUT", f"{base}/tokens/{ref}", payload={"state": "active"})
    await call(at.port, "PUT", f"{base}/tokens/{approved.json['token_ref']}",
               payload={"state": "deleted"})  # fmt: skip

    later = await call(at.port, "GET", f"/v1/wallet-events?after_id={cursor}&limit=2",
                       token=AUDITOR_TOKEN)  # fmt: skip
    rest = await call(at.port, "GET",
                      f"/v1/wallet-events?after_id={later.json['next_after_id']}",
                      token=AUDITOR_TOKEN)  # fmt: skip
    events = later.json["events"] + rest.json["events"]
    assert [(e["event"], e.get("decision")) for e in events] == [
        ("token_requested", "approved"),
        ("token_requested", "authentication_required"),
        ("token_requested", "declined"),
        ("token_activated", None),
        ("token_deleted", None),
    ]
    assert events[1]["token"]["state"] == "suspended" and events[2]["token"] is None
    assert events[2]["reasons"] == ["provisioning.cvv2_failed"]
    assert events[3]["token"]["token_ref"] == ref and events[3]["token"]["device"] == "watch"
    assert all(e["card_id"] == at.card_id and "*" in e["pan"] for e in events)
    assert card["pan"] not in str(events) and token_number("71") not in str(events)
    again = await call(at.port, "GET",
                       f"/v1/wallet-events?after_id={rest.json['next_after_id']}",
                       token=AUDITOR_TOKEN)  # fmt: skip
    assert again.json["events"] == []
    bad = await call(at.port, "GET", "/v1/wallet-events?limit=0", token=AUDITOR_TOKEN)
    assert bad.status == 400
    # the audit read two entries at a time (most are not wallet events): the same events
    monkeypatch.setattr(wallet_events_module, "PAGE", 2)
    paged = await call(at.port, "GET", f"/v1/wallet-events?after_id={cursor}",
                       token=AUDITOR_TOKEN)  # fmt: skip
    assert paged.json["events"] == events


async def test_the_simulator_asks_for_a_token_as_the_network_does(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """``authhost-sim token-request`` sends a demo card's data and a fresh token to the admin
    API, prints the answer and keeps an approved or waiting token in the demo file, so the
    next wallet payment uses it."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    operator = tmp_path / "operator-token"
    operator.write_text(OPERATOR_TOKEN)
    demo = tmp_path / "demo-cards.json"
    last4 = at.visa["pan"][-4:]

    async def ask(*options: str) -> str:
        args = ["token-request", "--cards", str(demo), "--card", last4, "--token-file",
                str(operator), "--admin", f"http://127.0.0.1:{at.port}", *options]  # fmt: skip
        done = await trio.to_thread.run_sync(CliRunner().invoke, sim_app, args)
        assert done.exit_code == 0, done.output
        assert at.visa["pan"] not in done.output
        return done.output

    def the_cards_token() -> TokenData:
        [row] = [c for c in json.loads(demo.read_text())["cards"] if c["pan"] == at.visa["pan"]]
        token = row["token"]
        return TokenData(token["pan"], token["expiry"], token["requestor_id"], "C")

    before = the_cards_token()
    assert "approved" in await ask("--device-score", "5", "--wallet", "apple_pay")
    green = the_cards_token()
    assert green != before and green.requestor_id == APPLE_PAY
    assert (await at.switch.send(wallet_payment(at.visa, green)))["39"] == "00"
    answer = await ask("--device-score", "2")
    assert "authentication_required" in answer and "provisioning.low_device_score" in answer
    waiting = the_cards_token()
    assert (await at.switch.send(wallet_payment(at.visa, waiting)))["39"] == "62"
    answer = await ask("--wrong-cvv2")
    assert "declined" in answer and "provisioning.cvv2_failed" in answer
    assert the_cards_token() == waiting  # nothing kept for a declined request

    with socket.socket() as unused:  # a port nothing listens on: the admin API is elsewhere
        unused.bind(("127.0.0.1", 0))
        elsewhere = f"http://127.0.0.1:{unused.getsockname()[1]}"
    args = ["token-request", "--cards", str(demo), "--card", last4, "--token-file",
            str(operator), "--admin", elsewhere]  # fmt: skip
    done = await trio.to_thread.run_sync(CliRunner().invoke, sim_app, args)
    said = " ".join(done.output.split())
    assert done.exit_code == 1 and f"cannot reach the admin API at {elsewhere}" in said
    assert "is the host running, with its [admin] host and port there?" in said  # what to check


async def test_a_card_reported_lost_declines_its_tokens_and_keeps_them_for_its_replacement(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Reported lost over the admin API: a wallet payment with one of its tokens is refused for
    the card's state (41); the tokens are not deleted (the phone was not lost: they move to
    the replacement, ``test_e2e_token_pan_update.py``), and the demo's, put in the wallet
    today, is suspended (a token registered in the day before the report may be the
    finder's). A closed card ends its tokens (deleted)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    card, token = at.visa, at.visa["token"]
    assert (await at.switch.send(wallet_payment(card, token)))["39"] == "00"
    lost = await call(at.port, "POST", f"/v1/cards/{at.card_id}/report-lost")
    assert lost.status == 200, lost
    assert [t["state"] for t in lost.json["tokens"]] == ["suspended"]
    assert lost.json["tokens"][0]["changed_at"] >= lost.json["tokens"][0]["created_at"]
    assert (await at.switch.send(wallet_payment(card, token)))["39"] == "41"
    other = await card_id_of(at.port, at.host.cards["active-3624"]["pan"])
    await call(at.port, "POST", f"/v1/cards/{other}/tokens",
               payload={"token_pan": token_number("431"), "requestor_id": APPLE_PAY})  # fmt: skip
    closed = await call(at.port, "POST", f"/v1/cards/{other}/cancel")
    assert closed.status == 200 and [t["state"] for t in closed.json["tokens"]] == ["deleted"]


def _values_named(data: object, part: str) -> list[str]:
    """Every value under a key containing ``part``, anywhere in ``data``."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if part in str(key) and not isinstance(value, dict | list):
                found.append(str(value))
            found += _values_named(value, part)
    elif isinstance(data, list):
        for item in data:
            found += _values_named(item, part)
    return found


async def test_wrong_cvv2s_sent_together_are_not_all_checked(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Each request read the count before the others were audited: 12 token requests sent at
    once were each checked (12 CVV2 guesses where 3 are allowed; 1,000 at once find it)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    card = at.visa
    wrong = [f"{n:03d}" for n in range(100, 113) if f"{n:03d}" != card["cvv2"]][:12]
    request = {"pan": card["pan"], "card_expiry": card["expiry"], "token_pan": token_number("604"),
               "requestor_id": APPLE_PAY, "expiry": "3112", "device_score": 5}  # fmt: skip
    answers: list[list[str]] = []

    async def guess(cvv2: str) -> None:
        sent = await call(at.port, "POST", "/v1/token-requests", payload={**request, "cvv2": cvv2})
        assert sent.status in (200, 409), sent  # 409: another one of the card being decided
        answers.append(sent.json.get("reasons", ["busy"]))

    async with trio.open_nursery() as together:
        for cvv2 in wrong:
            together.start_soon(guess, cvv2)
    checked = [r for r in answers if "provisioning.cvv2_failed" in r]
    assert len(answers) == 12 and 1 <= len(checked) <= 3, answers
    for _ in range(3):  # one after another now: 3 wrong ones in all, then none is checked
        await guess(wrong[0])
    after = answers[12:]
    assert after[-1] == ["provisioning.cvv2_tries"], answers
