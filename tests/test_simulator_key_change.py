"""`authhost-sim send key-change` against a real server: the host takes the new zone PIN key,
the simulator keeps it in its card file, and PIN blocks made afterwards are read with it.
Its own server: the key it changes would break the other simulator tests' PIN blocks."""

from __future__ import annotations

import json
from pathlib import Path

from test_simulator_against_host import host, sim  # noqa: F401 - host is a fixture


def test_send_key_change_then_a_pin_purchase_under_the_new_key(host):  # noqa: F811
    path = Path(host["cards"])
    before = json.loads(path.read_text())["keys"]["zpk"]
    result = sim("send", "key-change", "--cards", host["cards"], "--port", host["port"])
    assert result.exit_code == 0, result.output
    assert "0810" in result.output and "APPROVED: 00" in result.output
    after = json.loads(path.read_text())["keys"]["zpk"]
    assert after != before and after not in result.output  # the clear key is never shown
    paid = sim(
        "send", "purchase", "--pin", "card", "--cards", host["cards"], "--port", host["port"]
    )
    assert "APPROVED: 00" in paid.output, paid.output
    # a block made under the old key just before the change is still read for a moment
    keys = json.loads(path.read_text())
    keys["keys"]["zpk"] = before
    path.write_text(json.dumps(keys))
    late = sim(
        "send", "purchase", "--pin", "card", "--cards", host["cards"], "--port", host["port"]
    )
    assert "APPROVED: 00" in late.output, late.output


def test_send_key_change_needs_a_card_file_with_a_zone_master_key(host, tmp_path):  # noqa: F811
    doc = json.loads(Path(host["cards"]).read_text())
    del doc["keys"]["zmk"]
    older = tmp_path / "older-cards.json"
    older.write_text(json.dumps(doc))
    result = sim("send", "key-change", "--cards", str(older), "--port", host["port"])
    assert result.exit_code == 2 and "zone master key" in result.output


def test_a_repeated_key_change_keeps_the_key_the_host_took(host):  # noqa: F811
    """``key-change --repeat``: the host takes the first 0800 and refuses its copy (a key the
    zone has had); the card file keeps the key taken, by the first answer, not the copy's."""
    path = Path(host["cards"])
    before = json.loads(path.read_text())["keys"]["zpk"]
    result = sim("send", "key-change", "--repeat", "--cards", host["cards"], "--port", host["port"])
    assert result.exit_code == 0, result.output
    assert result.output.count("request 0800") == 2 and "APPROVED: 00" in result.output
    assert json.loads(path.read_text())["keys"]["zpk"] != before
