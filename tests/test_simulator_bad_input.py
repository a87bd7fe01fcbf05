"""The simulator as a person runs it with wrong, extreme or garbage input, and against hosts
that misbehave: one line on stderr and exit code 2 for a bad option or card file, 1 for a host
that does not answer, never a traceback. Found by a review.

A demo authhost of its own (``host`` from ``test_simulator_against_host``: real server, real
SQLite, free ports) and small TCP servers that close or stay silent.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_simulator_against_host import host, sim  # noqa: F401 - the module's own demo host

from simulator.builder import Terminal
from simulator.replay import COLUMNS


def said(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


# --- the demo card file -------------------------------------------------------------------


def test_a_card_number_beyond_the_file_is_refused_not_matched_by_its_last_digits(host):  # noqa: F811
    """``--card 99`` in a 12-card file used to pick whichever card's PAN ends in 99."""
    cards = json.loads(Path(host["cards"]).read_text())["cards"]
    result = sim("send", "purchase", "--cards", host["cards"], "--card", str(len(cards) + 87),
                 "--port", host["port"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"the file has cards 1 to {len(cards)}" in said(result)
    assert "request" not in result.output  # nothing was sent


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"pan": "123"}, "no PAN of 12 to 19 digits"),
        ({"track2": "garbage"}, "no track 2"),
        ({"available": None}, "no available amount"),
        ({"pin": "12"}, "a PIN that is not 4 to 12 digits"),
    ],
)
def test_a_malformed_card_in_the_file_is_named_without_its_data(host, tmp_path, change, problem):  # noqa: F811
    doc = json.loads(Path(host["cards"]).read_text())
    pan = doc["cards"][1]["pan"]
    doc["cards"][1].update(change)
    path = tmp_path / "cards.json"
    path.write_text(json.dumps(doc))
    for args in (["send", "purchase", "--card", "1"], ["terminal"]):
        result = sim(*args, "--cards", str(path), "--port", host["port"], input="q\n")
        assert result.exit_code == 2, result.output
        assert f"card 2 has {problem}" in said(result)
        assert pan not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("missing", ["bdk", "zpk"])
def test_a_card_file_without_a_key_names_it(host, tmp_path, missing):  # noqa: F811
    """A harness file written by hand (a switch's test cards) without the DUKPT key it never
    uses was refused as "missing or malformed cards or keys", naming nothing."""
    doc = json.loads(Path(host["cards"]).read_text())
    del doc["keys"][missing]
    path = tmp_path / "cards.json"
    path.write_text(json.dumps(doc))
    result = sim("send", "purchase", "--cards", str(path), "--port", host["port"])
    assert result.exit_code == 2, result.output
    assert f"no '{missing}'" in said(result)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda doc: doc.pop("cards"), "no 'cards' (the list of test cards"),
        (lambda doc: doc.pop("keys"), "no 'keys' (the test keys"),
        (lambda doc: doc["cards"][0].update(token={"expiry": "2912"}), "no 'pan' in a card's token"),
    ],
    ids=["no cards", "no keys", "a token without its PAN"],
)  # fmt: skip
def test_a_card_file_missing_something_else_says_what(host, tmp_path, change, expected):  # noqa: F811
    """A missing card list was told "the keys zpk and bdk are needed", and a token's missing
    PAN read as the card's own."""
    doc = json.loads(Path(host["cards"]).read_text())
    change(doc)
    path = tmp_path / "cards.json"
    path.write_text(json.dumps(doc))
    result = sim("send", "purchase", "--cards", str(path), "--port", host["port"])
    assert result.exit_code == 2, result.output
    assert expected in said(result) and "zpk and bdk are needed" not in said(result)


# --- send ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--amount", "inf"], "--amount is an amount of 0 or more"),
        (["--amount", "nan"], "--amount is an amount of 0 or more"),
        (["--amount", "1e20"], "--amount has more than 12 digits"),
        (
            ["--mcc", "541199"],
            "does not fit its field: Field data is 6 bytes, expecting 4: field 18",
        ),
        (["--terminal-id", "TERMINAL-TOO-LONG"], "field 41"),
        (["--currency", "EURO"], "--currency is 3 digits"),
        (["--country", "DE"], "--country is 3 digits"),
        (["--timeout", "0"], "--timeout is a number of seconds above 0"),
        (["--timeout", "-1"], "--timeout is a number of seconds above 0"),
        (["--port", "70000"], "--port is 1 to 65535"),
    ],
)
def test_send_refuses_values_a_message_cannot_carry(host, args, message):  # noqa: F811
    result = sim("send", "purchase", "--cards", host["cards"], "--port", host["port"], *args)
    assert result.exit_code == 2, result.output
    assert message in said(result)


