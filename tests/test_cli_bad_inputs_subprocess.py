"""Every operator command given bad input, run as the real executable: one clear error, a
non-zero exit, never a traceback (a wrong --store URL, an unreadable configuration, a missing
or unprotected key file, a bad option). Found by running each command with such input:
``store info --store sqlite:///:memory:`` printed a traceback, an environment variable's bad
value was blamed on authhost.toml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MASTER = "11" * 32  # a test key, never a real one


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo installation (store, key store) plus odd files to point commands at."""
    root = tmp_path_factory.mktemp("bad-inputs")
    made = _authhost(root, "demo", "--store", "sqlite:///real.db")
    assert made.returncode == 0, made.stderr
    (root / "bad.toml").write_text("[store\nurl = 1\n")
    (root / "adir").mkdir()
    (root / "notdb.db").write_text("not a database")
    (root / "open.key").write_text(MASTER + "\n")
    (root / "open.key").chmod(0o644)
    return root


def _authhost(cwd: Path, *args: str, env: dict[str, str] | None = None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOST_")}
    environment.update(
        {"AUTHHOST_SERVER_METRICS_PORT": "0", "AUTHHOST_ADMIN_PORT": "0", **(env or {})}
    )
    return subprocess.run(
        [sys.executable, "-m", "authhost", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


CASES = [
    # (arguments, environment, what the error says)
    (["store", "info", "--store", "sqlite:///:memory:"], {}, "sqlite URLs name a file"),
    (["store", "check", "--store", "foo://x"], {}, "unknown store URL scheme"),
    (["store", "backup", "b.db", "--store", ""], {}, "empty"),
    (["store", "info", "--store", "sqlite:///notdb.db"], {}, "not a readable SQLite store"),
    (["store", "backup", "nodir/b.db", "--store", "sqlite:///real.db"], {}, "does not exist"),
    (["store", "info", "--store", "redis://127.0.0.1:1/0"], {}, "Redis"),
    (["journal", "show", "C1", "--store", "sqlite:///missing.db"], {}, "no store at"),
    (["journal", "export", "--out", "o.csv", "--store", "sqlite:///adir"], {}, "adir"),
    (["cards", "list", "--store", "foo://x"], {}, "unknown store URL scheme"),
    (
        [
            "journal",
            "export",
            "--format",
            "parquet",
            "--out",
            "adir",
            "--store",
            "sqlite:///real.db",
        ],
        {},
        "cannot write adir: it is a folder; --out needs a file name (e.g. adir/journal.parquet)",
    ),  # fmt: skip
    (
        [
            "journal",
            "export",
            "--format",
            "parquet",
            "--out",
            "nodir/j.parquet",
            "--store",
            "sqlite:///real.db",
        ],
        {},
        "cannot write nodir/j.parquet: the folder nodir does not exist; create it first",
    ),  # fmt: skip
    (
        ["journal", "export", "--out", "adir", "--store", "sqlite:///real.db"],
        {},
        "cannot write adir: it is a folder; --out needs a file name (e.g. adir/journal.csv)",
    ),  # fmt: skip
    (
        ["journal", "find", "--rrn", "1", "--since", "nan", "--store", "sqlite:///real.db"],
        {},
        "--since must be a time",
    ),  # was: [] and exit 0
    (
        ["journal", "export", "--out", "o.csv", "--until", "nan", "--store", "sqlite:///real.db"],
        {},
        "--until must be a time",
    ),  # fmt: skip
    (["cards", "show", "C1", "--store", "redis://127.0.0.1:1/0"], {}, "cannot reach Redis"),
    (["cards", "list", "--config", "bad.toml"], {}, "bad.toml"),
    (["cards", "list", "--config", "nope.toml"], {}, "not found"),
    (["journal", "totals"], {"AUTHHOST_CONFIG": "adir"}, "cannot read"),
    (["config", "show"], {"AUTHHOST_SERVER_PORT": "abc"}, "AUTHHOST_SERVER_PORT"),
    (
        [
            "journal",
            "report-fraud",
            "C1",
            "1",
            "--source",
            "rumour",
            "--store",
            "sqlite:///real.db",
        ],
        {},
        "source",
    ),  # fmt: skip
    (["keys", "list", "--key-store", "nokeys.json"], {"AUTHHOST_MASTER_KEY": MASTER}, "not found"),
    (["keys", "list", "--key-store", "authhost-keys.json"], {"AUTHHOST_MASTER_KEY": "zz"}, "hex"),
    (
        ["keys", "list", "--key-store", "authhost-keys.json"],
        {"AUTHHOST_SECURITY_MASTER_KEY_FILE": "open.key"},
        "chmod 600",
    ),  # fmt: skip
    (
        ["keys", "list", "--key-store", "authhost-keys.json"],
        {"AUTHHOST_SECURITY_MASTER_KEY_FILE": "none.key"},
        "cannot read",
    ),  # fmt: skip
    (
        ["cards", "list", "--store", "sqlite:///real.db"],
        {"AUTHHOST_SECURITY_KEY_STORE": "adir", "AUTHHOST_MASTER_KEY": MASTER},
        "adir",
    ),  # fmt: skip
    (["serve", "--port", "0", "--store", "foo://x", "--demo"], {}, "unknown store URL scheme"),
    (["serve", "--port", "0", "--store", "sqlite:///notdb.db", "--demo"], {}, "not a database"),
    (["serve", "--port", "0"], {"AUTHHOST_SECURITY_MASTER_KEY_FILE": "open.key"}, "chmod 600"),
    (
        ["serve", "--port", "0", "--store", "sqlite:///x.db"],
        {"AUTHHOST_MASTER_KEY": MASTER, "AUTHHOST_SECURITY_KEY_STORE": "nokeys.json"},
        "key store not found",
    ),  # fmt: skip
    (["serve", "--workers", "0"], {}, "workers"),
    (["serve", "--port", "70000"], {}, "port must be 0 to 65535"),
    (["serve", "--config", "bad.toml"], {}, "bad.toml"),
    (["serve", "--port", "0", "--demo"], {"AUTHHOST_RULES_FILE": "nope.toml"}, "nope.toml"),
]


@pytest.mark.parametrize(("args", "env", "says"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_clear_error_and_a_non_zero_exit(
    workdir: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    result = _authhost(workdir, *args, env=env)
    output = result.stdout + result.stderr
    assert result.returncode not in (0, None), output
    assert result.returncode > 0, output  # an exit, not a signal
    assert "Traceback" not in output, output
    assert says in output, output
    last = result.stderr.strip().splitlines()[-1]
    assert says in last or says in result.stderr, output  # the error is the last word
    assert not (workdir / "missing.db").exists()
