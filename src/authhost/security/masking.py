"""PAN masking (first 6, last 4): the only form of a PAN that logs, errors and APIs show."""

from __future__ import annotations

import re

from authhost.cards.luhn import is_luhn_valid

# Every run of 13-19 digits bounded by non-digits, whatever stands beside it: a PAN glued to
# a word ("pan_4761...", "x4761...") is still a PAN. Two kinds of value hold such a run by
# chance and must reach the audit log and the logs whole, and are told apart by their shape:
# - a hex value (a keyed hash of a PAN, a token's reference): a hex letter touches the run;
# - one of authhost's own ids, a prefix and 16 hex digits ("crd_" + secrets.token_hex(8),
#   all of them decimal about once in 2,000): left whole unless the 16 digits pass the
#   Luhn check, as a PAN's do (then masked: the id cannot be told from "crd_" + a PAN).
_DIGIT_RUN = re.compile(r"(?<!\d)(\d{13,19})(?!\d)")
_HEX_LETTERS = frozenset("abcdefABCDEF")
_ID_PREFIXES = ("crd_", "acc_", "prd_")


def mask_pan(pan: str | None) -> str | None:
    """'400000******0002' for a 16-digit PAN; short or missing values are hidden whole."""
    if pan is None:
        return None
    digits = pan.strip()
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


# A PAN as people write it, in groups split by single blanks or dashes ("4761 7378 4361
# 2522", "4761-7378-..."): a run of digit groups, masked when its digits are 13 to 19 and pass
# the Luhn check (the rule the admin API refuses free text by). The check keeps dates, times
# and lists of small numbers whole.
_GROUPED_RUN = re.compile(r"\d(?<![\w*-]\d)(?=(?:[ -]?\d){12})\d*(?:[ -]\d+)+(?![\w*])")


def mask_pans_in_text(text: str) -> str:
    """Mask every 13-19 digit run in free text but those of a hex value or an id, and every
    card number written in groups (a last line of defence for log messages, error messages
    and audit entries)."""
    text = _DIGIT_RUN.sub(lambda m: _masked(text, m), text)
    if " " in text or "-" in text:
        text = _GROUPED_RUN.sub(_masked_groups, text)
    return text


def _masked_groups(match: re.Match[str]) -> str:
    """Mask each card number among the groups: consecutive whole groups of 13-19 digits that
    pass the Luhn check, longest first from the left (two numbers side by side are both
    masked); groups joined by dashes are taken whole (an id such as
    20261128-051424-174178-137 holds Luhn-valid stretches by chance)."""
    run = match.group()
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(run)]
    out = list(run)
    i = 0
    while i < len(groups):
        last, count = i, 0  # the groups from i that hold at most 19 digits together
        while last < len(groups) and count + groups[last][1] - groups[last][0] <= 19:
            count += groups[last][1] - groups[last][0]
            last += 1
        found = 0
        if i and run[groups[i][0] - 1] != " ":
            i += 1  # a number starts at the run's start or after a blank, not inside a-b-c
            continue
        for j in range(last, i, -1):
            digits = "".join(run[a:b] for a, b in groups[i:j])
            if len(digits) < 13:
                break
            if j < len(groups) and run[groups[j][0] - 1] != " ":
                continue  # nor does it end inside one
            if is_luhn_valid(ascii_digits(digits)):
                positions = [p for a, b in groups[i:j] for p in range(a, b)]
                for p in positions[6:-4]:
                    out[p] = "*"
                found = j
                break
        i = found or i + 1
    return "".join(out)


_GROUP = re.compile(r"\d+")


def ascii_digits(digits: str) -> str:
    """Any script's decimal digits as ASCII ones, for the Luhn check: is_luhn_valid compares
    the check digit as text, so "٤٧٦١ ٧٣٩٠ ..." (a card number in Arabic-Indic or full-width
    digits, which \\d finds) failed it and was neither masked nor refused."""
    return digits if digits.isascii() else "".join(str(int(d)) for d in digits)


def _masked(text: str, match: re.Match[str]) -> str:
    run = match.group(1)
    start, end = match.span(1)
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if before in _HEX_LETTERS or after in _HEX_LETTERS:
        return run  # inside a hex value
    if _an_id(text, start, run, after):
        return run
    return run[:6] + "*" * (len(run) - 10) + run[-4:]


def _an_id(text: str, start: int, run: str, after: str) -> bool:
    """An id of ours: a whole word of prefix and 16 digits that do not pass the Luhn check."""
    if len(run) != 16 or not text.endswith(_ID_PREFIXES, 0, start) or _word_char(after):
        return False
    return not (start > 4 and _word_char(text[start - 5])) and not is_luhn_valid(ascii_digits(run))


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


# Between two digits, the other ways people split a number they type ("4761.7378.4361.2522",
# "476173_1648122118", "4761/7378/...", "4761. 7378", "4761 - 7378", two blanks, a tab, a
# line break, a no-break space): in a note only, where no float or path is expected. A lone
# dash is left to mask_pans_in_text, which takes dashed ids (dsp-20261128-051424-...) whole.
_NOTE_SEPARATORS = re.compile(r"(?<=\d)(?!-\d)[\s._/'-]{1,3}(?=\d)")


def mask_pans_in_note(text: str) -> str:
    """``mask_pans_in_text`` for free text a person typed (a dispute's or a fraud report's
    note, a cardholder's answer): a card number split by dots, underscores, slashes, a line
    break or a few blanks is masked too, as one split by single blanks is. Not for log lines
    or JSON, where a dot joins the two halves of a float (epoch seconds hold 13-19 digits)."""
    text = mask_pans_in_text(text)
    pieces: list[str] = []
    where: list[int] = []  # the position in ``text`` of each character of ``spaced``
    last = 0
    for found in _NOTE_SEPARATORS.finditer(text):
        pieces.append(text[last : found.start()])
        where.extend(range(last, found.start()))
        pieces.append(" ")  # one blank, as mask_pans_in_text takes a group's separator
        where.append(found.start())
        last = found.end()
    if not where:
        return text
    pieces.append(text[last:])
    where.extend(range(last, len(text)))
    spaced = "".join(pieces)
    masked = mask_pans_in_text(spaced)
    out = list(text)
    for index, (old, new) in enumerate(zip(spaced, masked, strict=True)):
        if new == "*" and old != "*":
            out[where[index]] = "*"
    return "".join(out)
