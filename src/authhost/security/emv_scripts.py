"""EMV issuer scripts: commands the issuer sends back to a chip card in the answer.

An online authorisation is the only moment the issuer can reach the card itself. The answer's
field 55 may carry an issuer script template (tag 72, run by the card after its second
GENERATE AC) of commands the card checks and obeys: block the application of a card reported
lost or stolen (it then refuses even offline), unblock it again, or reset the chip's own PIN
try counter after the issuer unblocked the PIN. Each command carries a MAC (secure messaging
for integrity, EMV Book 2 section 9.2) under a session key only that card and the issuer can
derive from the issuer master key for secure messaging integrity (IMK-SMI), over the command
header, the card's application transaction counter and its ARQC, so it cannot be replayed to
another card or another transaction. A PIN CHANGE also carries the new PIN, enciphered under
the session key for secure messaging confidentiality (from the IMK-SMC, derived alike): Visa's
PIN block (the PIN under 4 bytes of the card's application cryptogram master key; CVN 10 and
18) or the ISO 9564 format 2 block (CVN 22), with a length byte, padding method 2;
Mastercard's ISO 9564 format 2 block; all TDES-ECB.

* Visa CVN 10 and 18: the ICC master key by option A (10) or B (18), the session key by
  Visa's method (the ATC XORed into each half of the master key).
* Visa CVN 22: the ICC master key by option B, the EMV common session key with the ARQC as
  diversifier.
* Mastercard CVN 16, 17, 20 and 21: the ICC master key by option A, the EMV common session
  key with the ARQC as diversifier.

The MAC is ISO 9797-1 algorithm 3, padding method 2, 8 bytes. ``tests/test_security_oracles.py``
checks every command against pyemv, an independent implementation. The card reports what it
did in the Issuer Script Results (tag 9F5B) of a later message; ``script_results`` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from authhost.security.blockcipher import tdes_ecb_encrypt, xor
from authhost.security.emv import (
    MASTERCARD_CVNS,
    ChipDataError,
    common_session_key,
    encode_tlv,
    icc_master_key_a,
    icc_master_key_b,
)
from authhost.security.keys import adjust_des_parity
from authhost.security.mac import pad, retail_mac

SCRIPT_TEMPLATE_2 = "72"  # processed after the second GENERATE AC
SCRIPT_RESULTS = "9F5B"
_SCRIPT_IDENTIFIER = "9F18"
_COMMAND = "86"
_MAC_LENGTH = 8
_CLA_SECURE_MESSAGING = 0x84


class ScriptCommand(Enum):
    """The commands authhost sends, by name (the value is the instruction byte, EMV Book 3)."""

    APPLICATION_BLOCK = "application_block"
    APPLICATION_UNBLOCK = "application_unblock"
    PIN_UNBLOCK = "pin_unblock"
    PIN_CHANGE = "pin_change"  # the chip's offline PIN: only in the answer to a PIN change

    @property
    def instruction(self) -> int:
        return _INSTRUCTIONS[self]


_INSTRUCTIONS = {
    ScriptCommand.APPLICATION_BLOCK: 0x1E,
    ScriptCommand.APPLICATION_UNBLOCK: 0x18,
    ScriptCommand.PIN_UNBLOCK: 0x24,  # P2 00: reset the PIN try counter, no new PIN
    ScriptCommand.PIN_CHANGE: 0x24,  # P2 02: a new PIN, without the current one
}
_P2 = {ScriptCommand.PIN_CHANGE: 0x02}
_BITS = {command: 1 << n for n, command in enumerate(ScriptCommand)}
_NAMES = {(c.instruction, _P2.get(c, 0)): c.value for c in ScriptCommand}  # (INS, P2) -> name


def sm_session_key(imk_smi: bytes, pan: str, psn: str, cvn: int, atc: bytes, arqc: bytes) -> bytes:
    """The card's session key for secure messaging integrity in this transaction."""
    if cvn in MASTERCARD_CVNS:
        return common_session_key(icc_master_key_a(imk_smi, pan, psn), arqc)
    if cvn == 22:
        return common_session_key(icc_master_key_b(imk_smi, pan, psn), arqc)
    if cvn not in (10, 18):
        raise ChipDataError(f"issuer scripts for cryptogram version {cvn} are not supported")
    master = (icc_master_key_a if cvn == 10 else icc_master_key_b)(imk_smi, pan, psn)
    left = xor(master[:8], bytes(6) + atc)
    right = xor(master[8:], bytes(6) + xor(atc, b"\xff\xff"))
    return adjust_des_parity(left + right)


def command_apdu(
    command: ScriptCommand, session_key: bytes, atc: bytes, arqc: bytes, data: bytes = b""
) -> bytes:
    """The command as the card receives it: header (Lc counts the data and the MAC), data
    (enciphered), MAC over header, ATC, ARQC and data."""
    p2 = _P2.get(command, 0x00)
    header = bytes((_CLA_SECURE_MESSAGING, command.instruction, 0x00, p2, len(data) + _MAC_LENGTH))
    covered = header + atc + arqc + data
    return header + data + retail_mac(session_key, covered, padding=2, length=8, keep=False)


