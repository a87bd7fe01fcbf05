"""A listener with ``require_mac``: requests must carry a valid ISO 9797-1 algorithm 3 MAC in
field 64 (checked with psec as an independent implementation), a missing or wrong MAC gets 63,
and every answer on that listener is signed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import iso8583
import psec.mac
import trio
from conftest import free_port
from iso_client import SPEC, Switch
from test_e2e_auth import purchase, start_host

from authhost.config import ListenerConfig
from authhost.runtime import open_runtime
from authhost.security.module import SecurityModule
from authhost.server.process import serve_runtime
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


def mac_of(key: bytes, data: bytes) -> bytes:
    return psec.mac.generate_retail_mac(key[:8], key[8:], data, padding=1)


def signed(fields: dict, key: bytes) -> bytes:
    body, _ = iso8583.encode({**fields, "64": "00" * 8}, SPEC)
    body = bytes(body)
    return body[:-8] + mac_of(key, body[:-8])


async def test_mac_required_listener_checks_and_signs(nursery, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
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
