"""Loading rules files: every error is refused with file, line, rule name and a message; the
line is the line of the offending key (for expressions, the line inside the expression)."""

from __future__ import annotations

from pathlib import Path

import pytest

from authhost.rules.lists import ListLoadError, load_lists
from authhost.rules.loader import load_rule_set
from authhost.rules.rule import Action, Mode
from authhost.rules.rulefile import RuleLoadError, parse_rules

ROOT = Path(__file__).resolve().parents[1]

GOOD_TOML = '''\
version = "v1"

[[rule]]
name = "later"
expression = "amount > 10"
action = "review"
priority = 50

[[rule]]
name = "first"
expression = """
amount > 500.00
and mcc in (7995, 5967)
"""
action = "decline"
response_code = 5
reason = "R-1"
owner = "alice"
description = "big gambling"
priority = 10

[[rule]]
name = "points"
expression = "score >= 700"
action = "score"
points = -25
mode = "shadow"
enabled = false
'''


def test_good_toml_file_loads_in_priority_order(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(GOOD_TOML)
    rules = load_rule_set(path)
    assert [r.name for r in rules.all_rules] == ["first", "later", "points"]
    assert [r.name for r in rules.rules] == ["first", "later"]  # disabled ones do not run
    first = rules.all_rules[0]
    assert (first.action, first.response_code, first.reason, first.owner) == (
        Action.DECLINE,
        "05",
        "R-1",
        "alice",
    )
    assert first.line == 12  # the first line of the multi-line expression
    points = rules.all_rules[2]
    assert (points.points, points.mode, points.enabled) == (-25, Mode.SHADOW, False)
    assert rules.all_rules[1].reason == "rule:later"  # default reason code
    assert rules.label == "v1"
    assert len(rules.version) == 12
    path.write_text(GOOD_TOML + "\n# a comment\n")
    assert load_rule_set(path).version != rules.version  # the version is the content hash


def _errors(text: str, fmt: str = "toml") -> list[tuple[int, str, str]]:
    with pytest.raises(RuleLoadError) as caught:
        parse_rules(text, "f.toml", fmt)
    return [(e.line, e.rule, e.message) for e in caught.value.errors]


def test_expression_errors_carry_the_expression_line() -> None:
    text = (
        "[[rule]]\n"  # 1
        'name = "ok"\n'  # 2
        'expression = "amount > 1"\n'  # 3
        'action = "review"\n'  # 4
        "\n"  # 5
        "[[rule]]\n"  # 6
        'name = "typo"\n'  # 7
        'action = "decline"\n'  # 8
        'expression = "amont > 1"\n'  # 9
        "\n"
        "[[rule]]\n"  # 11
        'name = "multi"\n'  # 12
        'action = "decline"\n'  # 13
        'expression = """\n'  # 14
        "amount > 1 and\n"  # 15
        "merchant == 5\n"  # 16
        '"""\n'
        "[[rule]]\n"  # 18
        'name = "syntax"\n'  # 19
        "expression = 'amount >> >'\n"  # 20
        'action = "review"\n'
    )
    found = _errors(text)
    assert [(line, rule) for line, rule, _ in found] == [(9, "typo"), (16, "multi"), (20, "syntax")]
    assert "did you mean 'amount'" in found[0][2]
    assert "quote the value" in found[1][2]
    assert "syntax error" in found[2][2]


def test_error_string_names_file_line_and_rule() -> None:
    with pytest.raises(RuleLoadError) as caught:
        parse_rules('[[rule]]\nname = "x"\nexpression = "amont > 1"\naction = "review"\n', "r.toml")
    assert str(caught.value).startswith("r.toml:3: rule 'x': unknown variable 'amont'")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('name = "a"\nexpression = "amount > 1"\n', 0, "action is required"),
        ('name = "a"\nexpression = "amount > 1"\naction = "block"\n', 4, "not one of"),
        ('name = "a"\nexpression = "amount > 1"\naction = "review"\nmode = "dry"\n', 5, "mode"),
        ('name = "a"\naction = "review"\n', 0, "expression is required"),
        ('expression = "amount > 1"\naction = "review"\n', 0, "name is required"),
        ('name = "a;b"\nexpression = "amount > 1"\naction = "review"\n', 2, "name is required"),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "decline"\nresponse_code = "00"\n',
            5,
            "not a decline code",
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\nresponse_code = "59"\n',
            5,
            "only for action = 'decline'",
        ),
        ('name = "a"\nexpression = "amount > 1"\naction = "score"\n', 0, "needs points"),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "score"\npoints = 1.5\n',
            5,
            "needs points",
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\npoints = 3\n',
            5,
            "only for action = 'score'",
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\nenabled = "yes"\n',
            5,
            "true or false",
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\npriority = "high"\n',
            5,
            "whole number",
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\nexpresion = "x"\n',
            5,
            "did you mean 'expression'",
        ),
        # printed on terminals, logs and the journal: no escape sequence, no forged line
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\nreason = "R\\u001b[2J"\n',
            5,
            "reason must not contain control characters: U+001B at position 2",
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\nowner = "bob\\nINFO ok"\n',
            5,
            "owner must not contain control characters: U+000A at position 4",
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\nreason = "R\\u0085"\n',
            5,
            "U+0085",  # a C1 control (NEL)
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\nowner = "\\u202eevil"\n',
            5,
            "U+202E",  # a bidirectional override reorders what is read
        ),
        (
            'name = "a"\nexpression = "amount > 1"\naction = "review"\n'
            'description = "ok\\nline two\\u0007"\n',
            5,
            "description must not contain control characters: U+0007",
        ),
        (
            'name = "a"\nexpression = "merchant == \'\\u001b[31m\'"\naction = "review"\n',
            3,
            "expression must not contain control characters: U+001B",
        ),
        (  # a number is a name written without quotes, not a missing one
            'name = 2026\nexpression = "amount > 1"\naction = "review"\n',
            2,
            'name must be quoted text ("2026"), not a number',
        ),
    ],
)
def test_field_errors(body: str, line: int, message: str) -> None:
    found = _errors("[[rule]]\n" + body)
    assert len(found) == 1
    got_line, _, got_message = found[0]
    assert message in got_message
    assert got_line == (line or 1)  # 0 here = reported at the [[rule]] header


