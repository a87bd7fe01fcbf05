"""Which issuer script commands an answer carries to the chip, and what the chip reported.

Pure: the decision and the card as the snapshot read them. The answer to an online chip
request (0100/0200 with an ARQC in field 55) on a product with an IMK-SMI carries:

* APPLICATION BLOCK to a card reported lost or stolen (declined 41/43): the chip then refuses
  offline too, where the host cannot decline it;
* PIN UNBLOCK with an approved PIN unblock (processing code 91): the chip's own PIN try
  counter is reset along with the host's;
* PIN CHANGE with an approved PIN change (processing code 92) on a product with an IMK-SMC:
  the chip's offline PIN becomes the new one too (and its try counter is reset);
* the commands an operator queued on the card (``Card.chip_scripts``: an application
  unblock, a PIN unblock after the PIN was unlocked at the bank), sent once with the next
  answer whose cryptogram the host verified, and then taken off the card.

Commands go only to a cryptogram the host checked and accepted, except the block, which
goes to whatever presents a lost or stolen card's chip: a genuine chip obeys it, a copy
cannot make use of it. The chip reports each script's outcome (tag 9F5B) in a later message;
the journal records it as a reason code.
"""

from __future__ import annotations

from dataclasses import dataclass

from authhost.auth.decision import Decline
from authhost.cards.model import Card, CardState, Product
from authhost.iso.messages import AuthRequest, MessageClass
from authhost.security.emv import ChipDataError, parse_tlv
from authhost.security.emv_scripts import SCRIPT_RESULTS, ScriptCommand, script_results

ONLINE_CLASSES = frozenset({MessageClass.AUTHORISATION, MessageClass.FINANCIAL})
PIN_UNBLOCK_CODE = "91"
PIN_CHANGE_CODE = "92"
_BLOCKED_STATES = {CardState.LOST: "card.lost", CardState.STOLEN: "card.stolen"}
_RESULTS_TAG = b"\x9f\x5b"
# what an operator may queue (a PIN CHANGE carries a PIN, which exists only in its request)
_BY_NAME = {c.value: c for c in ScriptCommand if c is not ScriptCommand.PIN_CHANGE}
SENT_REASONS = {  # the journal's reason for each command an answer carried
    ScriptCommand.APPLICATION_BLOCK: "chip.script_application_block",
    ScriptCommand.APPLICATION_UNBLOCK: "chip.script_application_unblock",
    ScriptCommand.PIN_UNBLOCK: "chip.script_pin_unblock",
    ScriptCommand.PIN_CHANGE: "chip.script_pin_change",
}


@dataclass(frozen=True, slots=True)
class DueScripts:
    """The commands for this answer, and whether they include the card's queued ones (then
    the write takes them off the card)."""

    commands: tuple[ScriptCommand, ...]
    queued_sent: bool = False

    @property
    def reasons(self) -> list[str]:
        return [SENT_REASONS[command] for command in self.commands]


NONE = DueScripts(())


def due_scripts(
    request: AuthRequest,
    card: Card | None,
    product: Product | None,
    decline: Decline | None,
    cryptogram_checked: bool,
) -> DueScripts:
    """What this answer sends to the chip (nothing when the product has no IMK-SMI, the
    request is not an online chip request, or the cryptogram was not accepted)."""
    if (
        card is None
        or product is None
        or not product.imk_smi_name
        or request.icc_data is None
        or request.message_class not in ONLINE_CLASSES
    ):
        return NONE
    blocked_reason = _BLOCKED_STATES.get(card.state)
    if blocked_reason is not None:
        if decline is not None and decline.reason == blocked_reason:
            return DueScripts((ScriptCommand.APPLICATION_BLOCK,))
        return NONE
    if not cryptogram_checked:
        return NONE
    commands: list[ScriptCommand] = []
    for name in card.chip_scripts:
        command = _BY_NAME.get(name)
        if command is not None and command not in commands:
            commands.append(command)
    queued = bool(commands)
    kind = (request.processing_code or "")[:2]
    if decline is None and kind == PIN_CHANGE_CODE and product.imk_smc_name:
        # the new PIN resets the chip's counter as well: no PIN UNBLOCK besides it
        commands = [c for c in commands if c is not ScriptCommand.PIN_UNBLOCK]
        commands.append(ScriptCommand.PIN_CHANGE)
    elif decline is None and kind == PIN_UNBLOCK_CODE and ScriptCommand.PIN_UNBLOCK not in commands:
        commands.append(ScriptCommand.PIN_UNBLOCK)
    return DueScripts(tuple(commands), queued) if commands else NONE


def reports_script_results(request: AuthRequest) -> bool:
    """Whether field 55 may hold issuer script results (a cheap look before parsing it)."""
    return request.icc_data is not None and _RESULTS_TAG in request.icc_data


def script_result_reasons(icc_data: bytes) -> list[str]:
    """The journal's reasons for the issuer script results a chip reported (tag 9F5B):
    ``chip.script_performed`` or ``chip.script_failed`` per script; none when unreadable."""
    try:
        value = parse_tlv(icc_data).get(SCRIPT_RESULTS)
        results = script_results(value) if value is not None else []
    except ChipDataError:
        return []
    return [
        "chip.script_performed" if result.performed else "chip.script_failed" for result in results
    ]
