"""Admin API token configuration: files (TOML, JSON, hashed or clear), inline, and mistakes."""

from __future__ import annotations

import hashlib
import json

import pytest

from authhost.admin.tokens import AuthFailure, Role, TokenConfigError, TokenTable
from authhost.config import AdminConfig


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_toml_file_with_hashed_and_clear_tokens(tmp_path):
    path = tmp_path / "tokens.toml"
    path.write_text(
        f'[[token]]\nname = "alice"\nrole = "operator"\nsha256 = "{_sha("s3cret-a-0123456789")}"\n\n'
        '[[token]]\nname = "audit"\nrole = "Auditor"\ntoken = "s3cret-b-0123456789"\n'
    )
    path.chmod(0o600)  # clear tokens: the owner's alone
    table = TokenTable.from_config(AdminConfig(tokens_file=str(path)))
    alice = table.authenticate("Bearer s3cret-a-0123456789")
    assert (alice.name, alice.role, alice.can_write) == ("alice", Role.OPERATOR, True)
    audit = table.authenticate("bearer   s3cret-b-0123456789 ")
    assert (audit.name, audit.role, audit.can_write) == ("audit", Role.AUDITOR, False)


def test_json_mapping_and_inline_tokens_together(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tok-1-0123456789ab": "operator"}))
    path.chmod(0o600)
    table = TokenTable.from_config(
        AdminConfig(tokens_file=str(path), tokens="tok-2-0123456789ab:auditor")
    )
    assert table.authenticate("Bearer tok-1-0123456789ab").role is Role.OPERATOR
    inline = table.authenticate("Bearer tok-2-0123456789ab")
    assert inline.role is Role.AUDITOR
    assert inline.name == f"auditor:{_sha('tok-2-0123456789ab')[:8]}"  # never the token itself


@pytest.mark.parametrize(
    "header, message",
    [
        (None, "missing Authorization"),
        ("", "missing Authorization"),
        ("Basic dG9rLTE=", "Bearer"),
        ("Bearer", "Bearer"),
        ("Bearer tok-x", "invalid token"),
    ],
)
def test_authentication_failures_are_401_with_a_reason(header, message):
    table = TokenTable.of(**{"tok-1-0123456789ab": "operator"})
    with pytest.raises(AuthFailure) as failure:
        table.authenticate(header)
    assert failure.value.status == 401 and message in failure.value.message
    assert "tok-1-0123456789ab" not in failure.value.message


def test_no_tokens_configured_refuses_everything():
    with pytest.raises(AuthFailure, match="no admin API tokens"):
        TokenTable.from_config(AdminConfig()).authenticate("Bearer anything")


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        ('[[token]]\nrole = "root"\ntoken = "x"\n', ".toml", "operator or auditor"),
        ('[[token]]\nrole = "operator"\n', ".toml", "needs token or sha256"),
        ('[[token]]\nrole = "operator"\nsha256 = "abc"\n', ".toml", "64 hex"),
        ("{not json", ".json", "not valid"),
        ("[1, 2]", ".json", "expected a table"),
    ],
    ids=["unknown role", "no secret", "short digest", "bad JSON", "JSON list"],
)
def test_bad_token_files_are_reported_without_secrets(tmp_path, content, suffix, message):
    path = tmp_path / f"tokens{suffix}"
    path.write_text(content)
    with pytest.raises(TokenConfigError, match=message):
        TokenTable.from_config(AdminConfig(tokens_file=str(path)))


def test_missing_file_and_bad_inline_entries(tmp_path):
    with pytest.raises(TokenConfigError, match="cannot read"):
        TokenTable.from_config(AdminConfig(tokens_file=str(tmp_path / "none.toml")))
    with pytest.raises(TokenConfigError, match="expected token:role"):
        TokenTable.from_config(AdminConfig(tokens="just-a-token"))
    with pytest.raises(TokenConfigError, match="operator or auditor"):
        TokenTable.from_config(AdminConfig(tokens="tok-0123456789abcdef:admin"))


@pytest.mark.parametrize(
    "content, suffix",
    [
        ('[[token]]\nrole = "operator"\ntoken = "clear-secret-0001-x"\n', ".toml"),
        ('{"clear-secret-0001-x": "operator"}', ".json"),
        (
            f'[[token]]\nrole = "auditor"\nsha256 = "{_sha("x")}"\n\n'
            '[[token]]\nrole = "operator"\ntoken = "clear-secret-0001-x"\n',
            ".toml",
        ),
    ],
    ids=["toml", "json", "one clear among digests"],
)
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_tokens_file_of_clear_tokens_others_can_read_is_refused(tmp_path, content, suffix, mode):
    """Clear tokens in a file group or others can read have leaked already: refused at start,
    as the master key file is, with the fix in the message and never the token."""
    path = tmp_path / f"tokens{suffix}"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(TokenConfigError, match="chmod 600") as raised:
        TokenTable.from_config(AdminConfig(tokens_file=str(path)))
    assert "clear-secret-0001-x" not in str(raised.value)
    path.chmod(0o600)
    table = TokenTable.from_config(AdminConfig(tokens_file=str(path)))
    assert table.authenticate("Bearer clear-secret-0001-x").role is Role.OPERATOR


def test_a_tokens_file_of_digests_only_may_be_read_by_anyone(tmp_path):
    path = tmp_path / "tokens.toml"
    path.write_text(f'[[token]]\nname = "alice"\nrole = "operator"\nsha256 = "{_sha("s")}"\n')
    path.chmod(0o644)
    assert TokenTable.from_config(AdminConfig(tokens_file=str(path))).authenticate("Bearer s")


@pytest.mark.parametrize(
    "config",
    [
        lambda path: AdminConfig(tokens="op-2026:operator"),
        lambda path: AdminConfig(tokens_file=_written(path / "t.json", '{"op-2026": "auditor"}')),
        lambda path: AdminConfig(
            tokens_file=_written(path / "t.toml", '[[token]]\nrole = "operator"\ntoken = "op"\n')
        ),
    ],
    ids=["inline", "json", "toml"],
)
def test_a_short_clear_token_is_refused_at_start(tmp_path, config):
    """The API answers a wrong token at once and without limit (60 guesses took 0.7 s over
    TLS): a short token was guessed in seconds. Refused, the token never named."""
    with pytest.raises(TokenConfigError, match="at least 16 characters") as raised:
        TokenTable.from_config(config(tmp_path))
    assert "op-2026" not in str(raised.value) and '"op"' not in str(raised.value)


def _written(path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)
