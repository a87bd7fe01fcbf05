"""A configuration value that cannot work is refused at start-up, naming the key and why;
nothing is silently wrapped, truncated or ignored (found by a review of the CLI and config)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.config import ConfigError, load_config

runner = CliRunner()


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    file = tmp_path / "authhost.toml"
    file.write_text(text)
    return load_config(file, env=env or {})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\nport = 99999\n", "port"),  # a socket binds 99999 as 34463
        ("[server]\nport = -1\n", "port"),
        ("[server]\nmetrics_port = 70000\n", "metrics_port"),
        ("[admin]\nport = 99999\n", "port"),
        ("[[listeners]]\nport = 65536\n", "port"),
    ],
    ids=["server 99999", "server -1", "metrics", "admin", "listener"],
)
def test_a_port_outside_0_to_65535_is_refused_not_wrapped(
    tmp_path: Path, text: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=f"{key} must be 0 to 65535"):
        _load(tmp_path, text)


def test_a_port_option_outside_the_range_exits_2() -> None:
    result = runner.invoke(app, ["config", "show", "--port", "99999"], env={})
    assert result.exit_code == 2, result.output
    assert "port must be 0 to 65535" in result.output


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[server]\nport = 1.5\n", {}, "expected an integer, got 1.5"),  # int() made it 1
        ("", {"AUTHHOST_SERVER_PORT": "٨٥٨٣"}, "expected an integer"),  # Arabic-Indic digits
        ("", {"AUTHHOST_SERVER_NODE_ID": "1_0"}, "expected an integer"),
        ("[server]\nshutdown_grace_s = nan\n", {}, "finite"),  # trio raised at shutdown
        ("", {"AUTHHOST_SERVER_IDLE_TIMEOUT_S": "inf"}, "got .inf."),
        ("", {"AUTHHOST_MODELS_BUDGET_MS": "١"}, "expected a number"),
        ("[server]\nallow_from = [{ a = 1 }]\n", {}, "list of strings"),
    ],
    ids=["fraction", "non-ASCII digits", "underscore", "nan", "inf", "non-ASCII float", "table"],
)
def test_a_value_of_the_wrong_shape_is_refused(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text, env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a request not decided in time (no hold, no funds check) must not be approved
        ('[server]\ntimeout_response_code = "00"\n', "approves"),
        ('[server]\ntimeout_response_code = "10"\n', "approves"),
        # a misspelt "decline" only flagged: fraud the model caught was approved
        ('[models]\naction = "Decline"\n', "action must be decline or flag"),
        ("[models]\nthreshold = -1\n", "threshold must be 0"),  # every request at threshold
        ("[models]\nbudget_ms = -1.0\n", "budget_ms"),
        ("[auth]\nhold_days = -1\n", "hold_days must be at least 1"),  # holds released at once
        ("[auth]\nhold_days = 0\n", "hold_days must be at least 1"),
        ("[auth]\npin_try_limit = 0\n", "pin_try_limit must be at least 1"),  # every PIN 75
        ("[auth]\natc_jump_limit = -1\n", "atc_jump_limit"),
        ("[security]\nzone_key_overlap_s = -1.0\n", "zone_key_overlap_s"),
        ('[security]\ndecimalisation_table = "abc"\n', "decimalisation_table"),
        # IBM 3624 validation data are at most 16 nibbles and at least one digit
        ("[security]\npin_validation_digits = 0\n", "pin_validation_digits must be 1 to 16"),
        ("[security]\npin_validation_digits = 17\n", "pin_validation_digits must be 1 to 16"),
    ],
)
def test_a_value_that_cannot_work_is_refused_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        _load(tmp_path, text)
    assert "authhost.toml" in str(refused.value)  # and the file it came from


def test_the_defaults_and_the_documented_example_still_load(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "[server]\nport = 8583\nmetrics_port = 0\nshutdown_grace_s = 10\n"
        '[models]\naction = "decline"\nthreshold = 900\n',
        {"AUTHHOST_SERVER_DEADLINE_MS": " 150 ", "AUTHHOST_ADMIN_TIMEOUT_S": "2.5"},
    )
    assert config.server.deadline_ms == 150 and config.admin.timeout_s == 2.5
    assert config.server.shutdown_grace_s == 10.0


@pytest.mark.parametrize(
    ("make", "env", "message"),
    [
        (lambda d: (d / "c.toml").write_bytes(b"\xff\xfe[server]\n"), {}, "not UTF-8"),
        (lambda d: (d / "c.toml").mkdir(), {}, "cannot read"),
        (lambda d: (d / "c.toml").write_text("listeners = [{ port = 1 }, 5]\n"), {}, "listeners"),
        (lambda d: (d / "c.toml").write_text('listeners = "abc"\n'), {}, "listeners"),
    ],
    ids=["not UTF-8", "a directory", "a listener that is a number", "listeners a string"],
)
def test_a_config_file_that_cannot_be_read_is_one_clear_line(
    tmp_path: Path, make, env: dict[str, str], message: str
) -> None:
    make(tmp_path)
    # through AUTHHOST_CONFIG: typer's own check of --config does not see it
    result = runner.invoke(
        app, ["config", "show"], env={"AUTHHOST_CONFIG": str(tmp_path / "c.toml"), **env}
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_empty_authhost_config_is_as_if_unset(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "show"], env={"AUTHHOST_CONFIG": ""})
    assert result.exit_code == 0, result.output


def _serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOST_")}
    base |= {"AUTHHOST_ADMIN_PORT": "0", "AUTHHOST_SERVER_METRICS_PORT": "0", **env}
    return subprocess.run(
        [sys.executable, "-m", "authhost", "serve", "--demo", "--port", "0"],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # was: "stopped on an error: OperationalError: no such table: products", exit 1
        ({"AUTHHOST_STORE_URL": ""}, "store URL is empty"),
        ({"AUTHHOST_STORE_URL": "sqlite:///  "}, "store URL is empty"),
        # a [security] entry the module refuses was "stopped on an error: SecurityError", exit 1
        ({"AUTHHOST_SECURITY_ZONE_KEYS": "garbage"}, "security.zone_keys entry 'garbage'"),
        ({"AUTHHOST_SECURITY_PIN_BLOCK_FORMATS": "9"}, "security.pin_block_formats"),
    ],
    ids=["empty store URL", "blank sqlite path", "zone_keys", "pin_block_formats"],
)
def test_start_up_configuration_errors_exit_2(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = _serve(tmp_path, env)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert message in output
    assert "stopped on an error" not in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 9000\n", "unknown key(s) prot (did you mean 'port'?)"),
        ("[sever]\nport = 9000\n", "unknown section(s) sever (did you mean 'server'?)"),
        ("[server]\nzzz = 1\n", "unknown key(s) zzz"),  # nothing close: no guess
    ],
)
def test_a_misspelt_key_or_section_is_named_with_the_closest_one(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, text)
    assert str(refused.value).endswith(message), refused.value


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ('[server]\nhost = ""\n', {}, "host"),
        ("", {"AUTHHOST_SERVER_HOST": ""}, "host"),  # an export that expanded to nothing
        ('[[listeners]]\nhost = " "\nport = 8590\n', {}, "host"),
        ('[server]\nmetrics_host = ""\n', {}, "metrics_host"),
        ('[admin]\nhost = ""\n', {}, "host"),
        ("", {"AUTHHOST_ADMIN_HOST": " "}, "host"),
    ],
    ids=["server", "environment", "listener (blank)", "metrics", "admin", "admin environment"],
)
def test_an_empty_host_is_refused_not_taken_for_every_interface(
    tmp_path: Path, text: str, env: dict[str, str], key: str
) -> None:
    """An empty host made the listener bind every interface (a card-data port reachable from
    any network the machine is on) without a word; every interface must be asked for."""
    with pytest.raises(ConfigError, match=f"{key} must not be empty.*0.0.0.0.*IPv4"):
        _load(tmp_path, text, env)


def test_every_interface_asked_for_explicitly_still_loads(tmp_path: Path) -> None:
    config = _load(tmp_path, '[server]\nhost = "0.0.0.0"\n[[listeners]]\nhost = "::"\nport = 1\n')
    assert [x.host for x in config.all_listeners()] == ["0.0.0.0", "::"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[server]\nhost = "x"\n\nport = "abc"\n', "authhost.toml:4: [server].port"),
        ("# a comment\n[server]\nprot = 1\n", "authhost.toml:3: [server]: unknown key(s) prot"),
        ("[auth]\n\nhold_days = 0\n", "authhost.toml:3: [auth]"),
        (
            "[server]\nport = 1\n[[listeners]]\nport = 2\n[[listeners]]\nport = 'x'\n",
            "authhost.toml:6: [[listeners]] #2.port",
        ),  # fmt: skip
    ],
)
def test_a_bad_value_in_the_file_is_named_with_its_line(
    tmp_path: Path, text: str, where: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, text)
    assert str(refused.value).startswith(f"{tmp_path / where}"), refused.value


def test_a_bad_environment_variable_is_named_as_such_not_as_the_file(tmp_path: Path) -> None:
    """It was reported as 'authhost.toml:[server].port', a file that may not even exist."""
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, "[server]\nport = 8583\n", {"AUTHHOST_SERVER_PORT": "eighty"})
    message = str(refused.value)
    assert message.startswith("environment variable AUTHHOST_SERVER_PORT ([server] port)")
    assert "authhost.toml" not in message


def test_a_value_out_of_range_names_its_table_once_and_where_it_came_from(
    tmp_path: Path, monkeypatch
) -> None:
    """A port of 99999 in the file read "authhost.toml:2: [server]: [server] port must be
    ...", and one from AUTHHOST_AUTH_HOLD_DAYS was blamed on "authhost.toml:[auth]", a file
    that need not exist, as a wrong type is not (above)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "authhost.toml").write_text("[server]\nport = 99999\n")
    result = runner.invoke(app, ["config", "show"], env={})
    assert result.exit_code == 2
    assert "authhost.toml:2: [server] port must be 0 to 65535, not 99999" in result.output
    (tmp_path / "authhost.toml").write_text("[auth]\nhold_days = 2\n")
    result = runner.invoke(app, ["config", "show"], env={"AUTHHOST_AUTH_HOLD_DAYS": "0"})
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert (
        "environment variable AUTHHOST_AUTH_HOLD_DAYS: [auth] hold_days must be at least 1" in said
    )
    assert "authhost.toml" not in said


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AUTHHOST_SERVER_DEADLINE": "150"},
            "environment variable AUTHHOST_SERVER_DEADLINE: [server] has no key 'deadline' "
            "(did you mean AUTHHOST_SERVER_DEADLINE_MS?)",
        ),
        (
            {"AUTHHOST_STORE_ULR": "redis://10.0.0.5:6379/0"},
            "[store] has no key 'ulr' (did you mean AUTHHOST_STORE_URL?)",
        ),
        ({"AUTHHOST_ADMIN_ZZZ": "1"}, "[admin] has no key 'zzz'"),  # nothing close: no guess
    ],
    ids=["deadline", "store url", "no guess"],
)
def test_a_misspelt_environment_variable_is_refused_as_a_misspelt_key_is(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    """It was ignored: the server started on the value the operator meant to change."""
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, "", env)
    assert str(refused.value).endswith(message), refused.value


