"""A reversal that comes while the charge's dispute is open, over a running host on both
stores: the acquirer gave (part of) the money back, so the provisional credit must not give it
a second time. Reconciling (the server's own run, the API or the CLI) shrinks the dispute to
what the charge still takes and takes back the credit above it; a charge reversed whole
closes its dispute ``reversed``; a resolution counts the reversals itself."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import trio
from host_admin import cli_config, run_cli, visa_at_host
from iso_client import next_stan
from test_admin_support import call
from test_e2e_auth import balances_of, field_90, purchase, store_url  # noqa: F401 - fixture

from authhost import runtime
from authhost.admin.service.dispute_cases import Reconciling
from authhost.config import AuthConfig
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


def _reversal(original: dict[str, Any], amount_left: int | None = None) -> dict[str, Any]:
    """The acquirer's 0400 of ``original``; ``amount_left``: a partial one (field 95)."""
    fields = {**original, "t": "0400", "11": next_stan(), "90": field_90(original)}
    if amount_left is not None:
        fields["95"] = f"{amount_left:012d}" + "0" * 30
    return fields


async def _host_that_waits(at_host_args: tuple[Any, ...], monkeypatch: Any) -> Any:
    """A host whose own reconcile runs never come during the test (no full run for an hour,
    no check after its reversals), so that the operator's reconcile or resolution is the one
    that finds the reversal: under load the server's own check, a second after a reversal,
    came first now and then and the operator's found nothing left to do."""
    monkeypatch.setattr(runtime, "REVERSAL_CHECK_S", 3600.0)
    return await visa_at_host(*at_host_args, auth=AuthConfig(dispute_reconcile_every_s=3600))


async def _journal_id(store_url: str, card_id: str, stan: str) -> int:  # noqa: F811
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(card_id=card_id, since=0, limit=1000))
    [entry] = [e for e in entries if e.stan == stan and e.mti == "0200"]
    return entry.journal_id


async def _open(at: Any, journal_id: int, **body: Any) -> dict[str, Any]:
    url = f"/v1/cards/{at.card_id}/journal/{journal_id}/dispute"
    opened = await call(at.port, "POST", url, payload={"reason": "not_received", **body})
    assert opened.status == 200, opened
    return opened.json


async def _disputed(at: Any, store_url: str, *amounts: int) -> list[Any]:  # noqa: F811
    """A posted charge (0200) of each amount, each disputed with a provisional credit: the
    charges' fields and their disputes' views, in that order."""
    charges = [purchase(at.visa, amount=amount, t="0200") for amount in amounts]
    for fields in charges:
        assert (await at.switch.send(fields))["39"] == "00"
    opened = [await _open(at, await _journal_id(store_url, at.card_id, c["11"])) for c in charges]
    return [*charges, *opened]


async def _dispute_once(
    at: Any, dispute_id: str, check: Any = lambda d: d["state"] != "open"
) -> dict[str, Any]:
    """The dispute as the admin API shows it once ``check`` holds (the server's own runs
    change it in the background); 10 s at most."""
    with trio.fail_after(10):
        while not check(seen := (await call(at.port, "GET", f"/v1/disputes/{dispute_id}")).json):
            await trio.sleep(0.05)
    return seen


async def _reconciles(at: Any, dispute_id: str) -> int:
    """How often the audit says the dispute was set against reversals."""
    audit = await call(at.port, "GET", f"/v1/audit?subject={dispute_id}")
    return [e["action"] for e in audit.json["audit"]].count("dispute.reconcile")


async def test_a_charge_reversed_whole_during_its_dispute_is_credited_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    charge = purchase(at.visa, amount=5_000, t="0200")
    assert (await at.switch.send(charge))["39"] == "00"
    ledger, available = await balances_of(at.switch, at.visa)
    dispute = await _open(at, await _journal_id(store_url, at.card_id, charge["11"]))
    assert await balances_of(at.switch, at.visa) == (ledger + 5_000, available + 5_000)

    assert (await at.switch.send(_reversal(charge)))["39"] == "00"
    # the gap this closes: the credit and the reversal both gave the 50.00 back
    assert await balances_of(at.switch, at.visa) == (ledger + 10_000, available + 10_000)
    reconcile = f"/v1/disputes/{dispute['dispute_id']}/reconcile"
    done = await call(at.port, "POST", reconcile)
    assert done.status == 200, done
    assert (done.json["state"], done.json["amount_minor"], done.json["credited_minor"]) == (
        "reversed", 0, 0
    )  # fmt: skip
    assert "reversed 5000" in done.json["note"]
    assert await balances_of(at.switch, at.visa) == (ledger + 5_000, available + 5_000)
    again = await call(at.port, "POST", reconcile)
    assert again.status == 409 and "reversed" in again.json["error"], again
    resolved = await call(
        at.port, "POST", f"/v1/disputes/{dispute['dispute_id']}/resolve",
        payload={"outcome": "won"},
    )  # fmt: skip
    assert resolved.status == 409  # closed: nothing more moves
    assert await balances_of(at.switch, at.visa) == (ledger + 5_000, available + 5_000)
    listed = await call(at.port, "GET", "/v1/disputes?state=reversed")
    assert [d["dispute_id"] for d in listed.json["disputes"]] == [dispute["dispute_id"]]