def offline_pin_block(pin: str, cvn: int, imk_ac: bytes, pan: str, psn: str) -> bytes:
    """The new PIN as the chip takes it: Visa's PIN block (length, PIN, F padding, XORed with
    bytes 5-8 of the card's AC master key; CVN 10, 18) or ISO 9564 format 2 (the others)."""
    if not 4 <= len(pin) <= 12 or not pin.isdigit():
        raise ChipDataError("an offline PIN is 4 to 12 digits")
    block = bytes.fromhex(f"{len(pin):02X}{pin}".ljust(16, "F"))
    if cvn in MASTERCARD_CVNS or cvn == 22:
        return bytes.fromhex(f"2{len(pin):X}{pin}".ljust(16, "F"))
    master = (icc_master_key_a if cvn == 10 else icc_master_key_b)(imk_ac, pan, psn)
    return xor(block, bytes(4) + master[4:8])


def encipher_command_data(session_key: bytes, data: bytes, cvn: int) -> bytes:
    """Command data under the confidentiality session key, TDES-ECB: Visa prefixes its length
    and pads (method 2); Mastercard pads only what is not a whole block."""
    if cvn not in MASTERCARD_CVNS:
        data = pad(bytes((len(data),)) + data, 2)
    elif len(data) % 8:
        data = pad(data, 2)
    return tdes_ecb_encrypt(session_key, data, keep=False)


def template_commands(template: bytes) -> list[bytes]:
    """The command APDUs (tags 86) of a tag 72 value, in order (``emv.parse_tlv`` keeps one
    value per tag, and a script repeats 86)."""
    commands, i = [], 0
    while i + 1 < len(template):
        tag_size = 2 if template[i] & 0x1F == 0x1F else 1
        length = template[i + tag_size]
        if template[i] == 0x86:
            commands.append(template[i + tag_size + 1 : i + tag_size + 1 + length])
        i += tag_size + 1 + length
    return commands


def describe_command(apdu: bytes) -> str:
    """A command by name (``"application_block"``), or an instruction authhost does not send
    by its hex: for a person reading an answer."""
    if len(apdu) < 4:
        return "a malformed command"
    return _NAMES.get((apdu[1], apdu[3]), f"instruction {apdu[1]:02X}")


def describe_template(template: bytes) -> list[str]:
    """The commands of a tag 72 value by name, in order."""
    return [describe_command(apdu) for apdu in template_commands(template)]


def script_identifier(commands: Sequence[ScriptCommand], atc: bytes) -> bytes:
    """Tag 9F18: the card's ATC and which commands, so a result (9F5B) names its script."""
    bits = 0
    for command in commands:
        bits |= _BITS[command]
    return atc + bytes((0, bits))


def commands_of(identifier: bytes) -> tuple[ScriptCommand, ...]:
    """The commands a ``script_identifier`` names (none for another issuer's identifier)."""
    bits = identifier[-1] if len(identifier) == 4 else 0
    return tuple(command for command in ScriptCommand if bits & _BITS[command])


def issuer_script(
    imk_smi: bytes,
    pan: str,
    psn: str,
    cvn: int,
    atc: bytes,
    arqc: bytes,
    commands: Sequence[ScriptCommand],
    pin_data: bytes = b"",
) -> bytes:
    """Field 55's tag 72: the script identifier and each command with its MAC; ``pin_data``
    is a PIN CHANGE's enciphered PIN block (``encipher_command_data``)."""
    if len(atc) != 2 or len(arqc) != 8:
        raise ChipDataError("field 55: issuer scripts need the 2-byte ATC and the 8-byte ARQC")
    if (ScriptCommand.PIN_CHANGE in commands) != bool(pin_data):
        raise ChipDataError("a PIN CHANGE command, and only it, carries the new PIN")
    key = sm_session_key(imk_smi, pan, psn, cvn, atc, arqc)
    body = bytes.fromhex(_SCRIPT_IDENTIFIER) + b"\x04" + script_identifier(commands, atc)
    for command in commands:
        data = pin_data if command is ScriptCommand.PIN_CHANGE else b""
        body += encode_tlv({_COMMAND: command_apdu(command, key, atc, arqc, data)})
    return encode_tlv({SCRIPT_TEMPLATE_2: body})


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """One script's outcome as the card reported it (tag 9F5B, 5 bytes a script)."""

    performed: bool  # every command ran
    failed_command: int  # 1-14: the sequence number of the command that failed, 0: not said
    identifier: bytes  # the script's 9F18 (zeros when it had none)

    @property
    def commands(self) -> tuple[ScriptCommand, ...]:
        return commands_of(self.identifier)


def script_results(value: bytes) -> list[ScriptResult]:
    """Tag 9F5B's value: per script, the result (high nibble 0 not performed, 1 failed, 2
    performed), the failing command's number (low nibble) and the script identifier."""
    if len(value) % 5:
        raise ChipDataError("field 55: issuer script results (9F5B) are not 5 bytes a script")
    return [
        ScriptResult(value[i] >> 4 == 2, value[i] & 0x0F, value[i + 1 : i + 5])
        for i in range(0, len(value), 5)
    ]
