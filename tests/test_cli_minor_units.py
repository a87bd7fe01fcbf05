"""Amounts the CLI takes in minor units are whole numbers: the int parsing took ``100.00`` as
100 (1.00 in a currency with cents, where 100.00 was meant) while it refused ``100.50``."""

from __future__ import annotations

import json

from host_admin import cli_config
from typer.testing import CliRunner

from authhost.cli.app import app


def cli(config, *args: str) -> tuple[int, str]:
    group, command, *rest = args  # the options before a "--"
    done = CliRunner().invoke(app, [group, command, "--config", str(config), *rest])
    # rich's error box wraps a message: read it as one line
    return done.exit_code, " ".join(done.output.replace("│", " ").split())


def test_an_amount_with_a_decimal_point_is_refused_and_moves_nothing(tmp_path):
    config = cli_config(tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}")
    code, out = cli(config, "accounts", "create", "--account-id", "acc-1", "--balance", "5000")
    assert code == 0, out

    for amount in ("100.00", "100.50", "1e4", "١٠٠"):
        code, out = cli(config, "accounts", "fund", "acc-1", amount)
        assert code == 2, out
        assert "is not a whole number of minor units" in out and "Traceback" not in out
    code, out = cli(config, "accounts", "create", "--account-id", "acc-2", "--balance", "10.00")
    assert code == 2 and "is not a whole number of minor units" in out
    code, out = cli(config, "accounts", "credit-limit", "acc-1", "50.0")
    assert code == 2 and "is not a whole number of minor units" in out
    code, out = cli(config, "disputes", "chargeback", "dsp-x", "--amount-minor", "10.00")
    assert code == 2 and "is not a whole number of minor units" in out

    code, out = cli(config, "accounts", "show", "acc-1")
    assert code == 0 and json.loads(out)["balance"] == 5000  # nothing moved
    code, out = cli(config, "accounts", "fund", "acc-1", "10000")
    assert code == 0 and json.loads(out)["balance"] == 15000
    code, out = cli(config, "accounts", "fund", "acc-1", "--", "-2500")
    assert code == 0 and json.loads(out)["balance"] == 12500


def test_a_negative_amount_is_taken_as_written(tmp_path):
    """``accounts fund ID -500``, as its help says negative amounts take off, and a negative
    ledger balance: click took ``-500`` for an option and stopped with "No such option: -5"."""
    config = cli_config(tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}")
    code, out = cli(config, "accounts", "create", "--account-id", "acc-1", "--balance", "5000")
    assert code == 0, out
    code, out = cli(config, "accounts", "fund", "acc-1", "-500", "--reason", "a fee")
    assert code == 0, out
    assert json.loads(out)["balance"] == 4500
    code, out = cli(config, "accounts", "ledger-balance", "acc-1", "-100", "--through", "0")
    assert "No such option" not in out, out  # the cursor's own answer, not the amount's
    code, out = cli(config, "accounts", "fund", "acc-1", "-5x")
    assert code == 2 and "is not a whole number of minor units" in out