async def test_a_partial_reversal_shrinks_the_dispute_and_its_credit(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """60.00 charged and disputed with a provisional credit; the acquirer reverses 20.00 (the
    charge keeps 40.00). The CLI's reconcile takes back 20.00 of the credit, once however
    often it runs; winning then leaves the cardholder 60.00 better off, not 80.00."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    charge = purchase(at.visa, amount=6_000, t="0200")
    assert (await at.switch.send(charge))["39"] == "00"
    ledger, _ = await balances_of(at.switch, at.visa)
    dispute = await _open(at, await _journal_id(store_url, at.card_id, charge["11"]))
    assert (await at.switch.send(_reversal(charge, amount_left=4_000)))["39"] == "00"
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 8_000

    config = cli_config(tmp_path, store_url)
    code, output = await run_cli("disputes", "reconcile", "--config", str(config))
    assert code == 0, output
    [changed] = json.loads(output)
    assert (changed["dispute_id"], changed["state"]) == (dispute["dispute_id"], "open")
    assert (changed["amount_minor"], changed["credited_minor"]) == (4_000, 4_000)
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 6_000
    code, output = await run_cli("disputes", "reconcile", "--config", str(config))
    assert (code, json.loads(output)) == (0, [])  # nothing left to set against
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 6_000

    won = await call(
        at.port, "POST", f"/v1/disputes/{dispute['dispute_id']}/resolve",
        payload={"outcome": "won"},
    )  # fmt: skip
    assert won.status == 200 and won.json["credited_minor"] == 4_000, won
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 6_000


async def test_a_resolution_counts_a_reversal_not_yet_set_against_its_dispute(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Won before any reconcile: the credit above what the charge still takes is taken back
    (a credit not given yet is given only up to it); lost takes back the whole credit and
    leaves the reversal's money, which was the acquirer's."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    credited = purchase(at.visa, amount=3_000, t="0200")
    quiet = purchase(at.visa, amount=2_000, t="0200")
    lost = purchase(at.visa, amount=1_000, t="0200")
    for fields in (credited, quiet, lost):
        assert (await at.switch.send(fields))["39"] == "00"
    ledger, _ = await balances_of(at.switch, at.visa)
    first = await _open(at, await _journal_id(store_url, at.card_id, credited["11"]))
    second = await _open(
        at, await _journal_id(store_url, at.card_id, quiet["11"]), provisional_credit=False
    )
    third = await _open(at, await _journal_id(store_url, at.card_id, lost["11"]))
    assert (await at.switch.send(_reversal(credited, amount_left=1_000)))["39"] == "00"
    assert (await at.switch.send(_reversal(quiet, amount_left=500)))["39"] == "00"
    assert (await at.switch.send(_reversal(lost)))["39"] == "00"
    # credits 30.00 + 10.00, reversals 20.00 + 15.00 + 10.00
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 8_500

    def resolve(dispute: dict[str, Any], outcome: str) -> Any:
        url = f"/v1/disputes/{dispute['dispute_id']}/resolve"
        return call(at.port, "POST", url, payload={"outcome": outcome})

    done = await resolve(first, "won")
    assert done.status == 200 and done.json["credited_minor"] == 1_000, done
    done = await resolve(second, "won")
    assert done.status == 200 and done.json["credited_minor"] == 500, done
    done = await resolve(third, "lost")
    assert done.status == 200 and done.json["credited_minor"] == 0, done
    # each charge is back once: 30.00 + 20.00 + 10.00
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 6_000


async def test_the_server_sets_reversals_against_open_disputes_by_itself(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The server's own runs, each reading only what the card journalled since the last one:
    a first partial reversal shrinks the dispute, a second one later closes it; the money
    comes back once, and each change is audited once."""
    at = await visa_at_host(
        nursery, tmp_path, store_url, auth=AuthConfig(dispute_reconcile_every_s=0.1)
    )
    charge = purchase(at.visa, amount=2_500, t="0200")
    assert (await at.switch.send(charge))["39"] == "00"
    ledger, _ = await balances_of(at.switch, at.visa)
    dispute = await _open(at, await _journal_id(store_url, at.card_id, charge["11"]))

    def once(check: Any) -> Any:
        return _dispute_once(at, dispute["dispute_id"], check)

    assert (await at.switch.send(_reversal(charge, amount_left=1_500)))["39"] == "00"
    seen = await once(lambda d: d["amount_minor"] != 2_500)
    assert (seen["state"], seen["amount_minor"], seen["credited_minor"]) == ("open", 1_500, 1_500)
    await trio.sleep(0.3)  # more runs with nothing new: nothing moves
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 2_500
    second = {**_reversal(charge), "4": f"{1_500:012d}", "95": "0" * 42}  # the rest, at last
    assert (await at.switch.send(second))["39"] == "00"
    seen = await once(lambda d: d["state"] != "open")
    assert (seen["state"], seen["amount_minor"], seen["credited_minor"]) == ("reversed", 0, 0)
    await trio.sleep(0.3)
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 2_500
    assert await _reconciles(at, dispute["dispute_id"]) == 2


async def test_a_reversal_approved_here_is_set_against_its_dispute_at_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """No full run for an hour: the reversal this process approved is what makes it
    reconcile the dispute it opened, within about a second, instead of leaving the
    cardholder both the credit and the reversal's money until the next run."""
    at = await visa_at_host(
        nursery, tmp_path, store_url, auth=AuthConfig(dispute_reconcile_every_s=3600)
    )
    charge = purchase(at.visa, amount=3_000, t="0200")
    assert (await at.switch.send(charge))["39"] == "00"
    ledger, _ = await balances_of(at.switch, at.visa)
    dispute = await _open(at, await _journal_id(store_url, at.card_id, charge["11"]))
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 3_000

    assert (await at.switch.send(_reversal(charge)))["39"] == "00"
    seen = await _dispute_once(at, dispute["dispute_id"])
    assert (seen["state"], seen["amount_minor"], seen["credited_minor"]) == ("reversed", 0, 0)
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 3_000  # given back once
    # a reversal of another charge of the account finds nothing more to move
    other = purchase(at.visa, amount=700, t="0200")
    assert (await at.switch.send(other))["39"] == "00"
    assert (await at.switch.send(_reversal(other)))["39"] == "00"
    await trio.sleep(1.5)
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 3_000
    assert await _reconciles(at, dispute["dispute_id"]) == 1


async def test_a_dispute_opened_elsewhere_is_set_against_a_reversal_at_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Disputes opened with the CLI (another process: the server never saw them opened) are
    found by the reversal's check too, within about a second: the first by reading the open
    disputes, the second, opened after that read, by reading those opened since."""
    at = await visa_at_host(
        nursery, tmp_path, store_url, auth=AuthConfig(dispute_reconcile_every_s=3600)
    )
    config = cli_config(tmp_path, store_url)
    ledger, _ = await balances_of(at.switch, at.visa)
    for amount in (2_500, 1_200):
        charge = purchase(at.visa, amount=amount, t="0200")
        assert (await at.switch.send(charge))["39"] == "00"
        journal_id = await _journal_id(store_url, at.card_id, charge["11"])
        code, output = await run_cli(
            "disputes", "open", at.card_id, str(journal_id), "--reason", "not_received",
            "--config", str(config),
        )  # fmt: skip
        assert code == 0, output
        dispute = json.loads(output)
        assert (await balances_of(at.switch, at.visa))[0] == ledger  # credited: net nothing
        assert (await at.switch.send(_reversal(charge)))["39"] == "00"
        seen = await _dispute_once(at, dispute["dispute_id"])
        assert (seen["state"], seen["credited_minor"]) == ("reversed", 0)
        assert (await balances_of(at.switch, at.visa))[0] == ledger  # given back once


async def test_a_reconcile_left_half_way_is_finished_once_by_a_resolution(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """A reconcile claims the dispute with its plan before money moves; one stopped after the
    claim (the process died, the store failed) is finished by whoever comes next, here the
    operator's resolution, which then counts from the finished state: the credit above what
    the charge still takes is taken back once, not once by each."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    charge = purchase(at.visa, amount=5_000, t="0200")
    assert (await at.switch.send(charge))["39"] == "00"
    ledger, _ = await balances_of(at.switch, at.visa)
    dispute = await _open(at, await _journal_id(store_url, at.card_id, charge["11"]))
    undo = _reversal(charge, amount_left=3_000)
    assert (await at.switch.send(undo))["39"] == "00"
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(card_id=at.card_id, since=0, limit=1000))
        [reversal] = [e for e in entries if e.stan == undo["11"]]
        stored = await store.get_dispute(dispute["dispute_id"])
        assert stored is not None
        plan = Reconciling(reversal.journal_id, 2_000, 3_000, 2_000)
        claimed = replace(stored, resolving=plan.text(), version=stored.version + 1)
        await store.update_dispute(claimed, expected_version=stored.version)
    shown = await call(at.port, "GET", f"/v1/disputes/{dispute['dispute_id']}")
    assert shown.json["resolving"].startswith("reconciling:")
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 7_000  # both, for now

    won = await call(
        at.port, "POST", f"/v1/disputes/{dispute['dispute_id']}/resolve",
        payload={"outcome": "won"},
    )  # fmt: skip
    assert won.status == 200, won
    assert (won.json["state"], won.json["amount_minor"], won.json["credited_minor"]) == (
        "won", 3_000, 3_000
    )  # fmt: skip
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 5_000
    audit = await call(at.port, "GET", f"/v1/audit?subject={dispute['dispute_id']}")
    actions = [e["action"] for e in audit.json["audit"]]
    assert actions.count("dispute.reconcile") == 1 and actions.count("dispute.resolve") == 1


