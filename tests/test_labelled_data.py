"""Labelled data for backtests and training is refused, with file, line and value, when a row's
``ts`` is not epoch seconds or its ``label`` is not 0, 1 or empty: 'yesterday' or an ISO date
was a read error without a line, 'nan' a row "without ts", and a label 2 was taken for fraud."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.rules.dataset import DatasetError, read_labelled

HEADER = "ts,label,card_id,merchant_name,amount_minor\n"
GOOD = '1764000000,0,c1,"SHOP\nON TWO LINES",100\n'  # lines 2 and 3: a quoted new line


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(HEADER + GOOD + "".join(rows))
    return path


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("yesterday,0,c1,X,100\n", "ts 'yesterday' is not a number: ts is epoch seconds"),
        ("2026-11-01T10:00:00Z,0,c1,X,100\n", "ts '2026-11-01T10:00:00Z' is not a number"),
        ("nan,0,c1,X,100\n", "ts 'nan' is not a number"),
        (",0,c1,X,100\n", "no ts: ts is epoch seconds"),
        ("1764000000000,0,c1,X,100\n", "is not epoch seconds from 0 to 100,000,000,000 (milli"),
        ("-5,0,c1,X,100\n", "ts -5.0 is not epoch seconds"),
        ("1764000001,2,c1,X,100\n", "label '2' is not 0 or 1 (1 = fraud; 0 or empty = genuine)"),
        ("1764000001,yes,c1,X,100\n", "label 'yes' is not 0 or 1"),
        ("1764000001,0.5,c1,X,100\n", "label '0.5' is not 0 or 1"),
        ("1764000001,-1,c1,X,100\n", "label '-1' is not 0 or 1"),
        ("1764000001,0,c1,X,lots\n", "cannot read: In CSV column #4"),
    ],
)
def test_a_bad_row_is_refused_with_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = _csv(tmp_path, "1764000002,1,c1,X,100\n", row)  # the bad row: line 5
    with pytest.raises(DatasetError) as caught:
        read_labelled(path)
    assert str(caught.value).startswith(f"{path}:5: ")
    assert message in str(caught.value)


def test_good_rows_read_empty_label_genuine_and_sort_by_ts(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1764000002.5,1,c1,X,100\n", " 1764000001 , ,c2,Y,100\n")
    table = read_labelled(path)
    assert table.column("ts").to_pylist() == [1764000000.0, 1764000001.0, 1764000002.5]
    assert table.column("label").to_pylist() == [0, 0, 1]
    assert table.column("label").type == pa.int64()


@pytest.mark.parametrize(
    ("ts", "label", "message"),
    [
        ([1.0, 2.0, 3.0], [0, 1, 2], ": row 3: label 2 is not 0 or 1"),
        ([1.0, 2.0, 3.0], [0.0, 1.0, 0.5], ": row 3: label 0.5 is not 0 or 1"),
        ([1.0, None, 3.0], [0, 1, 0], ": row 2: no ts"),
        ([1.0, float("nan"), 3.0], [0, 1, 0], ": row 2: no ts"),
        ([1.0, 2.0, 1.764e12], [0, 1, 0], ": row 3: ts 1764000000000.0 is not epoch seconds"),
        (
            [dt.datetime(2026, 11, 1, h, tzinfo=dt.UTC) for h in (1, 2, 3)],
            [0, 1, 0],
            ": ts is a timestamp[us, tz=UTC] column: it must hold epoch seconds (numbers)",
        ),
        (["1", "2", "x"], [0, 1, 0], ": row 3: ts 'x' is not a number"),
    ],
)
def test_a_bad_parquet_row_is_refused_with_its_row(
    tmp_path: Path, ts: list[object], label: list[object], message: str
) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"ts": ts, "label": label, "card_id": ["c1", "c1", "c2"]}), path)
    with pytest.raises(DatasetError) as caught:
        read_labelled(path)
    assert str(caught.value).startswith(str(path) + message)


def test_a_bool_label_column_reads_as_0_and_1(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"ts": [2.0, 1.0], "label": [True, None]}), path)
    assert read_labelled(path).column("label").to_pylist() == [0, 1]


runner = CliRunner()


def test_backtest_and_train_refuse_a_bad_row_and_an_empty_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "a"\nexpression = "amount > 1"\naction = "decline"\n')
    bad = _csv(tmp_path, "1764000001,2,c1,X,100\n")
    result = runner.invoke(app, ["backtest", "--rules", str(rules), "--data", str(bad)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {bad}:4: label '2' is not 0 or 1 (1 = fraud; 0 or empty = genuine)"
    ]
    trained = runner.invoke(app, ["train", "--data", str(bad), "--out", str(tmp_path / "m")])
    assert trained.exit_code == 2 and f"{bad}:4: label '2'" in trained.output
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER)
    result = runner.invoke(app, ["backtest", "--rules", str(rules), "--data", str(empty)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {empty}: no rows: nothing to replay (a header only?)"
    ]


def test_a_scenario_with_a_control_character_is_refused_with_its_line(tmp_path: Path) -> None:
    """Scenario names are printed in backtest and training reports: an escape sequence in one
    acted on the analyst's terminal."""
    path = tmp_path / "data.csv"
    path.write_text(
        'ts,label,card_id,scenario\n1764000000,1,c1,card testing\n1764000001,1,c2,"\x1b[2Jwiped"\n'
    )
    with pytest.raises(DatasetError) as caught:
        read_labelled(path)
    assert str(caught.value).startswith(f"{path}:3: scenario '\\x1b[2Jwiped' holds a control")
    path.write_text("ts,label,card_id,scenario\n1764000000,1,c1,card testing\n")
    assert read_labelled(path).column("scenario").to_pylist() == ["card testing"]
