"""The sanctioned ways clear card data leaves the host, and PAN key rotation.

The card bureau's personalisation file, the networks' exception file and merchants' account
updates are written to a new file only its owner reads, each audited; ``reseal_pans`` and
``retire_pan_key`` move every stored PAN to the newest key.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from authhost.admin import totals as totals_module
from authhost.admin.errors import (
    ConflictError,
    ServiceError,
)
from authhost.admin.service.base import (
    EXCEPTION_CODES,
    EXPORT_STATES,
    ServiceBase,
    _new_private_file,
    _period,
    _removed_on_failure,
)
from authhost.cards.model import (
    Card,
    Product,
)
from authhost.security.errors import SecurityError
from authhost.store.interface import StoreError


class OperatorFiles(ServiceBase):
    """The sanctioned ways clear card data leaves."""

    async def export_personalisation(self, card_ids: Sequence[str], out: Path) -> int:
        """Write the card bureau's records (clear PAN, expiry, CVVs) to ``out``; return count.

        The only place card values leave the system (clear PANs also leave in the PIN mailer
        and exception files, each for its recipient). The file is created new
        (never overwritten) with owner-only permissions; each card exported is audited.
        """
        records = []
        for card_id in card_ids:
            card = await self._card(card_id)
            if card.state not in EXPORT_STATES:
                raise ConflictError(
                    f"card {card_id} is {card.state.value}; only created or issued cards "
                    "are sent to the bureau"
                )
            product = await self._product(card.product_id)
            records.append((card, product))
        begun = {"cards": len(records)}
        async with self._file_run("card.export_personalisation", out, begun) as (file, run_id):
            for card, product in records:
                file.write(json.dumps(await self._bureau_record(card, product)) + "\n")
        for card, _ in records:
            await self.record_audit(
                "card.export_personalisation",
                card.card_id,
                None,
                {"file": str(Path(out).resolve()), "pan": card.masked_pan, "run_id": run_id},
            )
        return len(records)

    @asynccontextmanager
    async def _file_run(
        self, action: str, out: Path, details: dict[str, Any]
    ) -> AsyncIterator[tuple[TextIO, str]]:
        """A new private file of clear card data and its run id, audited as begun before
        anything is written in it (``_file_begun``). A run that fails after it began (a key
        the store lacks, the store refusing) removes the file, then says so under ``action``
        (``removed``, ``stopped``: why), so that a run begun and never done means a crash (or a
        store down), and its file may be on disk."""
        run_id = ""
        try:
            with _new_private_file(out) as file, _removed_on_failure(out):
                run_id = await self._file_begun(action, out, details)
                yield file, run_id
        except Exception as failed:
            if run_id:  # the file is gone (_removed_on_failure): its end says so
                why = failed.message if isinstance(failed, ServiceError) else type(failed).__name__
                removed = {"file": str(Path(out).resolve()), "run_id": run_id, "removed": True}
                with contextlib.suppress(StoreError, *self.store.backend_errors):
                    await self.record_audit(action, "cards", None, {**removed, "stopped": why})
            raise

    async def _file_begun(self, action: str, out: Path, details: dict[str, Any]) -> str:
        """Audit a file of clear card data once it is created, before anything is written in
        it (``{action}_begun``: the file, what it is to hold and a ``run_id`` its own entries
        repeat); the run id. The file is on disk and the audit log in the store, never one
        write: a process that dies after the file is written and before its entries leaves
        the file begun and never audited as done, rather than not in the log at all. An
        entry that fails removes the file, empty still (``_removed_on_failure``)."""
        run_id = secrets.token_hex(8)
        begun = {"file": str(Path(out).resolve()), "run_id": run_id, **details}
        await self.record_audit(f"{action}_begun", "cards", None, begun)
        return run_id

    async def export_exception_file(self, out: Path) -> int:
        """The networks' exception file (``EXCEPTION_CODES``): every PAN whose current card is
        lost, stolen, suspended, closed, damaged or replaced (retired under a new PAN), with
        the answer the host gives it, for the network to give while it answers for the issuer
        (stand-in, when the host cannot be reached).
        A full file each time: a card resumed since the last one is simply not in it. The
        PANs are in clear (the network matches on them): the file is new, owner-only, and its
        writing audited. Returns how many PANs it lists."""
        records = []
        for state, code in EXCEPTION_CODES.items():
            offset = 0
            while page := await self.store.list_cards("", state.value, 1000, offset):
                offset += len(page)
                for card in page:
                    current = await self.store.find_card(card.pan_index)
                    if current is None or current.card_id != card.card_id:
                        continue  # a newer card carries the PAN now: it decides
                    records.append((card, code))
        begun = {"listed": len(records)}
        async with self._file_run("card.exception_file", out, begun) as (file, run_id):
            for card, code in records:
                pan = await self._clear_pan(card.card_id)
                record = {"pan": pan, "action_code": code, "purge_date": card.expiry,
                          "card_id": card.card_id, "state": card.state.value}  # fmt: skip
                file.write(json.dumps(record) + "\n")
                del pan
        await self.record_audit(
            "card.exception_file", "cards", None,
            {"file": str(Path(out).resolve()), "listed": len(records), "run_id": run_id},
        )  # fmt: skip
        return len(records)

    async def export_account_updates(
        self, out: Path, *, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> dict[str, Any]:
        """The networks' account updater file for a day or period (``admin.account_updater``):
        each card kept on file that changed, as the merchants' updater needs it: A (new number
        and expiry), E (new expiry), C (closed). PANs in clear (merchants match on them): the
        file is new, owner-only, and its writing audited. Returns the counts per code."""
        from authhost.admin.account_updater import UpdateCode, account_updates

        since, until = _period(day, since, until, self.clock(), self.business_day)
        updates = await account_updates(self._every_card(), self.store.get_card, since, until)
        counts = {code.value: 0 for code in UpdateCode}
        window = {"since": totals_module.iso_time(since), "until": totals_module.iso_time(until)}
        begun = {**window, "updates": len(updates)}
        async with self._file_run("card.account_updates", out, begun) as (file, run_id):
            for update in updates:
                record = {
                    "update": update.code.value,
                    "effective": totals_module.iso_time(update.effective),
                    "old_pan": await self._clear_pan(update.old.card_id),
                    "old_expiry": update.old.expiry,
                    "new_pan": ""
                    if update.new is None
                    else await self._clear_pan(update.new.card_id),
                    "new_expiry": "" if update.new is None else update.new.expiry,
                    "old_card_id": update.old.card_id,
                    "new_card_id": "" if update.new is None else update.new.card_id,
                }
                file.write(json.dumps(record) + "\n")
                counts[update.code.value] += 1
        summary = {"file": str(Path(out).resolve()), **window, "updates": counts}
        await self.record_audit(
            "card.account_updates", "cards", None, {**summary, "run_id": run_id}
        )
        return summary

    async def reseal_pans(self) -> dict[str, Any]:
        """Every stored PAN sealed under an older PAN data key sealed again under the newest
        (after ``authhost keys rotate-pan-key``), so that the old version can be retired at
        the end of its cryptoperiod. Each card is changed only if its ciphertext is still the
        one read (compare-and-set): a card replaced meanwhile is counted, and a second run
        finishes it. Audited with the counts, never a PAN."""
        current = self.security.pan_key_version()
        before: dict[int, int] = {}
        resealed = changed_meanwhile = 0
        async for card in self._every_card():
            blob = await self.store.pan_ciphertext(card.card_id)
            version = self.security.pan_blob_version(blob)
            before[version] = before.get(version, 0) + 1
            new = self.security.reseal_pan(blob, card.card_id)
            if new is None:
                continue
            if await self.store.reseal_pan(card.card_id, blob, new):
                resealed += 1
            else:
                changed_meanwhile += 1
        summary = {
            "pan_key_version": current,
            "cards_by_version_before": {str(v): n for v, n in sorted(before.items())},
            "resealed": resealed,
            "changed_meanwhile": changed_meanwhile,
        }
        await self.record_audit("pan_key.reseal", "pan-data", None, summary)
        return summary

    async def retire_pan_key(self, version: int) -> dict[str, Any]:
        """Destroy PAN data key ``version`` once no stored PAN is sealed under it (409 naming
        how many still are: reseal them first); the newest version cannot be retired.
        Audited."""
        if version == self.security.pan_key_version():
            raise ConflictError(
                f"PAN data key version {version} is the newest: rotate the key "
                "(authhost keys rotate-pan-key) and reseal first"
            )
        still = 0
        async for card in self._every_card():
            blob = await self.store.pan_ciphertext(card.card_id)
            still += self.security.pan_blob_version(blob) == version
        if still:
            raise ConflictError(
                f"{still} stored PAN(s) are still sealed under PAN data key version {version}: "
                "run authhost keys reseal-pans first"
            )
        try:
            self.security.retire_pan_key(version)
        except SecurityError as exc:
            raise ConflictError(str(exc)) from None
        result = {"retired_version": version, "pan_key_version": self.security.pan_key_version()}
        await self.record_audit("pan_key.retire", "pan-data", None, result)
        return result

    async def _bureau_record(self, card: Card, product: Product) -> dict[str, str]:
        from authhost.cards.track2 import build_track2

        pan = await self._clear_pan(card.card_id)
        values = self.security.card_values(pan, card.expiry, card.service_code, product.cvk_name)
        return {
            "card_id": card.card_id,
            # which plastic and chip profile: two products may share a BIN, so the bureau
            # cannot tell them apart by the PAN
            "product_id": product.product_id,
            "pan": pan,
            "expiry": card.expiry,
            "service_code": card.service_code,
            "sequence": card.sequence,
            "cardholder_name": card.cardholder_name,
            "address_ref": card.address_ref,
            "cvv": values.cvv,
            "cvv2": values.cvv2,
            "icvv": values.icvv,
            "track2": build_track2(pan, card.expiry, card.service_code, values.cvv),
            "chip_track2": build_track2(pan, card.expiry, card.service_code, values.icvv),
        }
