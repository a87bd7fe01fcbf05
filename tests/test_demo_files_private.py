"""The demo's secret files (the admin token; the test PANs, PINs and keys) are owner-only even
when a file of that name was there before with a wider mode: os.open's 0600 applies only to a
file it creates, so a demo-admin-token or demo-cards.json left at 0644 (copied, or made by
hand) kept 0644 with the new secret written into it."""

from __future__ import annotations

from pathlib import Path

import pytest

from authhost.config import Config
from authhost.runtime import DEMO_TOKEN, admin_tokens


def test_the_demo_admin_token_file_is_made_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    old = tmp_path / DEMO_TOKEN
    old.write_text("an old token\n")
    old.chmod(0o644)
    tokens, lines = admin_tokens(Config(), demo=True)
    assert old.stat().st_mode & 0o777 == 0o600
    assert len(tokens.by_digest) == 1 and "an old token" not in old.read_text()
    assert str(old.resolve()) in lines[0]


def test_the_demo_export_is_made_owner_only(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from authhost.cli.app import app

    out = tmp_path / "demo-cards.json"
    out.write_text("{}\n")
    out.chmod(0o644)
    config = tmp_path / "authhost.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "a.db"}"\n\n'
        f'[security]\nkey_store = "{tmp_path / "k.json"}"\n'
    )
    result = CliRunner().invoke(app, ["demo", "--export", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert '"test_only": true' in out.read_text()