async def test_reconcile_finishes_a_half_way_claim_and_refuses_what_it_cannot_touch(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """The next reconcile finishes a claim left half way (the money once); a dispute that a
    resolution has claimed is refused (409, the resolution counts the reversals itself), and
    an unknown one is 404."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    charge = purchase(at.visa, amount=4_000, t="0200")
    other = purchase(at.visa, amount=1_000, t="0200")
    for fields in (charge, other):
        assert (await at.switch.send(fields))["39"] == "00"
    ledger, _ = await balances_of(at.switch, at.visa)
    dispute = await _open(at, await _journal_id(store_url, at.card_id, charge["11"]))
    resolving = await _open(at, await _journal_id(store_url, at.card_id, other["11"]))
    undo = _reversal(charge)
    assert (await at.switch.send(undo))["39"] == "00"
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(card_id=at.card_id, since=0, limit=1000))
        [reversal] = [e for e in entries if e.stan == undo["11"]]
        for stored, claim in (
            (await store.get_dispute(dispute["dispute_id"]),
             Reconciling(reversal.journal_id, 4_000, 0, 4_000).text()),
            (await store.get_dispute(resolving["dispute_id"]), "won"),
        ):  # fmt: skip
            assert stored is not None
            claimed = replace(stored, resolving=claim, version=stored.version + 1)
            await store.update_dispute(claimed, expected_version=stored.version)

    done = await call(at.port, "POST", f"/v1/disputes/{dispute['dispute_id']}/reconcile")
    assert done.status == 200, done
    assert (done.json["state"], done.json["credited_minor"], done.json["resolving"]) == (
        "reversed", 0, ""
    )  # fmt: skip
    # 40.00 + 10.00 credited, 40.00 reversed, 40.00 taken back once
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 5_000
    refused = await call(at.port, "POST", f"/v1/disputes/{resolving['dispute_id']}/reconcile")
    assert refused.status == 409 and "won" in refused.json["error"], refused
    unknown = await call(at.port, "POST", "/v1/disputes/dsp-20260101-000000-000000-000/reconcile")
    assert unknown.status == 404, unknown
    # a claim nobody can read (edited by hand): refused with the reason, never a 500
    async with opened_store(store_url) as store:
        stored = await store.get_dispute(resolving["dispute_id"])
        assert stored is not None
        garbled = replace(stored, resolving="reconciling:x", version=stored.version + 1)
        await store.update_dispute(garbled, expected_version=stored.version)
    for action in ("reconcile", "resolve"):
        body = {"outcome": "won"} if action == "resolve" else None
        path = f"/v1/disputes/{resolving['dispute_id']}/{action}"
        refused = await call(at.port, "POST", path, payload=body)
        assert refused.status == 409 and "reconciling:x" in refused.json["error"], refused
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 5_000  # nothing moved


async def test_a_charge_reversed_whole_after_its_chargeback_is_recalled(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Charged back, then the acquirer reverses the whole charge: the cardholder has the money
    back from the reversal, so the dispute closes ``reversed`` and the chargebacks file
    recalls the chargeback (without the line the issuer would recover the money twice, the
    reversal and the chargeback). A dispute reversed before any chargeback has no line."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    since = int(time.time()) - 1
    lines: dict[str, list[tuple[str, int]]] = {}
    for chargeback in (True, False):
        charge = purchase(at.visa, amount=4_000, t="0200")
        assert (await at.switch.send(charge))["39"] == "00"
        dispute = await _open(at, await _journal_id(store_url, at.card_id, charge["11"]))
        if chargeback:
            url = f"/v1/disputes/{dispute['dispute_id']}/chargeback"
            assert (await call(at.port, "POST", url)).status == 200
        assert (await at.switch.send(_reversal(charge)))["39"] == "00"
        done = await call(at.port, "POST", f"/v1/disputes/{dispute['dispute_id']}/reconcile")
        assert done.status == 200 and done.json["state"] == "reversed", done
        lines[dispute["dispute_id"]] = []
    filed = await call(at.port, "GET", f"/v1/disputes/chargebacks?since={since}")
    assert filed.status == 200, filed
    for line in filed.json["chargebacks"]:
        lines[line["dispute_id"]].append((line["action"], line["amount_minor"]))
    charged_back, never = lines
    assert lines[charged_back] == [("chargeback", 4_000), ("recall", 4_000)], lines
    assert lines[never] == [], lines


async def _filed(at: Any, since: int) -> dict[str, list[tuple[str, int]]]:
    """The chargebacks file's lines since ``since``, by dispute: (action, amount)."""
    filed = await call(at.port, "GET", f"/v1/disputes/chargebacks?since={since}")
    assert filed.status == 200, filed
    lines: dict[str, list[tuple[str, int]]] = {}
    for line in filed.json["chargebacks"]:
        lines.setdefault(line["dispute_id"], []).append((line["action"], line["amount_minor"]))
    return lines


async def test_a_partial_reversal_after_its_chargeback_lowers_it_and_recalls_that_part(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """60.00 charged back whole, then the acquirer reverses 20.00: the reconcile lowers the
    chargeback to the 40.00 the charge still takes and the chargebacks file recalls 20.00
    (without it the issuer recovers those 20.00 twice: the reversal and the chargeback); the
    rest reversed later is recalled whole. A chargeback a representment contested is lowered
    only by what the issuer holds above what the charge still takes, and a withdrawal then
    recalls the rest of it."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    since = int(time.time()) - 1
    charge, contested, first, second = await _disputed(at, store_url, 6_000, 5_000)
    for dispute in (first, second):
        url = f"/v1/disputes/{dispute['dispute_id']}/chargeback"
        assert (await call(at.port, "POST", url)).status == 200
    url = f"/v1/disputes/{second['dispute_id']}/represented"
    body = {"reference": "REP-1", "amount_minor": 1_000}
    assert (await call(at.port, "POST", url, payload=body)).status == 200

    assert (await at.switch.send(_reversal(charge, amount_left=4_000)))["39"] == "00"
    assert (await at.switch.send(_reversal(contested, amount_left=3_000)))["39"] == "00"
    for dispute in (first, second):
        done = await call(at.port, "POST", f"/v1/disputes/{dispute['dispute_id']}/reconcile")
        assert done.status == 200 and done.json["state"] == "open", done
    lowered = (await call(at.port, "GET", f"/v1/disputes/{first['dispute_id']}")).json
    assert (lowered["amount_minor"], lowered["chargeback_minor"]) == (4_000, 4_000)
    assert lowered["amounts"]["recalled_minor"] == 2_000
    assert [r["amount_minor"] for r in lowered["recalls"]] == [2_000]
    assert lowered["amounts"]["if_won_minor"] == 4_000
    # the issuer holds 50.00 - 10.00 represented; the charge still takes 30.00: 10.00 too many
    held = (await call(at.port, "GET", f"/v1/disputes/{second['dispute_id']}")).json
    assert (held["chargeback_minor"], held["amounts"]["recalled_minor"]) == (4_000, 1_000)
    assert held["amounts"]["if_lost_minor"] == 3_000  # the chargeback less the representment

    rest = {**_reversal(charge), "4": f"{4_000:012d}", "95": "0" * 42}
    assert (await at.switch.send(rest))["39"] == "00"
    done = await call(at.port, "POST", f"/v1/disputes/{first['dispute_id']}/reconcile")
    assert done.status == 200 and done.json["state"] == "reversed", done
    url = f"/v1/disputes/{second['dispute_id']}/resolve"
    withdrawn = await call(at.port, "POST", url, payload={"outcome": "withdrawn"})
    assert withdrawn.status == 200, withdrawn
    lines = await _filed(at, since)
    assert lines[first["dispute_id"]] == [
        ("chargeback", 6_000), ("recall", 2_000), ("recall", 4_000),
    ]  # fmt: skip
    assert lines[second["dispute_id"]] == [
        ("chargeback", 5_000), ("recall", 1_000), ("recall", 3_000),
    ]  # fmt: skip


async def test_a_resolution_lowers_a_chargeback_a_partial_reversal_left_too_high(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Charged back for 30.00, 10.00 reversed, resolved won before any reconcile: the
    cardholder keeps the 20.00 the charge still takes, and the chargeback is lowered to it
    with a partial recall of 10.00."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    since = int(time.time()) - 1
    charge, dispute = await _disputed(at, store_url, 3_000)
    dispute_id = dispute["dispute_id"]
    assert (await call(at.port, "POST", f"/v1/disputes/{dispute_id}/chargeback")).status == 200
    assert (await at.switch.send(_reversal(charge, amount_left=2_000)))["39"] == "00"
    won = await call(
        at.port, "POST", f"/v1/disputes/{dispute_id}/resolve", payload={"outcome": "won"}
    )
    assert won.status == 200, won
    assert (won.json["credited_minor"], won.json["chargeback_minor"]) == (2_000, 2_000)
    assert won.json["amounts"]["recalled_minor"] == 1_000
    assert (await _filed(at, since))[dispute_id] == [("chargeback", 3_000), ("recall", 1_000)]


async def test_a_won_pre_arbitration_after_a_partial_reversal_does_not_recover_it_twice(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """50.00 charged back whole, 20.00 represented and pre-arbitrated, then 20.00 reversed:
    while open the issuer holds 30.00, what the charge still takes, so the reconcile lowers
    nothing; won, the acquirer gives the pre-arbitrated 20.00 back and the issuer would hold
    50.00 of a charge that takes 30.00 (the 20.00 reversed recovered twice): the resolution
    lowers the chargeback by 20.00 with a partial recall line. Lost, the issuer keeps holding
    30.00 and nothing is lowered."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    since = int(time.time()) - 1
    charge, kept, won_one, lost_one = await _disputed(at, store_url, 5_000, 5_000)
    for dispute in (won_one, lost_one):
        ident = dispute["dispute_id"]
        assert (await call(at.port, "POST", f"/v1/disputes/{ident}/chargeback")).status == 200
        body = {"reference": "REP-1", "amount_minor": 2_000}
        url = f"/v1/disputes/{ident}/represented"
        assert (await call(at.port, "POST", url, payload=body)).status == 200
        url = f"/v1/disputes/{ident}/pre-arbitration"
        assert (await call(at.port, "POST", url, payload={})).status == 200
    for fields in (charge, kept):
        assert (await at.switch.send(_reversal(fields, amount_left=3_000)))["39"] == "00"
    for dispute in (won_one, lost_one):
        done = await call(at.port, "POST", f"/v1/disputes/{dispute['dispute_id']}/reconcile")
        assert done.status == 200 and done.json["amount_minor"] == 3_000, done
        assert done.json["chargeback_minor"] == 5_000  # holds 50.00 - 20.00: the 30.00 left

    url = f"/v1/disputes/{won_one['dispute_id']}/resolve"
    won = await call(at.port, "POST", url, payload={"outcome": "won"})
    assert won.status == 200, won
    assert (won.json["credited_minor"], won.json["chargeback_minor"]) == (3_000, 3_000)
    assert won.json["amounts"]["recalled_minor"] == 2_000
    url = f"/v1/disputes/{lost_one['dispute_id']}/resolve"
    lost = await call(at.port, "POST", url, payload={"outcome": "lost"})
    assert lost.status == 200, lost
    assert (lost.json["credited_minor"], lost.json["chargeback_minor"]) == (3_000, 5_000)
    lines = await _filed(at, since)
    assert lines[won_one["dispute_id"]] == [("chargeback", 5_000), ("recall", 2_000)]
    assert lines[lost_one["dispute_id"]] == [("chargeback", 5_000)]
