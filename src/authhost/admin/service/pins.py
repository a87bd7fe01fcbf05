"""PINs: set or reset from an encrypted PIN block, PIN mailers, unlocking the try counter."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from authhost.admin import requests as rq
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    Unavailable,
)
from authhost.admin.service.base import (
    ServiceBase,
    _new_private_file,
    _removed_on_failure,
)
from authhost.admin.views import (
    card_view,
)
from authhost.cards import lifecycle
from authhost.cards import pin as pin_rules
from authhost.cards.model import Card, Product
from authhost.security.errors import KeyNotFound, SecurityError


class Pins(ServiceBase):
    """PINs of the cards."""

    async def set_pin(self, card_id: str, change: rq.PinChange) -> dict[str, Any]:
        """Set or reset the PIN from an encrypted PIN block; only its PVV/offset is stored."""
        card = await self._card(card_id)
        if card.state in lifecycle.FINAL_STATES:
            raise ConflictError(f"card {card_id} is {card.state.value}; no PIN can be set")
        product = await self._product(card.product_id)
        pan = await self._clear_pan(card_id)
        try:
            source = self.security.pin_source(change.ksn, change.acquirer_id)
            reference = self.security.pin_reference(
                bytes.fromhex(change.pin_block),
                pan,
                source,
                card.pin_method,
                product.pvk_name,
                product.pvki,
            )
        except KeyNotFound as exc:  # the product names a key the key store lacks
            raise Unavailable(str(exc)) from None
        except SecurityError as exc:  # wrong key, tampered block, PIN unfit for the method
            key = (
                "the PIN pad's DUKPT key (ksn)"
                if change.ksn
                else f"acquirer {change.acquirer_id}'s zone PIN key ([security] zone_keys)"
                if change.acquirer_id
                else "the zone PIN key (zpk)"
            )
            raise InvalidRequest(
                f"{exc}: a PIN block is the PIN with this card's PAN in an ISO format of "
                f"[security] pin_block_formats, encrypted under {key}; docs/admin.md, PINs"
            ) from None
        finally:
            del pan
        action = "pin.reset" if card.pin_reference is not None else "pin.set"
        after = _chip_unblocked(card, pin_rules.with_pin_reference(card, reference), product)
        return await self._update(card, after, action)

    async def generate_pins(self, card_ids: Sequence[str], out: Path, length: int = 4) -> int:
        """New random PINs for cards (first PINs, or a PIN the cardholder forgot): each card
        keeps only its PVV or offset, and ``out`` (a new file, owner-only) gets one line per
        card for the PIN mailer printer: PAN, cardholder, the PIN block under the printer's key
        (``security.pin_mailer_key``), that key's name and check value. A card's line is
        written after its reference is stored; the PIN exists nowhere else. Audited per card
        (``pin.generate``, never the block). Returns how many were written."""
        cards = [await self._card(card_id) for card_id in dict.fromkeys(card_ids)]  # each once
        for card in cards:
            if card.state in lifecycle.FINAL_STATES:
                raise ConflictError(f"card {card.card_id} is {card.state.value}; no PIN is made")
        products = {c.product_id: await self._product(c.product_id) for c in cards}
        written = 0
        # a line's PIN exists only in the file: a failure after one keeps it
        with _new_private_file(out) as file, _removed_on_failure(out, keep=lambda: written > 0):
            for card in cards:
                product = products[card.product_id]
                pan = await self._clear_pan(card.card_id)
                try:
                    issued = self.security.generate_pin(
                        pan, card.pin_method, product.pvk_name, product.pvki, length
                    )
                except KeyNotFound as exc:
                    raise Unavailable(str(exc)) from None
                except SecurityError as exc:  # a key unfit for the method: the cards before
                    # this one have their new PINs and their lines; this one keeps its old PIN
                    raise Unavailable(
                        f"no PIN made for card {card.card_id} (nor the cards after it; "
                        f"{written} written): {exc}"
                    ) from None
                after = pin_rules.with_pin_reference(card, issued.reference)
                await self._update(card, _chip_unblocked(card, after, product), "pin.generate")
                record = {
                    "card_id": card.card_id,
                    "pan": pan,
                    "cardholder_name": card.cardholder_name,
                    "address_ref": card.address_ref,
                    "pin_block": issued.pin_block.hex().upper(),
                    "pin_block_format": f"ISO-{int(issued.block_format)}",
                    "key": issued.key_name,
                    "kcv": issued.key_kcv,
                }
                file.write(json.dumps(record) + "\n")
                file.flush()
                written += 1
                del pan
        return written

    async def unlock_pin(self, card_id: str) -> dict[str, Any]:
        """Reset the wrong-PIN count (and queue a PIN unblock for the chip); a final card
        (lost, stolen, closed...) is refused, 409: nothing on it changes. A card the host
        saw no wrong PIN on still gets the chip's PIN UNBLOCK (when its product sends
        scripts): a cardholder whose PIN was blocked at the till by offline PIN tries, which
        only the chip counted, calls the bank to unblock it, and the host cannot see the
        chip's counter (before, the unlock answered 200 and changed nothing). With neither
        a host count nor scripts to send, 409 says so: a 200 read as "unblocked"."""
        card = await self._changeable_card(card_id)
        product = await self._product(card.product_id)
        if card.pin_tries == 0:
            if not product.imk_smi_name:  # neither counter is the host's to reset
                raise ConflictError(
                    f"card {card_id}: nothing to unlock: the host counted no wrong PIN, and "
                    f"product {product.product_id} sends no issuer scripts (no imk_smi_name), "
                    "so the chip's own offline PIN counter cannot be reset from the bank; "
                    "the PIN still works online (an ATM), and a chip that refuses it at the "
                    "till needs a replacement card (cards replace)"
                )
            queued = pin_rules.with_chip_unblock(card, product)
            if queued is card:  # the PIN UNBLOCK waits already: a repeat
                return card_view(card)
            return await self._update(card, queued, "pin.unlock", details={"chip_only": True})
        unlocked = pin_rules.unlock(card)
        return await self._update(card, _chip_unblocked(card, unlocked, product), "pin.unlock")


def _chip_unblocked(before: Card, after: Card, product: Product) -> Card:
    """``after`` with a PIN UNBLOCK queued for the chip when the host's wrong-PIN count was
    reset from ``before`` (an unlock, or a new PIN for a locked card): the chip counts wrong
    offline PINs too (``pin_rules.with_chip_unblock``)."""
    return after if before.pin_tries == 0 else pin_rules.with_chip_unblock(after, product)