def test_variables_that_are_not_keys_of_a_section_are_left_alone(tmp_path: Path) -> None:
    """The master key's variable may be named in the sections' form; other AUTHHOST_
    variables (the config file's, a test's) are no section's."""
    env = {
        "AUTHHOST_SECURITY_MASTER_KEY_ENV": "AUTHHOST_SECURITY_MK",
        "AUTHHOST_SECURITY_MK": "00" * 32,
        "AUTHHOST_MASTER_KEY": "00" * 32,
        "AUTHHOST_TEST_REDIS_URL": "redis://127.0.0.1:6379/0",
        "AUTHHOST_SERVER_PORT": "9583",
    }
    config = _load(tmp_path, "", env)
    assert config.security.master_key_env == "AUTHHOST_SECURITY_MK"
    assert config.server.port == 9583


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[admin]\nbusiness_day_timezone = "CET+1"\n', "not a time zone"),
        ('[admin]\nbusiness_day_timezone = "Europe"\n', "not a time zone"),  # a directory
        (f'[admin]\nbusiness_day_timezone = "{"A" * 300}"\n', "not a time zone"),
        ('[admin]\nbusiness_day_cutover = "21h00"\n', "not a time of day"),
        ('[admin]\nbusiness_day_cutover = "24:00"\n', "not a time of day"),
    ],
)
def test_a_business_day_not_understood_is_refused(tmp_path: Path, text: str, message: str):
    """Every report's day would silently be another one than the bank's."""
    with pytest.raises(ConfigError, match=rf"\[admin\] business day: .*{message}"):
        _load(tmp_path, text)


