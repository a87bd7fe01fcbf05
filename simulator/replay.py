"""Replay generated traffic over TCP against a host's demo cards, at a chosen rate.

Each traffic row becomes the request it describes, on a demo card chosen by the row's card
(the same simulated card always maps to the same demo card): its amount, merchant, terminal,
MCC, country and entry mode; a PIN when the row had one (a wrong one where the row's PIN
failed); CVV2 for card-not-present rows (a wrong one where it failed). Rows go out in order,
open loop at ``rate`` per second; each answer is matched to its row, so the outcome can be
compared with the row's fraud label.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import trio

from authhost.iso.codec import encode_request
from authhost.iso.framing import FrameDecoder, FrameError, encode_frame
from simulator.builder import Entry, Fields, Kind, RequestBuilder, Terminal
from simulator.chip_counters import ChipCounters
from simulator.client import ClientError, Link
from simulator.demo_cards import DemoFile, SimCard
from simulator.wire import ResponseReader

KINDS = {"00": Kind.PURCHASE, "01": Kind.CASH, "20": Kind.REFUND, "31": Kind.BALANCE,
         "26": Kind.CREDIT}  # fmt: skip
ENTRIES = {"05": Entry.CHIP, "07": Entry.CONTACTLESS, "81": Entry.ECOMMERCE, "90": Entry.STRIPE}
COLUMNS = ("card_id", "processing_code", "amount_minor", "mcc", "country", "pos_entry_mode",
           "terminal_id", "merchant_id", "acquirer_id", "pin_present", "pin_failed",
           "cvv_failed", "label", "scenario")  # fmt: skip


def read_rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """The first ``limit`` rows of a traffic file (CSV or Parquet), the columns replay needs."""
    if (
        not path.is_file()
    ):  # pyarrow's words were the path alone: "cannot read t.parquet: t.parquet"
        what = "a folder" if path.is_dir() else "no such file"
        raise ValueError(f"{path}: {what}; authhost-sim traffic --out FILE writes a traffic file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(path, columns=list(COLUMNS))
        elif suffix == ".csv":
            options = pacsv.ConvertOptions(
                include_columns=list(COLUMNS),
                column_types={c: "string" for c in COLUMNS if c not in ("amount_minor", "label")},
            )
            table = pacsv.read_csv(path, convert_options=options)
        else:
            raise ValueError(f"{path}: traffic files are .csv or .parquet")
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    except KeyError as error:
        raise ValueError(f"{path} lacks a traffic column: {error}") from None
    if limit is not None:
        table = table.slice(0, limit)
    return table.to_pylist()


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def _wrong(digits: str) -> str:
    return "".join(str((int(d) + 1) % 10) for d in digits)


def request_for(
    row: Mapping[str, Any], cards: Sequence[SimCard], builder: RequestBuilder
) -> Fields:
    """The request a traffic row describes, on its demo card."""
    card = cards[zlib.crc32(str(row["card_id"]).encode()) % len(cards)]
    kind = KINDS.get(str(row["processing_code"])[:2], Kind.PURCHASE)
    entry = ENTRIES.get(str(row["pos_entry_mode"])[:2], Entry.CHIP)
    if entry is Entry.STRIPE and not _flag(row.get("label")):
        # the demo file holds the chip's iCVV, not the stripe's CVV: a genuine fallback
        # swipe is replayed as a chip read (a counterfeit stripe keeps failing, as it should)
        entry = Entry.CHIP
    if entry is Entry.ECOMMERCE and _flag(row["cvv_failed"]):
        card = dataclasses.replace(card, cvv2=_wrong(card.cvv2))
    pin = None
    if _flag(row["pin_present"]) and card.pin:
        pin = _wrong(card.pin) if _flag(row["pin_failed"]) else card.pin
    acquirer = "".join(ch for ch in str(row["acquirer_id"]) if ch.isdigit())[:11] or "1"
    builder.terminal = Terminal(
        terminal_id=str(row["terminal_id"])[:8].ljust(8),
        merchant_id=str(row["merchant_id"])[:15].ljust(15),
        acquirer_id=acquirer,
        mcc=str(row["mcc"]),
        country=str(row["country"]),
        pin_keying=builder.terminal.pin_keying,
    )
    amount = 0 if kind is Kind.BALANCE else int(row["amount_minor"])
    return builder.financial(kind, card, amount, entry=entry, pin=pin)


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    """The exceptions of a (nested) exception group."""
    return [
        leaf
        for e in group.exceptions
        for leaf in (_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    ]


@dataclass
class ReplayResult:
    codes: list[str] = field(default_factory=list)  # per row; "" = no answer in time
    errors: list[str] = field(default_factory=list)

    def summary(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        answered = [c for c in self.codes if c]
        by_scenario: dict[str, Counter[str]] = {}
        for row, code in zip(rows, self.codes, strict=True):
            counts = by_scenario.setdefault(str(row.get("scenario") or "-"), Counter())
            counts["rows"] += 1
            counts["declined"] += bool(code) and code not in ("00", "10")
            counts["unanswered"] += not code
        return {
            "rows": len(rows),
            "answered": len(answered),
            "codes": dict(sorted(Counter(answered).items())),
            "by_scenario": {name: dict(c) for name, c in sorted(by_scenario.items())},
            "errors": self.errors[:5],
        }


async def replay(
    link: Link,
    demo: DemoFile,
    rows: Sequence[Mapping[str, Any]],
    *,
    rate: float,
    connections: int = 4,
    bins: Sequence[str] = (),
    pin_keying: str = "zpk",
    counters: ChipCounters | None = None,
) -> ReplayResult:
    """``counters``: the demo cards' chip transaction counters (``<cards file>.atc``, which
    ``send`` and ``terminal`` use too: a counter the host has seen is refused as a replay)."""
    cards = [c for c in demo.active() if not bins or c.pan.startswith(tuple(bins))]
    if not cards:
        raise ValueError("no active demo card with a PIN to replay on (check --bins)")
    dialect, framing = link.make_dialect(), link.make_framing()
    builder = RequestBuilder(
        Terminal(pin_keying=pin_keying), zpk=demo.zpk, bdk=demo.bdk, imk_ac=demo.imk_ac,
        counters=counters or ChipCounters(),
    )  # fmt: skip
    frames: list[bytes] = []
    keys: dict[tuple[bytes, bytes], int] = {}
    for index, row in enumerate(rows):
        fields = request_for(row, cards, builder)
        frames.append(encode_frame(encode_request(fields, dialect), framing))
        keys[(str(fields["11"]).encode(), str(fields["37"]).encode())] = index
    builder.counters.save()  # before sending: what went out is used up, answered or not
    result = ReplayResult(codes=[""] * len(rows))
    reader = ResponseReader(dialect)
    try:
        streams = [await trio.open_tcp_stream(link.host, link.port) for _ in range(connections)]
    except OSError as error:
        raise ClientError(f"cannot connect to {link.host}:{link.port}: {error}") from None
    start = trio.current_time()

    async def send(stream: trio.SocketStream, first: int) -> None:
        for index in range(first, len(frames), connections):
            await trio.sleep_until(start + index / rate)
            await stream.send_all(frames[index])

    async def receive(stream: trio.SocketStream) -> None:
        decoder = FrameDecoder(framing)
        while data := await stream.receive_some(65536):
            decoder.feed(data)
            while (body := decoder.next_frame()) is not None:
                stan, rrn, code = reader.read(body)
                index = keys.get((stan, rrn))
                if index is not None:
                    result.codes[index] = code.decode("ascii", "replace") or "??"

    async def connection(stream: trio.SocketStream, first: int) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive, stream)
                await send(stream, first)
                with trio.move_on_after(link.timeout):
                    while any(not result.codes[i] for i in range(first, len(frames), connections)):
                        await trio.sleep(0.02)
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, FrameError) as group:
            # the host closed or broke the connection (the nursery groups what its tasks
            # raised): this connection's unanswered rows stay unanswered
            result.errors.extend(f"connection {first}: {e}" for e in _leaves(group))
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        for first, stream in enumerate(streams):
            nursery.start_soon(connection, stream, first)
    return result
