"""A listener with ``require_mac``: requests must carry a valid ISO 9797-1 algorithm 3 MAC in
field 64 (checked with psec as an independent implementation), a missing or wrong MAC gets 63,
and every answer on that listener is signed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import iso8583
import psec.mac
import trio
from conftest import free_port
from iso_client import SPEC, Switch
from test_e2e_auth import purchase, start_host
from test_e2e_key_changes import key_change

from authhost.config import ListenerConfig, SecurityConfig
from authhost.runtime import open_runtime
from authhost.security.blockcipher import tdes_ecb_encrypt
from authhost.security.errors import SecurityError
from authhost.security.keys import KeyAlgorithm, KeyType, generate_material
from authhost.security.module import SecurityModule
from authhost.server.process import serve_runtime
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


def mac_of(key: bytes, data: bytes) -> bytes:
    return psec.mac.generate_retail_mac(key[:8], key[8:], data, padding=1)


def signed(fields: dict, key: bytes) -> bytes:
    """The message with its MAC last: field 64, or 128 when there is a secondary bitmap."""
    last = "128" if any(k.isdigit() and int(k) > 64 for k in fields) else "64"
    body, _ = iso8583.encode({**fields, last: "00" * 8}, SPEC)
    body = bytes(body)
    return body[:-8] + mac_of(key, body[:-8])


async def start_mac_listener(nursery: trio.Nursery, tmp_path: Path) -> tuple[Any, Any, int]:
    """A demo host on SQLite, and a second server on its store with a ``require_mac``
    listener: (the host, that server's configuration, the listener's port)."""
    host = await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}")
    mac_port = free_port()
    config = dataclasses.replace(
        host.config, listeners=[ListenerConfig(port=mac_port, require_mac=True)]
    )
    config = config.replace("server", port=0)

    async def serve(task_status: trio.TaskStatus) -> None:
        async with open_runtime(config, demo=True) as runtime:
            await serve_runtime(config, runtime, task_status=task_status)

    await nursery.start(serve)
    return host, config, mac_port


async def test_mac_required_listener_checks_and_signs(nursery, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    host, config, mac_port = await start_mac_listener(nursery, tmp_path)
    key = bytes.fromhex(SecurityModule.open(config.security, demo=True).demo_test_keys()["mak"])
    card = json.loads(Path("demo-cards.json").read_text())["cards"][0]
    switch = await Switch.connect(mac_port)

    await switch.send_raw(signed(purchase(card), key))
    answer_raw = await switch.receive_raw()
    answer, _ = iso8583.decode(answer_raw, SPEC)
    assert answer["39"] == "00"
    assert answer_raw[-8:] == mac_of(key, answer_raw[:-8])  # the answer is signed

    unsigned = await switch.send(purchase(card))
    assert unsigned["39"] == "63"
    tampered = bytearray(signed(purchase(card), key))
    tampered[-1] ^= 0x01
    await switch.send_raw(bytes(tampered))
    assert (await switch.receive())["39"] == "63"

    # network management too: an echo test unsigned or tampered gets its 0810 with 63,
    # signed, and the link serves on; a signed one gets 00
    echo = {"t": "0800", "7": "1128120000", "11": "424242", "70": "301"}
    for raw in (
        iso8583.encode(dict(echo), SPEC)[0],
        bytes(signed(echo, key)[:-1]) + bytes([signed(echo, key)[-1] ^ 0x01]),
    ):
        await switch.send_raw(bytes(raw))
        answer_raw = await switch.receive_raw()
        answer, _ = iso8583.decode(answer_raw, SPEC)
        assert (answer["t"], answer["39"], answer["11"]) == ("0810", "63", "424242"), answer
        assert answer_raw[-8:] == mac_of(key, answer_raw[:-8])
    await switch.send_raw(signed(echo, key))
    assert iso8583.decode(await switch.receive_raw(), SPEC)[0]["39"] == "00"

    plain = await Switch.connect(host.port)  # the other listener does not require MACs
    assert (await plain.send(purchase(card)))["39"] == "00"

    # both refused requests are journalled (63, reason "mac"), off the response path
    refused = {unsigned["11"]}
    for _ in range(40):
        async with opened_store(f"sqlite:///{tmp_path / 'authhost.db'}") as store:
            entries = await store.journal(JournalQuery(limit=1000))
        macs = [e for e in entries if e.response_code == "63"]
        if len(macs) == 2:
            break
        await trio.sleep(0.1)
    assert [e.reason_codes for e in macs] == ["mac", "mac"]
    assert refused <= {e.stan for e in macs}


async def test_a_switch_changes_the_mac_key(nursery, tmp_path, monkeypatch):
    """0800/161 with key class MK on the MAC listener: the 0810 and every later answer are
    signed under the new key, requests signed under it pass, and one signed under the old key
    still passes during security.zone_key_overlap_s (it was on its way); a wrong check value
    changes nothing. Audited under the key's name, never with the key."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'authhost.db'}"
    host, config, mac_port = await start_mac_listener(nursery, tmp_path)
    keys = SecurityModule.open(config.security, demo=True).demo_test_keys()
    old, zmk = bytes.fromhex(keys["mak"]), bytes.fromhex(keys["zmk"])
    card = json.loads(Path("demo-cards.json").read_text())["cards"][0]
    switch = await Switch.connect(mac_port)

    async def signed_send(fields: dict, key: bytes) -> tuple[dict, bytes]:
        await switch.send_raw(signed(fields, key))
        raw = await switch.receive_raw()
        return iso8583.decode(raw, SPEC)[0], raw

    new = generate_material(KeyAlgorithm.TDES, 16)
    wrong = key_change(zmk, new)
    wrong["48"] = wrong["48"].replace("PK", "MK", 1)[:-16] + "0" * 16
    answer, raw = await signed_send(wrong, old)
    assert answer["39"] == "63" and raw[-8:] == mac_of(old, raw[:-8])  # nothing changed

    change = key_change(zmk, new)
    change["48"] = change["48"].replace("PK", "MK", 1)
    answer, raw = await signed_send(change, old)
    assert (answer["t"], answer["39"]) == ("0810", "00")
    assert raw[-8:] == mac_of(new, raw[:-8])  # signed under the new key already
    answer, raw = await signed_send(purchase(card), new)
    assert answer["39"] == "00" and raw[-8:] == mac_of(new, raw[:-8])
    in_flight, _ = await signed_send(purchase(card), old)
    assert in_flight["39"] == "00"
    forged, _ = await signed_send(purchase(card), generate_material(KeyAlgorithm.TDES, 16))
    assert forged["39"] == "63"

    async with opened_store(url) as store:
        (audit,) = [e for e in await store.audit(subject="mak") if e.action == "key.exchange"]
    assert '"key_class": "MK"' in audit.after and new.hex() not in audit.after.lower()


