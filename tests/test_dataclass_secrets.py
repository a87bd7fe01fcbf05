"""No dataclass of authhost prints a card number, track data, PIN block, card code or key:
every field with such a name in every dataclass of the package is left out of the generated
``repr`` (``field(repr=False)``), or the class writes its own. A log line, an exception's
message or an assertion that shows such an object then carries none of them. Found by this
test when it was written: a clearing ``Presentment`` printed its PAN."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import authhost
from authhost.admin.clearing import Presentment
from authhost.cards.track2 import Track2

SENSITIVE = {
    "pan", "pans", "clear_pan", "token_pan", "track2", "discretionary", "pin", "pin_block",
    "new_pin_block", "cvv", "cvv2", "icvv", "key", "material",
}  # fmt: skip
# fields with such a name that hold nothing secret, and why
NOT_SECRET = {
    ("authhost.admin.bulk", "IssueRow", "key"): "the row's idempotency key",
    ("authhost.admin.bulk", "RowResult", "pan"): "masked (first 6, last 4)",
    ("authhost.admin.demo", "DemoCard", "key"): "the demo card's name",
    ("authhost.admin.demo", "DemoCard", "pin"): "the demo's test PINs, published in its export",
}


def _dataclasses() -> list[type]:
    found = []
    for module_info in pkgutil.walk_packages(authhost.__path__, "authhost."):
        if module_info.name.endswith("__main__"):
            continue  # runs the CLI
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and dataclasses.is_dataclass(cls):
                found.append(cls)
    return found


def _writes_its_own_repr(cls: type) -> bool:
    """A ``__repr__`` of the class's own, not the one ``dataclass`` generated (that one is
    wrapped by ``reprlib.recursive_repr``)."""
    own = cls.__dict__.get("__repr__")
    return own is not None and not hasattr(own, "__wrapped__")


def test_no_dataclass_prints_a_secret_field():
    classes = _dataclasses()
    assert len(classes) > 100  # the walk found the package's dataclasses
    shown = [
        f"{cls.__module__}.{cls.__name__}.{field.name}"
        for cls in classes
        if not _writes_its_own_repr(cls)
        for field in dataclasses.fields(cls)
        if field.name in SENSITIVE
        and field.repr
        and (cls.__module__, cls.__name__, field.name) not in NOT_SECRET
    ]
    assert not shown, "printed by repr: " + ", ".join(shown)


def test_a_presentment_and_track_2_print_without_their_secrets():
    track = Track2("4761739001010010", "2812", "201", "123456789")
    presented = Presentment(3, "4761739001010010", "A1B2C3", 1_000, "978", 1.8e9, "1" * 23)
    for shown in (repr(track), str(track), repr(presented)):
        assert "4761739001010010" not in shown and "123456789" not in shown
    assert "expiry='2812'" in repr(track) and "approval_code='A1B2C3'" in repr(presented)