def test_duplicate_names_and_all_errors_at_once() -> None:
    text = (
        '[[rule]]\nname = "a"\nexpression = "amount > 1"\naction = "review"\n'
        '[[rule]]\nname = "a"\nexpression = "amount > 2"\naction = "review"\n'
        '[[rule]]\nname = "b"\nexpression = "nope > 1"\naction = "review"\n'
    )
    found = _errors(text)
    assert [(line, rule) for line, rule, _ in found] == [(6, "a"), (11, "b")]
    assert any("duplicate rule name (first at line 2)" in m for _, _, m in found)
    assert any(rule == "b" and line == 11 for line, rule, _ in found)


def test_toml_syntax_error_has_a_line() -> None:
    found = _errors('[[rule]]\nname = "a"\nexpression = "amount > 1\naction = "review"\n')
    assert found[0][0] == 3
    assert found[0][2].startswith("TOML:")


def test_unknown_top_level_key() -> None:
    found = _errors(
        'rules = 1\n[[rule]]\nname = "a"\nexpression = "amount > 1"\naction = "review"\n'
    )
    assert "unknown top-level key(s): rules" in found[0][2]


YAML = """\
version: y1
rule:
  - name: ok
    expression: amount > 1
    action: review
  - name: block
    action: decline
    expression: |
      amount > 1
      and amont < 2
  - name: quoted
    action: review
    expression: "merchant == 5"
"""


def test_yaml_errors_carry_lines() -> None:
    found = _errors(YAML, "yaml")
    assert [(line, rule) for line, rule, _ in found] == [(10, "block"), (13, "quoted")]


def test_yaml_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(YAML.replace("amont", "amount").replace("merchant == 5", "merchant == '5'"))
    rules = load_rule_set(path)
    assert [r.name for r in rules.rules] == ["ok", "block", "quoted"]
    assert rules.rules[1].line == 9
    assert rules.label == "y1"


def test_yaml_syntax_error() -> None:
    found = _errors("rule:\n  - name: a\n   bad: [\n", "yaml")
    assert found[0][0] >= 2 and found[0][2].startswith("YAML:")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as caught:
        load_rule_set(tmp_path / "nope.toml")
    assert "nope.toml" in str(caught.value)