async def test_after_the_overlap_only_the_new_mac_key_passes(tmp_path, monkeypatch):
    """The security module alone: with no overlap, a MAC under the key before is refused the
    moment the new key is in."""
    monkeypatch.chdir(tmp_path)
    security = SecurityConfig(key_store=str(tmp_path / "keys.json"), demo=True)
    hsm = SecurityModule.open(security, demo=True)
    keys = hsm.demo_test_keys()
    old, zmk = bytes.fromhex(keys["mak"]), bytes.fromhex(keys["zmk"])
    new = generate_material(KeyAlgorithm.TDES, 16)
    check = tdes_ecb_encrypt(new, bytes(8)).hex()
    hsm.install_exchanged_key(KeyType.MAK, "123456", tdes_ecb_encrypt(zmk, new), check)
    body = b"0200 a message"
    assert hsm.verify_mac(body, mac_of(new, body)) and hsm.verify_mac(body, mac_of(old, body))
    strict = SecurityModule.open(dataclasses.replace(security, zone_key_overlap_s=0), demo=True)
    assert strict.verify_mac(body, mac_of(new, body))
    assert not strict.verify_mac(body, mac_of(old, body))


async def test_each_link_has_its_own_mac_key(nursery, tmp_path, monkeypatch):
    """Two MAC listeners (two networks' links), one on the host's "mak" and one on a key of
    its own ("mak-net2", made with ``authhost keys generate``): each checks and signs with its
    own key and refuses the other's, and a MAC key change on the second link replaces its key
    only. A listener whose MAC key is not in the key store stops the start, naming it."""
    from host_admin import run_cli

    monkeypatch.chdir(tmp_path)
    host = await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}")
    cli = tmp_path / "cli.toml"
    cli.write_text(f'[security]\nkey_store = "{host.config.security.key_store}"\ndemo = true\n')
    code, output = await run_cli("keys", "generate", "mak-net2", "--type", "mak",
                                 "--config", str(cli))  # fmt: skip
    assert code == 0, output
    first, second = free_port(), free_port()
    config = dataclasses.replace(
        host.config,
        listeners=[
            ListenerConfig(port=first, require_mac=True),
            ListenerConfig(port=second, require_mac=True, mac_key="mak-net2"),
        ],
    ).replace("server", port=0)

    async def serve(task_status: trio.TaskStatus) -> None:
        async with open_runtime(config, demo=True) as runtime:
            await serve_runtime(config, runtime, task_status=task_status)

    await nursery.start(serve)
    hsm = SecurityModule.open(config.security, demo=True)
    host_key = bytes.fromhex(hsm.demo_test_keys()["mak"])
    own_key = hsm.key_store.get("mak-net2").material
    zmk = bytes.fromhex(hsm.demo_test_keys()["zmk"])
    card = json.loads(Path("demo-cards.json").read_text())["cards"][0]

    async def signed_send(port: int, fields: dict, key: bytes) -> tuple[dict, bytes]:
        switch = await Switch.connect(port)
        await switch.send_raw(signed(fields, key))
        raw = await switch.receive_raw()
        return iso8583.decode(raw, SPEC)[0], raw

    for port, key, other in ((first, host_key, own_key), (second, own_key, host_key)):
        answer, raw = await signed_send(port, purchase(card), key)
        assert answer["39"] == "00" and raw[-8:] == mac_of(key, raw[:-8])
        refused, raw = await signed_send(port, purchase(card), other)
        assert refused["39"] == "63" and raw[-8:] == mac_of(key, raw[:-8])

    new = generate_material(KeyAlgorithm.TDES, 16)
    change = key_change(zmk, new)
    change["48"] = change["48"].replace("PK", "MK", 1)
    answer, raw = await signed_send(second, change, own_key)
    assert answer["39"] == "00" and raw[-8:] == mac_of(new, raw[:-8])
    for _ in range(50):  # every server re-reads the key store within a second of a change
        if (
            SecurityModule.open(config.security, demo=True).key_store.get("mak-net2").material
            == new
        ):
            break
        await trio.sleep(0.1)
    answer, raw = await signed_send(second, purchase(card), new)
    assert answer["39"] == "00" and raw[-8:] == mac_of(new, raw[:-8])
    answer, raw = await signed_send(first, purchase(card), host_key)  # the host's key stays
    assert answer["39"] == "00" and raw[-8:] == mac_of(host_key, raw[:-8])

    missing = dataclasses.replace(
        config, listeners=[ListenerConfig(port=free_port(), require_mac=True, mac_key="mak-x")]
    )
    try:
        async with open_runtime(missing, demo=True):
            raise AssertionError("a listener without its MAC key started")
    except SecurityError as exc:
        assert "mak-x" in str(exc) and f":{missing.listeners[0].port}" in str(exc)
        assert "authhost keys generate mak-x --type mak" in str(exc)