@pytest.mark.parametrize("value", ["-1", "0.5", "100000"])
def test_an_audit_walk_interval_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    """A negative interval made trio.sleep raise in a background service, and a fraction of
    a second walked the whole log without pause."""
    with pytest.raises(ConfigError, match=r"\[admin\] audit_verify_every_s must be 0"):
        _load(tmp_path, f"[admin]\naudit_verify_every_s = {value}\n")
    assert _load(tmp_path, "[admin]\naudit_verify_every_s = 0\n").admin.audit_verify_every_s == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drift_every_s = -1", r"\[models\] drift_every_s must be 0 \(never\) or 1 to 604800"),
        ("drift_every_s = 0.5", r"\[models\] drift_every_s must be 0 \(never\) or 1 to 604800"),
        ("drift_window_s = 60", r"\[models\] drift_window_s must be 3600 to 7776000"),
    ],
)
def test_a_drift_schedule_out_of_range_is_refused(tmp_path: Path, text: str, message: str) -> None:
    """A negative interval would make trio.sleep raise in the server's drift runs, and a
    fraction of a second replay weeks of journal without pause."""
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, f"[models]\n{text}\n")
    models = _load(tmp_path, "[models]\ndrift_every_s = 3600\n").models
    assert (models.drift_every_s, models.drift_window_s) == (3600, 7 * 86400)


def test_one_worker_runs_the_drift_schedule() -> None:
    """Each worker replaying the same journal would multiply its cost by the workers."""
    from authhost.config import Config
    from authhost.server.workers import worker_config

    config = Config().replace("models", drift_every_s=600.0)
    assert [worker_config(config, i).models.drift_every_s for i in range(3)] == [600, 0, 0]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("lockout_failures = -1", r"\[admin\] lockout_failures must be 0"),
        ("lockout_s = 0", r"\[admin\] lockout_s must be above 0"),
        ("lockout_window_s = -5", r"\[admin\] lockout_window_s must be above 0"),
    ],
)
def test_an_admin_lockout_out_of_range_is_refused(tmp_path: Path, text: str, said: str) -> None:
    """A negative count or a lockout of no time would leave the API open to guessing."""
    with pytest.raises(ConfigError, match=said):
        _load(tmp_path, f"[admin]\n{text}\n")
    admin = _load(tmp_path, "[admin]\nlockout_failures = 5\nlockout_s = 3600\n").admin
    assert (admin.lockout_failures, admin.lockout_window_s, admin.lockout_s) == (5, 1800, 3600)
