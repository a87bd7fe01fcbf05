"""Dialects are pyiso8583's specs with exactly the documented change (field 53)."""

from __future__ import annotations

import iso8583.specs
import pytest

from authhost.iso.dialects import DEFAULT_DIALECT, DIALECTS, get_dialect

ORIGINALS = {
    "ascii-binary-bitmap": iso8583.specs.default,
    "ascii-hex-bitmap": iso8583.specs.default_ascii,
}


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_only_field_53_differs_from_the_pyiso8583_original(name: str) -> None:
    spec, original = get_dialect(name).spec, ORIGINALS[name]
    assert set(spec) == set(original)
    assert [key for key in spec if spec[key] != original[key]] == ["53"]
    assert (spec["53"]["len_type"], spec["53"]["max_len"], spec["53"]["data_enc"]) == (
        2,
        48,
        "ascii",
    )


def test_the_originals_are_left_untouched() -> None:
    assert iso8583.specs.default["53"]["max_len"] == 16
    assert iso8583.specs.default_ascii["53"]["len_type"] == 0


def test_default_dialect_is_the_binary_bitmap_one() -> None:
    assert DEFAULT_DIALECT == "ascii-binary-bitmap"
    assert get_dialect(DEFAULT_DIALECT).spec["p"]["data_enc"] == "b"
    assert set(DIALECTS) == set(ORIGINALS)


def test_unknown_dialect_names_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown ISO 8583 dialect 'ebcdic'.*ascii-binary-bitmap, ascii-hex-bitmap"
    ):
        get_dialect("ebcdic")
