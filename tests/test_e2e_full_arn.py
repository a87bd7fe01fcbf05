"""A clearing presentment's full acquirer reference number (23 digits, its last a Luhn check
digit) over a running host, on both stores: kept on the 0220's journal entry, named whole by
the chargeback, the dispute and the chargebacks file, and matched whole by a representments
line; an ARN failing its check digit refused with its line; an entry journalled without it
(an older authhost's) charged back by its RRN as before, and given it by the next import."""

from __future__ import annotations

import csv
import json
import time

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import luhn_fix, purchase, store_url  # noqa: F401 - fixture
from test_e2e_clearing import write_clearing
from test_e2e_dispute_stages import _dispute, _opened

from authhost.admin.dispute_stages import same_reference
from authhost.store import codec, opened_store
from authhost.store.interface import JournalQuery

ARN = luhn_fix("7412345" + "6331" + "00000004711")  # format, acquirer BIN, date, sequence
OTHER = luhn_fix("7498765" + "6331" + "00000004711")  # another acquirer's: the same last 12


def _line(visa, held, arn: str, amount: int = 10_000) -> dict[str, object]:  # noqa: ANN001
    return {
        "pan": visa["pan"], "approval_code": held["38"], "amount_minor": amount,
        "currency": visa["currency"], "presented_at": time.time(), "arn": arn,
    }  # fmt: skip


async def _presentment(url: str, arn_suffix: str):  # noqa: ANN202
    """The 0220 the clearing import journalled under the ARN's last 12 (its RRN)."""
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(since=0, limit=1000))
    return next(e for e in entries if e.mti == "0220" and e.rrn == arn_suffix[-12:])