EXAMPLE_RULES = sorted(
    path.name
    for path in (ROOT / "examples" / "rules").iterdir()
    if path.suffix in (".toml", ".yaml")
)


@pytest.mark.parametrize("name", EXAMPLE_RULES)
def test_example_files_load(name: str) -> None:
    rules = load_rule_set(ROOT / "examples" / "rules" / name)
    assert len(rules.rules) >= 2


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("1: oops\nrule: []\n", "yaml", "unknown top-level key(s): 1"),
        ("rule:\n  - name: a\n    on: x\n    action: review\n    expression: amount > 1\n",
         "yaml", "key True is not a name"),
        ('[[rule]]\nname = "deep"\naction = "review"\nexpression = "amount > ' + "1+" * 1200
         + '1"\n', "toml", "nested too deeply"),
        ('[[rule]]\nname = "r"\naction = "review"\nexpression = "amount > 1"\n'
         'reason = "FR;BIG"\n', "toml", "must not contain ';'"),
    ],
)  # fmt: skip
def test_odd_files_are_refused_with_a_reason_not_an_exception(text, fmt, message) -> None:
    """A YAML key that is not text (a number, `on:` read as true) and an expression deeper
    than the parser goes raised TypeError and RecursionError past the loader: the CLI printed
    a traceback and the server's file watcher stopped for good."""
    assert any(message in m for _, _, m in _errors(text, fmt))


def test_a_description_may_span_lines_and_a_version_label_may_not_hold_controls() -> None:
    body = 'name = "a"\nexpression = "amount > 1"\naction = "review"\n'
    parsed = parse_rules("[[rule]]\n" + body + 'description = """\nline one\n\tline two\n"""\n')
    assert parsed.rules[0].description == "line one\n\tline two\n"
    assert _errors('version = "v1\\u001b[2J"\n[[rule]]\n' + body) == [
        (0, "", "version must not contain U+001B at position 3")
    ]


def test_two_files_of_one_list_are_refused(tmp_path: Path) -> None:
    """block.txt and block.csv both made list 'block': one silently won, by file name order."""
    from authhost.rules.lists import ListLoadError, load_lists

    (tmp_path / "block.txt").write_text("M-1\n")
    (tmp_path / "allow.txt").write_text("M-2  # the comment goes\n\n")
    assert load_lists(tmp_path) == {"block": frozenset({"M-1"}), "allow": frozenset({"M-2"})}
    (tmp_path / "block.csv").write_text("M-9\n")
    with pytest.raises(ListLoadError, match=r"block.txt: list 'block' is also block.csv"):
        load_lists(tmp_path)


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        (  # a second block pasted below the first dropped every rule above it
            "rule:\n  - name: a\n    expression: amount > 1\n    action: decline\n"
            "rule:\n  - name: b\n    expression: amount > 2\n    action: review\n",
            5,
            "rule",
        ),
        (  # the second expression silently replaced the first
            "rule:\n  - name: a\n    expression: amount > 1\n    action: decline\n"
            "    expression: amount > 100000\n",
            5,
            "expression",
        ),
    ],
)
def test_a_yaml_key_written_twice_is_refused_not_silently_the_last(
    text: str, line: int, key: str
) -> None:
    """YAML keeps the last of two equal keys without a word (TOML refuses them): the rules
    above a second `rule:` vanished from the file the analyst checked."""
    found = _errors(text, "yaml")
    assert [(n, m.split(" is ")[0]) for n, _, m in found] == [(line, f"key {key!r}")]
    assert "written twice" in found[0][2]


def test_a_file_that_is_not_utf8_is_refused_at_the_line_of_the_byte(tmp_path: Path) -> None:
    """A rules file saved in Latin-1 (an accented description) was refused with no line: the
    analyst had to hunt for one byte in the whole file."""
    path = tmp_path / "rules.toml"
    path.write_bytes(
        b'[[rule]]\nname = "x"\ndescription = "caf\xe9"\nexpression = "amount > 1"\n'
        b'action = "review"\n'
    )
    with pytest.raises(RuleLoadError) as caught:
        load_rule_set(path)
    assert str(caught.value) == f"{path}:3: not UTF-8 text: byte 0xe9 at column 19"


