"""Every reason code the decision path can journal is explained in docs/reasons.md.

An analyst reads ``reason_codes`` in the journal and looks them up there: a reason added to the
code without a line in that page is a reason nobody can interpret. The reasons are found in the
source itself (string constants of the pipeline, the service, the store interface and the
connection), so the test follows the code rather than a list kept beside it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from authhost.iso.messages import Channel

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    *sorted((ROOT / "src" / "authhost" / "auth").rglob("*.py")),
    ROOT / "src" / "authhost" / "store" / "interface.py",
    ROOT / "src" / "authhost" / "cards" / "cardholder_pass.py",
    ROOT / "src" / "authhost" / "server" / "connection.py",
]
DOTTED = re.compile(
    r"^(validate|card|cvv|chip|pin|controls|card_controls|limits|model|funds|incremental|advice"
    r"|reversal"
    r"|duplicate|rules|fraud)(\.[a-z0-9_]+)+$"
)
# reasons that are single words, set where the server or the service answers by itself
WORDS = {"deadline", "format", "mac", "unknown_mti", "error", "encode", "verification",
         "incremental"}  # fmt: skip


# f"controls.channel_{request.channel}": one reason per channel
CHANNEL_HEADS = ("controls.channel_", "card_controls.channel_")


def emitted_reasons() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.JoinedStr):  # f"controls.channel_{request.channel}"
                head = node.values[0]
                if isinstance(head, ast.Constant) and head.value in CHANNEL_HEADS:
                    found |= {f"{head.value}{c.value}" for c in Channel}
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and DOTTED.match(node.value)
                and node.value not in CHANNEL_HEADS  # an f-string's head, expanded above
            ):
                found.add(node.value)
    return found


def test_the_scan_finds_the_reasons_it_should():
    found = emitted_reasons()
    assert {"card.lost", "pin.wrong", "chip.atc_jump", "funds.partial", "reversal.full"} <= found
    assert "controls.channel_moto" in found and len(found) > 60
    assert {"card_controls.channel_ecommerce", "card_controls.mcc_blocked"} <= found


def test_every_reason_is_in_the_reason_code_page():
    page = (ROOT / "docs" / "reasons.md").read_text()
    documented = set(re.findall(r"`([a-z_.0-9]+)`", page))
    missing = sorted((emitted_reasons() | WORDS) - documented)
    assert not missing, f"reason codes without a line in docs/reasons.md: {missing}"