async def test_a_full_arn_is_journalled_and_charged_back_whole(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The import writes the 23-digit ARN on its 0220 (the RRN keeps the last 12); the
    chargeback, the dispute view, the chargebacks file and its API name it whole; a
    representments line naming it whole is recorded, one naming another ARN with the same
    last 12 digits is refused on its own."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    held = await at.switch.send(purchase(at.visa, amount=10_000))
    assert held["39"] == "00"
    text = write_clearing(tmp_path / "c.csv", [_line(at.visa, held, ARN)]).read_text()
    posted = await call(at.port, "POST", "/v1/clearing", payload={"csv": text})
    assert posted.status == 200 and posted.json["outcomes"] == {"matched": 1}, posted
    entry = await _presentment(at.host.store_url, ARN)
    assert (entry.arn, entry.rrn) == (ARN, ARN[-12:])

    since = str(int(time.time()) - 1)
    dispute_id = (await _opened(at, entry, "not_received"))["dispute_id"]
    filed = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/chargeback")
    assert filed.status == 200 and filed.json["arn"] == ARN, filed
    assert (await _dispute(at.port, dispute_id))["arn"] == ARN
    config = str(cli_config(tmp_path, store_url))
    out = tmp_path / "chargebacks.csv"
    code, output = await run_cli(
        "disputes", "chargebacks", "--since", since, "--out", str(out), "--config", config
    )
    assert code == 0, output
    assert [r["arn"] for r in csv.DictReader(out.read_text().splitlines())] == [ARN]
    api = await call(at.port, "GET", f"/v1/disputes/chargebacks?since={since}",
                     token=AUDITOR_TOKEN)  # fmt: skip
    assert [r["arn"] for r in api.json["chargebacks"]] == [ARN]

    file = tmp_path / "representments.csv"
    file.write_text(
        "arn,reference,amount_minor\n"
        f"{OTHER},REP-0,100\n"  # another charge's ARN: no open dispute under it
        f"{ARN},REP-1,10000\n"
    )
    code, output = await run_cli("disputes", "representments", str(file), "--config", config)
    assert code == 1, output
    assert f"{file}:2: no open dispute was charged back under arn {OTHER}" in output
    assert "2 row(s): 1 recorded, 1 failed" in output
    shown = await _dispute(at.port, dispute_id)
    assert (shown["stage"], shown["representment_reference"]) == ("represented", "REP-1")


async def test_an_arn_failing_its_check_digit_is_refused_with_its_line(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A 23-digit ARN whose last digit is not its Luhn check digit (a typo) refuses the file
    as any bad line does (the API 422, the CLI exit 1), naming the line and why, without the
    ARN or the card number; nothing is posted."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    held = await at.switch.send(purchase(at.visa, amount=10_000))
    assert held["39"] == "00"
    typo = ARN[:-1] + str((int(ARN[-1]) + 1) % 10)
    rows = [_line(at.visa, held, ARN), _line(at.visa, held, typo, 500)]
    file = write_clearing(tmp_path / "c.csv", rows)
    refused = await call(at.port, "POST", "/v1/clearing", payload={"csv": file.read_text()})
    assert refused.status == 422, refused
    reason = "line 3: arn of 23 digits fails its check digit"
    assert reason in refused.json["error"], refused
    config = str(cli_config(tmp_path, store_url))
    code, output = await run_cli("clearing", "import", str(file), "--config", config)
    assert code == 1 and reason in output and "Traceback" not in output, output
    for said in (json.dumps(refused.json), output):
        assert typo not in said and at.visa["pan"] not in said
    async with opened_store(at.host.store_url) as store:
        entries = await store.journal(JournalQuery(since=0, limit=1000))
    assert not [e for e in entries if e.mti == "0220"]


async def test_an_entry_journalled_without_the_arn_still_charges_back_by_its_rrn(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A 0220 journalled before the ARN was kept (an older authhost's: no ARN on it) is
    charged back under its RRN, as before; the same file imported again posts nothing and
    writes the full ARN on it. A Redis entry's JSON without the field reads as no ARN."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    held = await at.switch.send(purchase(at.visa, amount=10_000))
    assert held["39"] == "00"
    text = write_clearing(tmp_path / "c.csv", [_line(at.visa, held, ARN)]).read_text()
    posted = await call(at.port, "POST", "/v1/clearing", payload={"csv": text})
    assert posted.status == 200, posted
    entry = await _presentment(at.host.store_url, ARN)
    async with opened_store(at.host.store_url) as store:  # as an older authhost left it
        assert await store.set_journal_arn(entry, "")
    old = await _presentment(at.host.store_url, ARN)
    assert (old.arn, old.journal_id, old.hold_amount) == ("", entry.journal_id, entry.hold_amount)

    dispute_id = (await _opened(at, old, "not_received"))["dispute_id"]
    filed = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/chargeback")
    assert filed.status == 200 and filed.json["arn"] == ARN[-12:], filed

    again = await call(at.port, "POST", "/v1/clearing", payload={"csv": text})
    assert again.status == 200 and again.json["outcomes"] == {"duplicate": 1}, again
    assert (await _presentment(at.host.store_url, ARN)).arn == ARN

    row = {k: v for k, v in entry.as_row().items() if k != "arn"}  # a JSON from before
    assert codec.journal_from_json(json.dumps(row)).arn == ""


def test_a_representments_arn_names_a_chargeback_whole_or_by_its_last_12():
    """A full ARN matches a chargeback filed under a full ARN only whole (another acquirer's
    with the same last 12 digits is another charge), and one filed under the RRN by its last
    12; a 12-character reference matches either by those, as before."""
    assert same_reference(ARN, ARN) and not same_reference(OTHER, ARN)
    assert same_reference(OTHER, ARN[-12:]) and same_reference(ARN[-12:], ARN)
    assert not same_reference("000000000000", ARN)


async def test_a_presentment_is_found_by_its_arn(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """``journal find --rrn`` (``GET /v1/journal?rrn``) takes the acquirer reference number a
    network or an acquirer names a presentment by: its 0220, journalled under the last 12
    digits; not another ARN's with the same last 12. It answered 422 "rrn must be 1 to 12
    characters" to every ARN."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    held = await at.switch.send(purchase(at.visa, amount=10_000))
    assert held["39"] == "00"
    short = "4000000000004712"  # an ARN of 16 digits: kept as the RRN alone
    text = write_clearing(tmp_path / "c.csv", [
        _line(at.visa, held, ARN), _line(at.visa, {"38": ""}, short, amount=700),
    ]).read_text()  # fmt: skip
    posted = await call(at.port, "POST", "/v1/clearing", payload={"csv": text})
    assert posted.status == 200 and posted.json["outcomes"] == {"matched": 1, "forced": 1}
    since = int(time.time()) - 60

    async def find(reference: str):  # noqa: ANN202
        return await call(at.port, "GET", f"/v1/journal?rrn={reference}&since={since}",
                          token=AUDITOR_TOKEN)  # fmt: skip

    whole = await find(ARN)
    assert whole.status == 200, whole
    assert [(e["mti"], e["arn"], e["amount_minor"]) for e in whole.json["journal"]] == [
        ("0220", ARN, 10_000)
    ]
    assert [e["amount_minor"] for e in (await find(short)).json["journal"]] == [700]
    assert (await find(OTHER)).json["journal"] == []  # the same last 12, not this one
    assert [e["arn"] for e in (await find(ARN[-12:])).json["journal"]] == [ARN]  # as an RRN
    too_long = await find(ARN + "0")
    assert too_long.status == 422 and "acquirer reference number" in too_long.json["error"]
    code, output = await run_cli("journal", "find", "--rrn", ARN, "--since", str(since),
                                 "--config", str(cli_config(tmp_path, store_url)))  # fmt: skip
    assert code == 0 and json.loads(output) == whole.json["journal"], output
