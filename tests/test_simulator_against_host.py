"""The simulator against a real ``authhost serve --demo``: send, terminal, replay and bench.

One demo installation per module (in tmp_path, free ports); every test talks to it over TCP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from conftest import free_port
from typer.testing import CliRunner

from simulator.cli import app

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# the two clear components of the MAC link's key (odd parity, halves that differ)
MAK_PARTS = ("0123456789ABCDEFFEDCBA9876543210", "1010101010101010202020202020202A")
MAK = bytes(a ^ b for a, b in zip(*map(bytes.fromhex, MAK_PARTS), strict=True)).hex()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A demo authhost on free ports, its demo card file, and a file of many bench cards."""
    work = tmp_path_factory.mktemp("authhost")
    port, mac_port = free_port(), free_port()
    (work / "authhost.toml").write_text(
        f'[server]\nport = {port}\nmetrics_port = {free_port()}\nlog_level = "WARNING"\n'
        "visa_fields = true\n"  # --network visa: the listener reads Visa's fields
        f"[admin]\nport = {free_port()}\n"
        # a switch's link that signs every message, under a MAC key its custodians entered
        f'[[listeners]]\nport = {mac_port}\nrequire_mac = true\nmac_key = "mak-link"\n'
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([str(BIN / "authhost"), "demo", "--export", "cards.json"], cwd=work,
                   check=True, capture_output=True, env=env)  # fmt: skip
    subprocess.run([str(BIN / "authhost"), "keys", "components", "mak-link", "--type", "mak",
                    "--algorithm", "tdes"], cwd=work, check=True, capture_output=True, env=env,
                   input=f"{MAK_PARTS[0]}\n{MAK_PARTS[1]}\n", text=True)  # fmt: skip
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cards.py"), "--cards", "12",
                    "--out", "bench.json"], cwd=work, check=True, capture_output=True)  # fmt: skip
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen([str(BIN / "authhost"), "serve", "--demo"], cwd=work, stdout=log,
                              stderr=subprocess.STDOUT, env=env)  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"authhost did not start: {(work / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.1)
    yield {"port": str(port), "cards": str(work / "cards.json"), "bench": str(work / "bench.json"),
           "work": work, "mac_port": str(mac_port)}  # fmt: skip
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=20)
    log.close()


def sim(*args: str, input: str | None = None):  # noqa: A002 - mirrors CliRunner
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)


def test_send_purchase_with_pin_is_approved_and_shows_no_pan(host):
    result = sim("send", "purchase", "--cards", host["cards"], "--pin", "card",
                 "--port", host["port"], "--amount", "1.50")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "APPROVED: 00 approved" in result.output
    pan = json.loads(Path(host["cards"]).read_text())["cards"][0]["pan"]
    assert pan not in result.output and pan[:6] + "******" + pan[-4:] in result.output
    assert "encrypted PIN block" in result.output


def test_send_a_card_by_its_values_with_the_demo_files_keys(host):
    """A replacement or renewal is not in the demo card file: sent by --pan and friends (its
    values from the bureau file) with --cards for the test zone PIN key. --cards was ignored
    beside --pan, and PIN entry said it needed the demo card file it had just been given."""
    card = json.loads(Path(host["cards"]).read_text())["cards"][0]
    icvv = card["track2"].split("=")[1][7:10]
    result = sim("send", "purchase", "--cards", host["cards"], "--pan", card["pan"],
                 "--expiry", card["expiry"], "--service-code", card["service_code"],
                 "--icvv", icvv, "--pin", card["pin"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "APPROVED: 00 approved" in result.output and card["pan"] not in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["purchase", "--pin", "0000"], "DECLINED: 55 incorrect PIN"),
        (["purchase", "--entry", "ecommerce"], "APPROVED: 00"),
        (["balance", "--pin", "card"], "available"),
        (["reversal", "--pin", "card", "--amount", "2"], "0410"),
        (["completion", "--amount", "20", "--final-amount", "15"], "0230"),
        (["verification", "--entry", "ecommerce"], "VERIFIED: 85"),
        (["purchase", "--currency", "840", "--billing-amount", "9.21"], "APPROVED: 00"),
        (["purchase", "--card", "2", "--amount", "80", "--partial"], "PARTLY APPROVED: 10"),
        (["pin-unblock", "--pin", "card"], "APPROVED: 00"),
        (["echo"], "0810"),
        (["purchase", "--card", "8"], "DECLINED: 41 lost card"),
        (["credit", "--amount", "50"], "APPROVED: 00"),
        (["deposit", "--amount", "20", "--pin", "card"], "APPROVED: 00"),
        (["funding", "--amount", "5", "--entry", "ecommerce"], "APPROVED: 00"),
    ],
    ids=["wrong PIN", "e-commerce with CVV2", "balance inquiry", "reversal", "completion",
         "account verification", "card used abroad", "partial approval", "PIN unblock", "echo test", "lost card", "transfer to the card", "ATM deposit", "account funding"],
)  # fmt: skip
def test_send_kinds(host, args, expected):
    result = sim("send", *args, "--cards", host["cards"], "--port", host["port"])
    assert result.exit_code == 0, result.output
    assert expected in result.output, result.output[-600:]