def test_a_list_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "merchant_block.txt").write_bytes(b"M-1\nM-\xe92\n")
    with pytest.raises(ListLoadError) as caught:
        load_lists(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'merchant_block.txt'}:2: not UTF-8 text: byte 0xe9 at column 3"
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (  # a quoted key is the same key to TOML: the error pointed at the [[rule]] line
            '[[rule]]\nname = "a"\n"expression" = "amont > 1"\naction = "review"\n',
            3,
        ),
        (  # quotes in a comment after a multi-line string kept it "open" to the end
            '[[rule]]\nname = "a"\ndescription = """x\ny"""  # see """\n'
            'expression = "amont > 1"\naction = "review"\n',
            5,
        ),
        (  # an escaped quote before the closing ones
            '[[rule]]\nname = "a"\ndescription = """x\ny \\""""\n'
            'expression = "amont > 1"\naction = "review"\n',
            5,
        ),
        (  # an escaped quote that does not close the string
            '[[rule]]\nname = "a"\ndescription = """x \\"""\ny"""\n'
            'expression = "amont > 1"\naction = "review"\n',
            5,
        ),
    ],
    ids=["quoted key", "quotes in a comment", "escaped then closing", "escaped, open"],
)
def test_toml_errors_name_the_line_of_the_expression(text: str, line: int) -> None:
    assert [(n, m.split(" (")[0]) for n, _, m in _errors(text)] == [
        (line, "unknown variable 'amont'")
    ]


@pytest.mark.parametrize(
    ("text", "line", "said"),
    [
        (
            '[[rule]]\nname = "a"\nexpression = """\namount > 1\naction = "review"\n\n'
            '[[rule]]\nname = "b"\nexpression = "amount > 2"\naction = "review"\n',
            3,
            "the multi-line string opened on line 3 is never closed",
        ),
        ('[[rule]]\nname = "a"\naction = "review"\nexpression = "amount > 1', 4, "Unterminated"),
    ],
    ids=["multi-line", "last line"],
)
def test_a_string_never_closed_is_refused_at_its_line(text: str, line: int, said: str) -> None:
    """tomllib reports a string never closed "at end of document", with no line: the
    analyst had to find which of the file's strings lacks its quotes."""
    [(found_line, _, message)] = _errors(text)
    assert found_line == line and said in message


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (  # folded: YAML joins the lines with spaces
            "rule:\n  - name: a\n    action: review\n    expression: >\n      amount > 1\n"
            "      and card.count_1h > 2\n      and amont > 2\n",
            7,
            5,
        ),
        (  # a plain scalar over several lines is folded the same way
            "rule:\n  - name: a\n    action: review\n    expression: amount > 1\n"
            "      and amont > 2\n",
            5,
            5,
        ),
        (  # one line: as before
            "rule:\n  - name: a\n    action: review\n    expression: >\n"
            "      amount > 1 and amont > 2\n",
            5,
            16,
        ),
    ],
    ids=["folded", "plain", "one line"],
)
def test_a_folded_yaml_expression_is_refused_at_the_line_written(
    text: str, line: int, column: int
) -> None:
    """YAML folds `>` and plain multi-line text into one line: an error on the third line was
    reported on the first, at a column of the joined text (column 30 of a 12-wide line)."""
    [(found_line, _, message)] = _errors(text, "yaml")
    assert (found_line, message.rsplit("(column ", 1)[1]) == (line, f"{column})")


@pytest.mark.parametrize(
    ("text", "line", "said"),
    [
        (
            'rule = [\n  { name = "a", expression = "amount > 1", action = "review",'
            ' description = "{ x = 1 }" },\n\n'
            '  { "name" = "b", expression = "amont > 1", action = "review" },\n]\n',
            4,
            "unknown variable 'amont'",
        ),
        ('version = "x"\n\n[rule]\nname = "a"\n', 3, "use [[rule]]"),
    ],
    ids=["inline tables", "one table"],
)
def test_rules_written_as_inline_tables_or_one_table_are_refused_at_their_line(
    text: str, line: int, said: str
) -> None:
    """`rule = [ {...}, ... ]` is valid TOML, but its errors had no line at all, nor had a
    single `[rule]` table."""
    [(found_line, _, message)] = _errors(text)
    assert found_line == line and said in message
