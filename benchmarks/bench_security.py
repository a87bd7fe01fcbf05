"""Security module benchmark: per-operation cost, as a ratio to one raw TDES block encryption.

Every figure is measured in the same run as the baseline: one 8-byte TDES block encryption
with ``cryptography`` the plain way (build the cipher context, update, finalize), the
primitive every PIN and CVV operation is built from, so the ratios stay meaningful on a noisy
machine. Rounds run one batch of every operation in turn (baseline
included); the median round is reported.

    .venv/bin/python benchmarks/bench_security.py            # about 30 s
    .venv/bin/python benchmarks/bench_security.py --quick    # fewer repeats
    .venv/bin/python benchmarks/bench_security.py --json out.json
    .venv/bin/python benchmarks/bench_security.py --without-context-cache   # A/B

Operations: PIN verify (zone PIN key, format 0, Visa PVV and IBM 3624), PIN translate (TDES
format 0 to AES format 4), translate + verify, CVV verify, DUKPT PIN key derivation (TDES and
AES: cold = a new terminal, cached = the terminal's next KSN, uncached = the standard's host
algorithm from the BDK every time), DUKPT PIN verify end to end, PAN index/encrypt/decrypt and
the ISO 9797-1 retail MAC of a 256-byte message, and a chip ARQC check with its ARPC.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from authhost.cards.model import PinMethod
from authhost.config import SecurityConfig
from authhost.security import blockcipher, dukpt, emv, pinblock
from authhost.security.blockcipher import tdes_ecb_encrypt
from authhost.security.cavv import make_cavv
from authhost.security.module import PinCheck, SecurityModule

PAN = "4761739001010119"


def interleaved_medians(
    ops: list[tuple[str, Callable[[int], object]]], batch: int, repeats: int
) -> dict[str, float]:
    """Seconds per call, median over ``repeats`` rounds; each round runs one batch of every
    operation in turn, so load from other processes hits baseline and operations alike."""
    times: dict[str, list[float]] = {name: [] for name, _ in ops}
    counters = dict.fromkeys(times, 0)
    for _ in range(repeats):
        for name, op in ops:
            start = time.perf_counter()
            first = counters[name]
            for i in range(first, first + batch):
                op(i)
            times[name].append((time.perf_counter() - start) / batch)
            counters[name] = first + batch
    return {name: statistics.median(values) for name, values in times.items()}


def raw_tdes_block(key24: bytes, block: bytes) -> bytes:
    """The baseline: one TDES block with a context built for it, as cryptography's docs show."""
    encryptor = Cipher(TripleDES(key24), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def build(tmp: Path) -> tuple[SecurityModule, dict[str, bytes]]:
    logging.getLogger("authhost.security").setLevel(logging.ERROR)
    hsm = SecurityModule.open(SecurityConfig(key_store=str(tmp / "keys.json")), demo=True, env={})
    return hsm, {k: bytes.fromhex(v) for k, v in hsm.demo_test_keys().items()}


def sequential_ksns(base: str, count: int, limit_bits: int) -> list[str]:
    """KSNs a terminal would send: counters counting up, skipping those with too many 1s."""
    out, counter = [], 0
    while len(out) < count:
        counter += 1
        if counter.bit_count() <= limit_bits:
            out.append(dukpt.ksn_with_counter(base, counter))
    return out


def run(quick: bool) -> list[dict[str, object]]:
    repeats = 5 if quick else 15
    batch = 200 if quick else 400
    total = batch * (repeats + 1) + 10
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        hsm, keys = build(Path(tmp))
        zpk_source = hsm.pin_source(None, None)
        block = pinblock.encrypt_pin_block(keys["zpk"], "4739", PAN)
        pvv = hsm.pin_reference(block, PAN, zpk_source, PinMethod.VISA_PVV, "pvk", "1")
        offset = hsm.pin_reference(block, PAN, zpk_source, PinMethod.IBM3624, "pvk", "1")
        cvv = hsm.card_values(PAN, "2812", "201", "cvk").cvv
        cavv_text = make_cavv(keys["cavv"], PAN, atn="0000123456789012").to_text()
        blob = hsm.encrypt_pan(PAN, "card-1")
        body = bytes(rng.getrandbits(8) for _ in range(256))
        raw_key = keys["zpk"]
        key24 = raw_key + raw_key[:8]
        block8 = PAN[:8].encode()

        tdes_seq = sequential_ksns("FFFF9876543210E00000", total, 10)
        aes_seq = sequential_ksns("123456789012345600000000", total, 16)
        tdes_cold = [f"FFFF{rng.getrandbits(40):010X}" + "E00001" for _ in range(total)]
        tdes_cold = [dukpt.ksn_with_counter(k, rng.choice([1, 7, 0x155, 0x3FF])) for k in tdes_cold]
        aes_cold = [
            f"{rng.getrandbits(64):016X}{rng.choice([1, 0x55, 0x7FFF]):08X}" for _ in range(total)
        ]
        tdes_host = dukpt.TdesDukptHost(keys["bdk"])
        aes_host = dukpt.AesDukptHost(keys["bdk-aes"])
        cold_tdes_host = dukpt.TdesDukptHost(keys["bdk"])
        cold_aes_host = dukpt.AesDukptHost(keys["bdk-aes"])
        dukpt_blocks = [
            dukpt.terminal_encrypt_pin_tdes(keys["bdk"], ksn, "4739", PAN) for ksn in tdes_seq[:300]
        ]
        dukpt_ksns = tdes_seq[:300]
        sizes = {"9F02": 6, "9F03": 6, "9F1A": 2, "95": 5, "5F2A": 2, "9A": 3, "9C": 1,
                 "9F37": 4, "82": 2, "9F36": 2}  # fmt: skip
        chip_tags = {tag: bytes(size) for tag, size in sizes.items()}
        chip_tags["9F10"] = bytes.fromhex("06011203A0B800")
        chip_tags["9F26"] = emv.make_arqc(keys["imk-ac"], PAN, "00", chip_tags, 18)

        def arqc_and_arpc(_i):
            checked = hsm.check_arqc(PAN, "00", chip_tags, "imk-ac", 18)
            assert checked.valid
            return checked.issuer_authentication_data(True, "00")

        def verify_and_check(method, reference):
            def op(_i):
                assert hsm.verify_pin(block, PAN, zpk_source, method, "pvk", "1", reference) is (
                    PinCheck.OK
                )

            return op

        def translate(_i):
            hsm.translate_pin(block, PAN, zpk_source, "zpk-aes", pinblock.PinBlockFormat.ISO4)

        def translate_and_verify(_i):
            translate(_i)
            hsm.verify_pin(block, PAN, zpk_source, PinMethod.VISA_PVV, "pvk", "1", pvv)

        dukpt_verify_host_sources = [hsm.pin_source(k, None) for k in dukpt_ksns]

        def dukpt_verify(i):
            j = i % len(dukpt_ksns)
            check = hsm.verify_pin(
                dukpt_blocks[j], PAN, dukpt_verify_host_sources[j], "visa_pvv", "pvk", "1", pvv
            )
            assert check is PinCheck.OK

        ops: list[tuple[str, Callable[[int], object]]] = [
            ("baseline: one TDES block encryption", lambda _i: raw_tdes_block(key24, block8)),
            ("TDES block, module's cached context", lambda _i: tdes_ecb_encrypt(raw_key, block8)),
            ("PIN verify, ZPK format 0, Visa PVV", verify_and_check(PinMethod.VISA_PVV, pvv)),
            ("PIN verify, ZPK format 0, IBM 3624", verify_and_check(PinMethod.IBM3624, offset)),
            ("PIN translate, TDES fmt 0 -> AES fmt 4", translate),
            ("PIN translate + verify (PVV)", translate_and_verify),
            ("CVV verify", lambda _i: hsm.verify_card_value(PAN, "2812", "201", cvv, "cvk")),
            ("3-D Secure CAVV check", lambda _i: hsm.check_cavv(PAN, cavv_text, "cavv")),
            (
                "DUKPT TDES derive, cold (new terminal)",
                lambda i: cold_tdes_host.pin_key(tdes_cold[i]),
            ),
            ("DUKPT TDES derive, cached (next KSN)", lambda i: tdes_host.pin_key(tdes_seq[i])),
            (
                "DUKPT TDES derive, uncached (standard)",
                lambda i: dukpt.tdes_pin_key(keys["bdk"], tdes_seq[i]),
            ),
            ("DUKPT AES derive, cold (new terminal)", lambda i: cold_aes_host.pin_key(aes_cold[i])),
            ("DUKPT AES derive, cached (next KSN)", lambda i: aes_host.pin_key(aes_seq[i])),
            (
                "DUKPT AES derive, uncached (standard)",
                lambda i: dukpt.aes_pin_key(keys["bdk-aes"], aes_seq[i]),
            ),
            ("PIN verify, TDES DUKPT (cached), PVV", dukpt_verify),
            ("PAN index (HMAC-SHA-256)", lambda _i: hsm.pan_index(PAN)),
            ("PAN encrypt (AES-256-GCM)", lambda _i: hsm.encrypt_pan(PAN, "card-1")),
            ("PAN decrypt (AES-256-GCM)", lambda _i: hsm.decrypt_pan(blob, "card-1")),
            ("retail MAC, 256-byte message", lambda _i: hsm.mac_message(body)),
            ("chip ARQC check + ARPC (Visa CVN 18)", arqc_and_arpc),
        ]
        for _, op in ops:
            op(0)  # warm up (key loading, the first terminal's caches)
        medians = interleaved_medians(ops, batch, repeats)
        baseline = medians[ops[0][0]]
        return [
            {"operation": name, "us_per_op": seconds * 1e6, "ratio": seconds / baseline}
            for name, seconds in medians.items()
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--without-context-cache",
        action="store_true",
        help="build a cipher context for every block (to measure what the cache saves)",
    )
    args = parser.parse_args()
    if args.without_context_cache:
        blockcipher._CONTEXTS_PER_THREAD = 0  # noqa: SLF001 - the A/B switch of the benchmark
    results = run(args.quick)
    print(f"{'operation':<42} {'us/op':>9} {'x baseline':>11}")
    for row in results:
        print(f"{row['operation']:<42} {row['us_per_op']:>9.1f} {row['ratio']:>11.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
