"""Random PINs for new cards, as a payment HSM generates them for the PIN mailer.

A bank chooses the first PIN (the cardholder may change it at an ATM later): uniformly at
random from the operating system's generator, refusing the PINs anyone would try first (every
digit the same, a straight run up or down: 0000, 1234, 9876). The clear PIN lives only inside
``SecurityModule.generate_pin``, which stores its PVV or offset and hands out the PIN only
encrypted, as a PIN block under the PIN mailer printer's key.
"""

from __future__ import annotations

import secrets

MIN_LENGTH, MAX_LENGTH = 4, 12


def is_weak(pin: str) -> bool:
    """Every digit the same, or each digit one above (or below) the last."""
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)}
    return steps in ({0}, {1}, {9})


def random_pin(length: int = 4) -> str:
    """A PIN of ``length`` digits that is not weak, every other one equally likely."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"a PIN is {MIN_LENGTH} to {MAX_LENGTH} digits")
    while True:
        pin = f"{secrets.randbelow(10**length):0{length}d}"
        if not is_weak(pin):
            return pin
