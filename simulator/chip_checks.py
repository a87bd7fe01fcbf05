"""What the simulated chip makes of the host's answer, as a real card would check it.

A genuine card recomputes the ARPC of tag 91 (issuer authentication: the answer came from its
issuer) and the MAC of every issuer script command of tag 72 before it obeys one. The
simulator holds the demo's test issuer master keys, so it can do the same and say so: an
integrator sees at once whether the host's chip answers would be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from authhost.security import emv, emv_scripts
from authhost.security.mac import retail_mac


def _bytes(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class ChipChecker:
    """The card of one request: its PAN, cryptogram version and the test IMKs."""

    pan: str = field(repr=False)
    cvn: int
    imk_ac: bytes | None = field(default=None, repr=False)
    imk_smi: bytes | None = field(default=None, repr=False)

    def verdicts(self, request_55: object, answer_55: object) -> list[str]:
        """One line per thing the card checked in the answer (none without chip data)."""
        sent, got = _bytes(request_55), _bytes(answer_55)
        if not sent or not got or not self.cvn:
            return []
        try:
            tags, answer = emv.parse_tlv(sent), emv.parse_tlv(got)
        except emv.ChipDataError as error:
            return [f"the card cannot read field 55: {error}"]
        psn = emv.pan_sequence_number(tags.get(emv.PSN), None)
        lines = []
        if "91" in answer and self.imk_ac is not None:
            lines.append(self._arpc(tags, psn, answer["91"]))
        template = answer.get(emv_scripts.SCRIPT_TEMPLATE_2)
        if template is not None and self.imk_smi is not None:
            lines += self._scripts(tags, psn, template)
        return lines

    def _arpc(self, tags: dict[str, bytes], psn: str, value: bytes) -> str:
        checked = emv.check_arqc(self.imk_ac or b"", self.pan, psn, tags, self.cvn)
        if self.cvn in emv.ARPC_METHOD_2:
            approved, code = bool(value[-3] & 0x80) if len(value) >= 4 else False, "00"
        else:
            code = value[-2:].decode("ascii", "replace")
            approved = code == "00"
        genuine = checked.issuer_authentication_data(approved, code) == value
        return "the card checks the ARPC (tag 91): " + ("genuine" if genuine else "FORGED")

    def _scripts(self, tags: dict[str, bytes], psn: str, template: bytes) -> list[str]:
        atc, arqc = tags.get(emv.ATC, b""), tags.get(emv.ARQC, b"")
        key = emv_scripts.sm_session_key(self.imk_smi or b"", self.pan, psn, self.cvn, atc, arqc)
        lines = []
        for apdu in emv_scripts.template_commands(template):
            name = emv_scripts.describe_command(apdu)
            covered, mac = apdu[:5] + atc + arqc + apdu[5:-8], apdu[-8:]
            good = retail_mac(key, covered, padding=2, length=8, keep=False) == mac
            lines.append(f"issuer script {name}: MAC {'good, the card obeys' if good else 'BAD'}")
        return lines
