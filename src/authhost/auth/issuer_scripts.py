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
    """The commands for this answer, whether they include the card's queued ones (then the
    write takes them off the card), and the commands a chip reported failed that this answer
    cannot carry (the write queues them on the card for the next one)."""

    commands: tuple[ScriptCommand, ...]
    queued_sent: bool = False
    requeue: tuple[ScriptCommand, ...] = ()

    @property
    def reasons(self) -> list[str]:
        return [SENT_REASONS[command] for command in self.commands]


NONE = DueScripts(())


def resent_commands(
    reasons: list[str], cryptogram_verified: bool, new_pin_is_the_cards: bool = False
) -> tuple[ScriptCommand, ...]:
    """The commands a retransmission's answer carries again: those the original answer
    carried (its journalled reasons), so a chip whose first answer was lost still gets them.
    The queued ones only with the same accepted cryptogram; a PIN CHANGE only when the new PIN
    in the retransmission is the one the card now has (its PIN comes only from the request,
    which a copy could alter)."""
    sent = set(reasons)
    return tuple(
        command
        for command, reason in SENT_REASONS.items()
        if reason in sent
        and (cryptogram_verified or command is ScriptCommand.APPLICATION_BLOCK)
        and (command is not ScriptCommand.PIN_CHANGE or new_pin_is_the_cards)
    )


def due_scripts(
    request: AuthRequest,
    card: Card | None,
    product: Product | None,
    decline: Decline | None,
    cryptogram_checked: bool,
    failed: tuple[ScriptCommand, ...] = (),
) -> DueScripts:
    """What this answer sends to the chip (nothing when the product has no IMK-SMI, the
    request is not an online chip request, or the cryptogram was not accepted). ``failed``:
    the commands of scripts this request's chip reports it did not perform, sent again (or
    queued, when this answer cannot carry them)."""
    if card is None or product is None or not product.imk_smi_name:
        return NONE
    online = request.icc_data is not None and request.message_class in ONLINE_CLASSES
    blocked_reason = _BLOCKED_STATES.get(card.state)
    if blocked_reason is not None:  # blocked with every online request: nothing to queue
        if online and decline is not None and decline.reason == blocked_reason:
            return DueScripts((ScriptCommand.APPLICATION_BLOCK,))
        return NONE
    again = queueable(failed)  # a PIN change is not sent again
    if not (online and cryptogram_checked):
        return DueScripts((), requeue=again) if again else NONE
    commands: list[ScriptCommand] = []
    for command in (*(_BY_NAME.get(name) for name in card.chip_scripts), *again):
        if command is not None and command not in commands:
            commands.append(command)
    queued = bool(card.chip_scripts)
    kind = (request.processing_code or "")[:2]
    if decline is None and kind == PIN_CHANGE_CODE and product.imk_smc_name:
        # the new PIN resets the chip's counter as well: no PIN UNBLOCK besides it
        commands = [c for c in commands if c is not ScriptCommand.PIN_UNBLOCK]
        commands.append(ScriptCommand.PIN_CHANGE)
    elif decline is None and kind == PIN_UNBLOCK_CODE and ScriptCommand.PIN_UNBLOCK not in commands:
        commands.append(ScriptCommand.PIN_UNBLOCK)
    return DueScripts(tuple(commands), queued) if commands else NONE


def queueable(commands: tuple[ScriptCommand, ...]) -> tuple[ScriptCommand, ...]:
    """The commands that can wait on the card for a later answer (not a PIN change: its PIN
    exists only in the request that carried it)."""
    return tuple(c for c in commands if c.value in _BY_NAME)


def reports_script_results(request: AuthRequest) -> bool:
    """Whether field 55 may hold issuer script results (a cheap look before parsing it)."""
    return request.icc_data is not None and _RESULTS_TAG in request.icc_data


@dataclass(frozen=True, slots=True)
class ScriptReport:
    """What a chip reported of earlier scripts (tag 9F5B): the journal's reasons, and the
    commands of those it did not perform (named by authhost's script identifiers)."""

    reasons: tuple[str, ...]
    failed: tuple[ScriptCommand, ...] = ()


NO_REPORT = ScriptReport(())


def script_report(icc_data: bytes) -> ScriptReport:
    """``chip.script_performed`` or ``chip.script_failed`` per script, and the failed ones'
    commands; nothing when the results are absent or unreadable."""
    try:
        value = parse_tlv(icc_data).get(SCRIPT_RESULTS)
        results = script_results(value) if value is not None else []
    except ChipDataError:
        return NO_REPORT
    failed: list[ScriptCommand] = []
    for result in results:
        if not result.performed:
            failed += [c for c in result.commands if c not in failed]
    reasons = tuple(
        "chip.script_performed" if result.performed else "chip.script_failed" for result in results
    )
    return ScriptReport(reasons, tuple(failed))
