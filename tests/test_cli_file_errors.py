"""``authhost keys`` and ``authhost models`` given a file they cannot use: one line and a
non-zero exit, never a traceback (found by a review that fed every command odd arguments)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authhost.cli.app import app

runner = CliRunner()
TEST_MASTER_KEY = "11" * 32  # a test key: never a real one


def _keys(*args: str) -> object:
    return runner.invoke(app, ["keys", *args], env={"AUTHHOST_MASTER_KEY": TEST_MASTER_KEY})


def _refused(result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert message in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "zpk", "--type", "zpk"], "a-file: File exists"),  # its folder made
        (["list"], "Not a directory"),
        (["rotate-pan-key"], "Not a directory"),
    ],
)
def test_a_key_store_under_a_file_instead_of_a_directory(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "a-file").write_text("")
    result = _keys(*args, "--key-store", str(tmp_path / "a-file" / "keys.json"))
    _refused(result, 1, message)  # generate: a FileExistsError traceback


def test_an_empty_or_too_long_key_store_name(tmp_path: Path) -> None:
    _refused(_keys("list", "--key-store", ""), 1, "--key-store must name a file")
    _refused(_keys("list", "--key-store", "k" * 300), 1, "File name too long")
    long_one = str(tmp_path / ("k" * 300))
    _refused(_keys("generate", "zpk", "--type", "zpk", "--key-store", long_one), 1, "too long")


def test_a_key_with_no_name_is_refused(tmp_path: Path) -> None:
    key_store = tmp_path / "keys.json"
    _refused(_keys("generate", " ", "--type", "zpk", "--key-store", str(key_store)), 1, "empty")
    assert _keys("generate", "zpk", "--type", "zpk", "--key-store", str(key_store)).exit_code == 0
    names = [key["name"] for key in json.loads(key_store.read_text())["keys"]]
    assert names == ["zpk"]


def test_a_model_name_too_long_for_a_file_and_a_models_dir_that_is_a_file(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    result = runner.invoke(app, ["models", "activate", "m" * 300, "--dir", str(models)])
    _refused(result, 2, "is not an artifact name")  # too long for a file name
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("")
    _refused(runner.invoke(app, ["models", "clear-challenger", "--dir", str(a_file)]), 2, "exists")
