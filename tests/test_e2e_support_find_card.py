"""A support desk finds a caller's card from what the caller can say on the phone (the last four
digits printed on the card and their name), over a running host on both stores: no full PAN is
asked for, and the answer shows none. Before, ``GET /v1/cards`` took no such filter (400
"unknown query parameter(s): last4") and an agent paged through every card of the bank."""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote

from host_admin import card_id_of, cli_config, run_cli, start_host_with_admin
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import store_url  # noqa: F401 - fixture


async def test_a_card_is_found_by_its_last_four_digits_and_the_holders_name(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    pan = host.cards["active-visa"]["pan"]
    card_id = await card_id_of(port, pan)
    card = (await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)).json
    surname = card["cardholder_name"].split()[-1]
    assert surname

    by_last4 = await call(port, "GET", f"/v1/cards?last4={pan[-4:]}", token=AUDITOR_TOKEN)
    assert by_last4.status == 200, by_last4
    assert card_id in {c["card_id"] for c in by_last4.json["cards"]}
    assert all(c["pan"].endswith(pan[-4:]) for c in by_last4.json["cards"])
    assert pan not in json.dumps(by_last4.json)  # masked only

    query = f"/v1/cards?last4={pan[-4:]}&name={surname.lower()}"  # as the agent types it
    both = await call(port, "GET", query, token=AUDITOR_TOKEN)
    assert [c["card_id"] for c in both.json["cards"]] == [card_id], both
    other = await call(port, "GET", f"/v1/cards?last4={pan[-4:]}&name=NOBODY", token=AUDITOR_TOKEN)
    assert other.status == 200 and other.json["cards"] == []
    by_name = await call(port, "GET", f"/v1/cards?name={surname}", token=AUDITOR_TOKEN)
    assert card_id in {c["card_id"] for c in by_name.json["cards"]}
    assert all(surname in c["cardholder_name"] for c in by_name.json["cards"])

    for bad in ("12a4", "123", "12345"):
        refused = await call(port, "GET", f"/v1/cards?last4={bad}", token=AUDITOR_TOKEN)
        assert refused.status in (400, 422) and refused.json["error"], bad

    config = cli_config(tmp_path, store_url)
    code, output = await run_cli(
        "cards", "list", "--last4", pan[-4:], "--name", surname.lower(), "-o", "json",
        "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    assert [c["card_id"] for c in json.loads(output)] == [card_id]


async def test_a_name_said_with_accents_finds_the_embossed_card(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A caller's name as the agent hears and types it, accents and all: the card carries it
    in ASCII capitals (``CardholderName``), so the accents are dropped before the search, and a
    letter no card can carry is refused (422) instead of answering "no such card". Before,
    both answered 200 with no card: the agent told a cardholder the bank had no card of
    theirs."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    pan = host.cards["active-visa"]["pan"]
    card_id = await card_id_of(port, pan)
    card = (await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)).json
    surname = card["cardholder_name"].split()[-1]
    vowel = next(i for i, ch in enumerate(surname) if ch in "AEIOU")
    accented = surname[:vowel] + unicodedata.normalize("NFC", surname[vowel] + "\u0301")
    accented += surname[vowel + 1 :].lower()  # e.g. LOVÉlace

    found = await call(
        port, "GET", f"/v1/cards?last4={pan[-4:]}&name={quote(accented)}", token=AUDITOR_TOKEN
    )
    assert found.status == 200, found
    assert [c["card_id"] for c in found.json["cards"]] == [card_id], found

    for unembossable in ("Straße", "Łukasz"):
        refused = await call(
            port, "GET", f"/v1/cards?name={quote(unembossable)}", token=AUDITOR_TOKEN
        )
        assert refused.status in (400, 422), refused
        assert "embossed" in refused.json["error"], refused