@pytest.mark.parametrize(
    ("args", "expected", "shown"),
    [
        ([], "APPROVED: 00", "CVV2 match"),
        (["--authentication", "authenticated"], "APPROVED: 00",
         "3-D Secure value passed: authenticated"),
        (["--authentication", "authenticated", "--cavv", "forged"], "DECLINED: 05",
         "3-D Secure value failed: authentication"),
        (["--avs", "card"], "APPROVED: 00", "address street and postcode match (Y)"),
        (["--avs", "SW1A 2AA,10 Downing Street"], "APPROVED: 00", "address does not match (N)"),
        (["--cvv2", "none"], "APPROVED: 00", "CVV2 should be on the card"),
    ],
    ids=["CVV2", "authenticated", "forged CAVV", "address", "wrong address", "no CVV2"],
)  # fmt: skip
def test_send_the_visa_way(host, args, expected, shown):
    """``--network visa``: the same web purchase in Visa's fields 60, 123 and 126, answered
    in field 44 at Visa's positions; the CVV2 and the CAVV are never printed."""
    result = sim("send", "purchase", "--entry", "ecommerce", "--network", "visa", *args,
                 "--card", "1", "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # as wrapped at the terminal's width
    assert expected in printed and shown in printed, printed[-900:]
    cvv2 = json.loads(Path(host["cards"]).read_text())["cards"][0]["cvv2"]
    assert f"11 {cvv2}" not in result.output and f"1{cvv2}" not in result.output
    exempt = sim("send", "purchase", "--entry", "ecommerce", "--network", "visa",
                 "--authentication", "exempt", "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert exempt.exit_code == 2 and "60.8" in exempt.output


@pytest.mark.parametrize("entry", ["chip", "contactless"])
def test_send_a_cvv2_with_a_card_present_purchase_the_visa_way(host, entry):
    """``--network visa --cvv2 ...`` with a card read at the till: the CVV2 travels in 126.10
    beside track 2 and the host answers P (not processed) in 44.10, a wrong one included (the
    stripe or chip is the check: no N7); never printed. Without --cvv2 nothing goes in Visa's
    fields: a bad option."""
    cvv2 = json.loads(Path(host["cards"]).read_text())["cards"][0]["cvv2"]
    wrong = "000" if cvv2 != "000" else "111"
    for given in (cvv2, wrong):
        result = sim("send", "purchase", "--entry", entry, "--network", "visa", "--cvv2", given,
                     "--card", "1", "--cards", host["cards"], "--port", host["port"])  # fmt: skip
        assert result.exit_code == 0, result.output
        printed = " ".join(result.output.split())
        assert "APPROVED: 00" in printed and "CVV2 not processed" in printed, printed[-900:]
        assert "126.10 CVV2 *** (result asked)" in printed
        assert f"11 {given}" not in result.output and f" {given} " not in printed
    plain = sim("send", "purchase", "--entry", entry, "--network", "visa",
                "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert plain.exit_code == 2 and "--cvv2" in plain.output


@pytest.mark.parametrize(
    "args",
    [["reversal", "--billing-amount", "9.21"], ["purchase", "--billing-amount", "0"],
     ["purchase", "--billing-amount", "9.21", "--billing-currency", "EUR"]],
    ids=["not for a reversal", "zero", "currency not 3 digits"],
)  # fmt: skip
def test_send_refuses_a_billing_amount_it_cannot_use(host, args):
    result = sim("send", *args, "--cards", host["cards"], "--port", host["port"])
    assert result.exit_code == 2 and "--billing-amount" in result.output


def test_send_reads_the_amount_in_the_request_currencys_decimals(host):
    """--amount is in major units of the request's currency: 1500 yen are 1500 minor units
    (field 4), not 150,000 (every currency was read with two decimals), and 10.5 yen, which
    no message can carry, is refused rather than rounded."""
    yen = sim("send", "purchase", "--currency", "392", "--amount", "1500", "--billing-amount",
              "9.21", "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert yen.exit_code == 0, yen.output
    assert "APPROVED: 00" in yen.output
    assert "000000001500" in yen.output and "000000150000" not in yen.output
    half = sim("send", "purchase", "--currency", "392", "--amount", "10.5", "--billing-amount",
               "1", "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert half.exit_code == 2 and "currency 392 has no decimals" in half.output


def test_send_incremental_extends_then_completes(host):
    result = sim("send", "incremental", "--amount", "20", "--increment", "7.50",
                 "--final-amount", "26", "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    answers = re.findall(r"answer (\d{4})", result.output)
    assert answers == ["0110", "0110", "0230"]
    assert result.output.count("APPROVED: 00") == 3


def test_send_completion_carries_the_preauthorisations_approval_code(host):
    """The 0220 names its pre-authorisation's approval code in field 38, as the networks'
    completion advices do, so that the clearing file's presentment under that code finds
    the purchase posted (README, "Clearing"); the host answers it with the same code."""
    result = sim("send", "completion", "--amount", "20", "--final-amount", "15",
                 "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    codes = re.findall(r"38 │ Authorization ID Response\s*│ (\w+)", result.output)
    assert len(codes) == 3 and len(set(codes)) == 1, codes  # the 0110, the 0220, the 0230


def test_send_completion_in_parts_numbers_each_0220(host):
    result = sim("send", "completion", "--amount", "30", "--final-amount", "25", "--parts", "3",
                 "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.findall(r"answer (\d{4})", result.output) == ["0110", "0230", "0230", "0230"]
    assert result.output.count("APPROVED: 00") == 4


@pytest.mark.parametrize(
    ("args", "option"),
    [(["completion", "--parts", "0"], "--parts"), (["purchase", "--parts", "2"], "--parts"),
     (["purchase", "--increment", "5"], "--increment"), (["incremental", "--increment", "0"], "--increment"),
     (["cash", "--partial"], "--partial"), (["pin-unblock"], "--pin"),
     (["pin-change", "--pin", "card"], "--new-pin"), (["purchase", "--new-pin", "4826"], "--new-pin"),
     (["purchase", "--expiry", "2001"], "--expiry"), (["purchase", "--service-code", "101"], "--service-code"),
     (["purchase", "--icvv", "123"], "--icvv"), (["purchase", "--final-amount", "5"], "--final-amount"),
     (["reversal", "--amount", "5", "--final-amount", "5"], "--final-amount")],
    ids=["no parts", "parts not for a purchase", "increment not for a purchase", "zero increment", "partial not for cash",
         "unblock without a PIN", "change without a new PIN", "new PIN not for a purchase",
         "expiry of a file's card", "service code of a file's card", "iCVV of a file's card",
         "final amount not for a purchase", "partial reversal keeping it all"],
)  # fmt: skip
def test_send_refuses_an_option_it_cannot_use(host, args, option):
    result = sim("send", *args, "--cards", host["cards"], "--port", host["port"])
    assert result.exit_code == 2 and option in result.output


def _available(output: str) -> list[str]:
    """The available balance of each outcome line ("APPROVED: ... available 2,487.50 (978)")."""
    return re.findall(r"available ([\d,.]+) \(", " ".join(output.split()))


def test_send_a_partial_reversal_keeps_the_amount_of_field_95(host):
    """``reversal --final-amount``: the 0400 carries field 95 (what stays charged), so a switch
    can run the partial reversal case; before, --final-amount was ignored and the whole
    purchase was reversed."""
    result = sim("send", "reversal", "--card", "3", "--amount", "20", "--final-amount", "5",
                 "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.findall(r"answer (\d{4})", result.output) == ["0110", "0410"]
    assert "Replacement Amounts" in result.output
    after_purchase = float(_available(result.output)[0].replace(",", ""))
    balance = sim("send", "balance", "--card", "3", "--pin", "card",
                  "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert float(_available(balance.output)[-1].replace(",", "")) == after_purchase + 15


def test_send_repeat_resends_the_request_and_gets_the_same_answer(host):
    """``--repeat``: the purchase again as 0101, same STAN, RRN and time, as a switch resends a
    request whose answer was lost: the same approval code, and the money held once."""
    result = sim("send", "purchase", "--card", "3", "--amount", "3", "--repeat",
                 "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.findall(r"request (\d{4})", result.output) == ["0100", "0101"]
    assert re.findall(r"answer (\d{4})", result.output) == ["0110", "0110"]
    codes = re.findall(r"38 │ Authorization ID Response\s*│ (\w+)", result.output)
    assert len(codes) == 2 and codes[0] == codes[1], codes
    first, again = _available(result.output)
    assert first == again


def test_send_signs_its_requests_for_a_require_mac_listener(host):
    """``--mak``: a switch's link that requires a MAC (``require_mac``) takes the simulator's
    requests signed under the link's key, and answers 63 to unsigned ones; before, the
    simulator could not send a MAC at all."""
    unsigned = sim("send", "purchase", "--amount", "1", "--cards", host["cards"],
                   "--port", host["mac_port"])  # fmt: skip
    assert "DECLINED: 63" in unsigned.output, unsigned.output[-600:]
    result = sim("send", "purchase", "--amount", "1", "--mak", MAK, "--cards", host["cards"],
                 "--port", host["mac_port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "APPROVED: 00" in result.output, result.output[-600:]
    assert "the answer's MAC: verifies" in result.output
    other = sim("send", "echo", "--mak", MAK[16:] + MAK[:16], "--port", host["mac_port"])
    assert "DECLINED: 63" in other.output and "MAC: MISSING OR WRONG" in other.output
    short = sim("send", "echo", "--mak", MAK[:16], "--port", host["mac_port"])
    assert short.exit_code == 2 and "--mak" in short.output


def test_send_pin_change_and_back(host):
    """The PIN of card 3 is changed, its old PIN is then wrong, and it is changed back (other
    tests use the card's own PIN). The card file follows each approved change, so `--pin card`
    is always the PIN the host has."""
    path = Path(host["cards"])
    own = json.loads(path.read_text())["cards"][2]["pin"]
    mode = path.stat().st_mode
    other = "4826" if own != "4826" else "4827"
    for current, new, expected, kept in ((own, other, "APPROVED: 00", other),
                                         (own, other, "DECLINED: 55", other),
                                         (other, own, "APPROVED: 00", own)):  # fmt: skip
        result = sim("send", "pin-change", "--card", "3", "--pin", current, "--new-pin", new,
                     "--cards", host["cards"], "--port", host["port"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert expected in result.output
        assert json.loads(path.read_text())["cards"][2]["pin"] == kept
        assert path.stat().st_mode == mode
        if kept == other:  # the file's PIN is the host's: a purchase with it is approved
            paid = sim("send", "purchase", "--card", "3", "--pin", "card",
                       "--cards", host["cards"], "--port", host["port"])  # fmt: skip
            assert "APPROVED: 00" in paid.output, paid.output


def test_send_explains_an_unreachable_host(host):
    result = sim("send", "echo", "--port", str(free_port()), "--timeout", "2")
    assert result.exit_code == 1
    assert "cannot connect" in result.output
    assert "is authhost serve running there?" in " ".join(result.output.split())


def test_terminal_driven_from_stdin(host):
    script = "1\n1\n3.00\n1234\n1\n1\n3.00\n9999\nq\n"
    result = sim("terminal", "--cards", host["cards"], "--port", host["port"], input=script)
    assert result.exit_code == 0, result.output
    assert "APPROVED: 00 approved" in result.output
    assert "DECLINED: 55 incorrect PIN" in result.output
    assert result.output.rstrip().endswith("bye")


def test_terminal_atm_with_dukpt(host):
    result = sim("terminal", "--cards", host["cards"], "--port", host["port"], "--mode", "atm",
                 "--pin-keying", "dukpt", input="3\n2\n2468\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "APPROVED: 00 approved" in result.output and "available" in result.output


def test_replay_answers_every_row_and_fails_what_the_row_failed(host, tmp_path):
    traffic = tmp_path / "t.parquet"
    assert sim("traffic", "--cards", "200", "--days", "10", "-o", str(traffic)).exit_code == 0
    result = sim("replay", str(traffic), "--cards", host["bench"], "--rate", "400",
                 "--limit", "400", "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["rows"] == summary["answered"] == 400
    import pyarrow.parquet as pq

    rows = pq.read_table(traffic).slice(0, 400).to_pylist()
    wrong_pins = sum(r["pin_failed"] for r in rows)
    assert summary["codes"].get("55", 0) == wrong_pins


def test_bench_auth_mix_on_many_cards(host):
    result = sim("bench", "--mix", "auth", "--cards", host["bench"], "--port", host["port"],
                 "--count", "300", "--connections", "2", "--concurrency", "4", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "300 / 300" in result.output
    assert "code 00 (approved)" in result.output


def test_chip_cards_keep_their_counters_between_runs(host):
    """A card never repeats its ATC, and the host refuses one it saw: consecutive runs of the
    simulator must go on counting where the last one stopped (``<cards>.atc``)."""
    for _ in range(3):
        result = sim("send", "purchase", "--cards", host["cards"], "--port", host["port"])
        assert "APPROVED: 00" in result.output, result.output
    counters = json.loads(Path(host["cards"] + ".atc").read_text())
    assert counters and all(1 <= value <= 0xFFFF for value in counters.values())


def test_send_shows_the_issuer_script_a_lost_chip_card_gets(host):
    """The answer's field 55 in words: the lost card's chip is told to block itself."""
    result = sim(
        "send", "purchase", "--card", "8", "--cards", host["cards"], "--port", host["port"]
    )
    assert result.exit_code == 0, result.output
    assert "DECLINED: 41 lost card" in result.output
    assert "issuer script" in result.output and "application_block" in result.output
    # the simulated chip checks the script's MAC as a card would, with the demo's test keys
    assert "issuer script application_block: MAC good" in result.output
    chip = sim("send", "purchase", "--card", "1", "--cards", host["cards"], "--port", host["port"])
    assert "the card checks the ARPC (tag 91): genuine" in chip.output, chip.output
    stripe = sim("send", "purchase", "--card", "8", "--entry", "stripe", "--cards",
                 host["cards"], "--port", host["port"])  # fmt: skip
    assert "DECLINED: 41" in stripe.output and "application_block" not in stripe.output


def test_token_request_finds_the_demo_hosts_admin_api_in_the_card_file(host, tmp_path):
    """The demo host's admin API is on a port of its own (authhost.toml): token-request went
    to 8080 unless told --admin by hand. `serve --demo` now writes its admin URL into the card
    file it writes, and token-request reaches it from there."""
    work = host["work"]
    admin_port = tomllib.loads((work / "authhost.toml").read_text())["admin"]["port"]
    result = sim("token-request", "--cards", str(work / "demo-cards.json"), "--card", "1",
                 "--token-file", str(work / "demo-admin-token"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert ": approved" in result.output
    doc = json.loads((work / "demo-cards.json").read_text())
    assert doc["admin_url"] == f"http://127.0.0.1:{admin_port}"

    gone = free_port()  # a card file from a demo host that is not running any more
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({**doc, "admin_url": f"http://127.0.0.1:{gone}"}))
    result = sim("token-request", "--cards", str(stale), "--token-file",
                 str(work / "demo-admin-token"))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert " ".join(result.output.split()) == (
        f"error: cannot reach the admin API at http://127.0.0.1:{gone}: [Errno 111] Connection "
        "refused; the host that wrote the card file (authhost serve --demo) is not running "
        "there now: start it again in that directory (it rewrites the file), or pass --admin URL"
    )


def test_send_a_cvv2_other_than_the_cards(host):
    """``--cvv2`` with a demo card file: the customer typed another CVV2 than the card's
    (before, the option was read only with --pan and silently dropped): declined N7, and
    the card's own is approved; neither is printed."""
    cvv2 = json.loads(Path(host["cards"]).read_text())["cards"][0]["cvv2"]
    wrong = "000" if cvv2 != "000" else "111"
    for typed, expected in ((wrong, "DECLINED: N7"), (cvv2, "APPROVED: 00")):
        result = sim("send", "purchase", "--entry", "ecommerce", "--cvv2", typed, "--card", "1",
                     "--cards", host["cards"], "--port", host["port"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert expected in " ".join(result.output.split()), result.output[-600:]
        assert f"92{len(typed):02d}{typed}" not in result.output


def test_send_a_partial_reversal_reads_what_stays_in_the_currencys_decimals(host):
    """``reversal --currency 392 --amount 1500 --final-amount 500``: 500 yen stay charged. The
    --final-amount of a reversal was still read with two decimals (50,000 minor units), so
    it was refused as not below --amount, and on a dinar card 0.500 stayed as 50 fils."""
    result = sim("send", "reversal", "--card", "3", "--currency", "392", "--amount", "1500",
                 "--final-amount", "500", "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.findall(r"answer (\d{4})", result.output) == ["0110", "0410"]
    printed = " ".join(result.output.split())
    assert "Replacement Amounts │ 000000000500" in printed, printed