def test_a_missing_card_file_says_where_one_comes_from(tmp_path):
    """``cannot read demo-cards.json: No such file or directory`` left a reader who ran the
    simulator in another directory than the server guessing."""
    result = sim("send", "purchase", "--cards", str(tmp_path / "demo-cards.json"))
    assert result.exit_code == 2, result.output
    assert "`authhost serve --demo` writes demo-cards.json in the directory it runs in" in said(
        result
    )


def test_send_refuses_a_key_that_is_not_hex():
    result = sim("send", "purchase", "--pan", "4761730000000003", "--zpk", "zz", "--pin", "1234")
    assert result.exit_code == 2 and "--zpk is a clear test key in hex" in result.output


def test_send_hides_the_new_pin_block_of_a_pin_change(host):  # noqa: F811
    """Field 125 is the new PIN encrypted as a PIN block: shown no more than field 52."""
    result = sim("send", "pin-change", "--card", "3", "--pin", "0000", "--new-pin", "4826",
                 "--cards", host["cards"], "--port", host["port"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "DECLINED: 55" in said(result)  # the wrong current PIN: nothing changes
    row = next(line for line in result.output.splitlines() if "│   125 │" in line)
    assert "<encrypted new PIN block" in row and not re.search("[0-9A-F]{16}", row)


# --- hosts that misbehave -----------------------------------------------------------------


@contextmanager
def misbehaving_host(mode: str) -> Iterator[int]:
    """A TCP server that closes every connection once it has read a request ("close") or
    reads and never answers ("silent")."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    def handle(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            if mode == "close":
                conn.close()
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield port
    finally:
        listener.close()
        for conn in held:
            conn.close()


def traffic_csv(path: Path, rows: int, card_id: str = "sim-card-1") -> Path:
    """A traffic file of chip purchases without PIN by one simulated card."""
    values = {"card_id": card_id, "processing_code": "000000", "amount_minor": "100",
              "mcc": "5411", "country": "276", "pos_entry_mode": "051",
              "terminal_id": "T0000001", "merchant_id": "M00000000000001",
              "acquirer_id": "123456", "pin_present": "0", "pin_failed": "0",
              "cvv_failed": "0", "label": "0", "scenario": "everyday"}  # fmt: skip
    lines = [",".join(COLUMNS)] + [",".join(values[c] for c in COLUMNS)] * rows
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("mode", ["close", "silent"])
def test_replay_against_a_host_that_closes_or_stays_silent(host, tmp_path, mode):  # noqa: F811
    """A host closing the connection used to end the replay in a traceback (the nursery's
    exception group); now the rows count as unanswered and the exit code is 1."""
    traffic = traffic_csv(tmp_path / "t.csv", 6)
    with misbehaving_host(mode) as port:
        result = sim("replay", str(traffic), "--cards", host["cards"], "--port", str(port),
                     "--rate", "200", "--connections", "2", "--timeout", "1")  # fmt: skip
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    assert summary["rows"] == 6 and summary["answered"] == 0
    assert "no request was answered" in said(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "nan"], "--rate must be a positive number"),
        (["--timeout", "-1"], "--timeout is a number of seconds above 0"),
        (["--pin-keying", "pvv"], "--pin-keying is zpk or dukpt"),
        (["--limit", "-1"], "--limit is a number of rows"),
    ],
)
def test_replay_refuses_bad_options(host, tmp_path, args, message):  # noqa: F811
    traffic = traffic_csv(tmp_path / "t.csv", 2)
    result = sim("replay", str(traffic), "--cards", host["cards"], "--port", host["port"], *args)
    assert result.exit_code == 2, result.output
    assert message in said(result)


def test_replay_of_a_file_that_is_not_there_says_so(host, tmp_path, monkeypatch):  # noqa: F811
    """It said "cannot read t.parquet: t.parquet" (pyarrow's words: the path alone). The
    path is given relative: a long temporary path is wrapped inside a word by rich."""
    monkeypatch.chdir(tmp_path)
    result = sim("replay", "t.parquet", "--cards", host["cards"], "--port", host["port"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "t.parquet: no such file; authhost-sim traffic --out FILE writes" in said(result)


def test_replay_and_send_share_the_chip_counters(host, tmp_path):  # noqa: F811
    """A replay's chip reads take the cards' counters from ``<cards>.atc`` as send and
    terminal do. It used to count from the clock instead, so either the replay's cryptograms
    were refused (a counter below the card's newest) or, after it, the next ``send`` of the
    card was (82, chip.atc_replay)."""
    doc = json.loads(Path(host["cards"]).read_text())
    active = [c for c in doc["cards"] if c["state"] == "active" and c["pin"]]
    # a simulated card the replay maps (replay.request_for) to a chip card no other test here
    # sends with, so the host has seen none of its counters
    card_id, card = next(
        (name, card)
        for name in (f"sim-card-{i}" for i in range(100))
        if (card := active[zlib.crc32(name.encode()) % len(active)])["chip_cvn"]
        and card["pan"] != doc["cards"][2]["pan"]
    )
    copy = tmp_path / "cards.json"
    copy.write_text(json.dumps(doc))
    hashed = hashlib.sha256(card["pan"].encode()).hexdigest()[:16]
    atc = Path(f"{copy}.atc")
    atc.write_text(json.dumps({hashed: 1000}))

    def purchase() -> str:
        return sim("send", "purchase", "--cards", str(copy), "--card", card["pan"][-4:],
                   "--port", host["port"], "--amount", "0.01").output  # fmt: skip

    assert "APPROVED: 00" in (first := purchase()), first
    traffic = traffic_csv(tmp_path / "t.csv", 3, card_id)
    result = sim("replay", str(traffic), "--cards", str(copy), "--port", host["port"],
                 "--rate", "100", "--connections", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{") :])["codes"] == {"00": 3}
    assert json.loads(atc.read_text())[hashed] == 1004
    assert "APPROVED: 00" in (after := purchase()), after
    assert json.loads(atc.read_text())[hashed] == 1005


# --- bench and traffic --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "inf"], "the rate must be a positive number"),
        (["--rate", "nan"], "the rate must be a positive number"),
        (["--duration", "-1"], "the duration must be a positive number"),
        (["--duration", "nan"], "the duration must be a positive number"),
        (["--count", "-5"], "the count cannot be negative"),
        (["--timeout", "-1"], "the timeout must be a positive number"),
        (["--timeout", "0"], "the timeout must be a positive number"),
        (["--mix", "auth", "--amount", "-5"], "--amount is 0 or more minor units"),
        (["--json", "/nonexistent-dir/report.json"], "--json: no directory"),
    ],
)
def test_bench_refuses_bad_options_before_sending(host, args, message):  # noqa: F811
    result = sim("bench", "--port", host["port"], "--cards", host["cards"], "--count", "10",
                 "--quiet", *args)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in said(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--seed", "-1"], "the seed is a number of 0 or more"),
     (["--start", "nan"], "the start is epoch seconds")],
)  # fmt: skip
def test_traffic_refuses_bad_options(tmp_path, args, message):
    result = sim("traffic", "--out", str(tmp_path / "t.csv"), "--cards", "5", "--days", "3", *args)
    assert result.exit_code == 2, result.output
    assert message in said(result)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("", "it is a folder; --out needs a file name (e.g. {tmp}/traffic.parquet)"),
        ("nodir/t.parquet", "the folder {tmp}/nodir does not exist; create it first"),
    ],
)
def test_traffic_into_a_folder_or_a_missing_folder_is_one_line(tmp_path, out, message):
    """pyarrow's own words ("Failed to open local file '...'. Detail: [errno 21] Is a
    directory"), wrapped over lines, after the whole period was generated: now one line that
    says what to give instead, before generating."""
    result = sim("traffic", "--out", str(tmp_path / out), "--cards", "5", "--days", "3",
                 "--format", "parquet")  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines == [f"error: cannot write {tmp_path / out}: {message.format(tmp=tmp_path)}"]
    assert not (tmp_path / "nodir").exists()


# --- terminal ------------------------------------------------------------------------------


def test_terminal_asks_again_for_an_amount_it_cannot_send(host):  # noqa: F811
    script = "1\n1\ninf\n1\n1\n1e30\nq\n"
    result = sim("terminal", "--cards", host["cards"], "--port", host["port"], input=script)
    assert result.exit_code == 0, result.output
    assert result.output.count("the amount is a positive number of up to 12 digits") == 2
    assert result.output.rstrip().endswith("bye")


def test_a_terminal_stops_at_the_last_dukpt_counter():
    """A TDES DUKPT PED has keys for 21-bit counters with at most ten one bits; the last is
    1FF800. Past it the simulated terminal says so instead of failing in the KSN arithmetic."""
    terminal = Terminal(pin_keying="dukpt", dukpt_counter=0x1FF7FF)
    assert terminal.next_ksn() == "FFFF9876543210FFF800"
    with pytest.raises(ValueError, match="used up"):
        terminal.next_ksn()
