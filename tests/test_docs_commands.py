"""Every ``authhost`` command the README and docs/ show exists, with the options they show.

A bank engineer copies commands from the documentation: a subcommand renamed or an option
dropped in the code, with the page left as it was, is a command that fails for the first
reader. The commands are read from the pages themselves (code blocks and inline code spans
starting ``authhost``) and looked up in the real command tree, so a page and the CLI cannot
drift apart unnoticed. Every command's ``--help`` runs too.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from authhost.cli.app import app
from simulator.cli import app as sim_app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
INLINE = re.compile(r"`((?:authhost|authhost-sim) [^`]+)`")
PROGRAMS = ("authhost ", "authhost-sim ")
# docs/benchmarks.md names the benchmark's phases after the host ("authhost auth sqlite");
# they are report labels, not commands
PHASE_LABELS = re.compile(r"^authhost auth (sqlite|redis)\b")


def shown_commands(page: Path) -> Iterator[tuple[int, str]]:
    """(line, command) for each ``authhost ...`` in the page's code blocks and code spans."""
    in_block = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            text = line.strip().removeprefix("$ ").strip()
            if text.startswith(PROGRAMS):
                yield number, text.split(" #", 1)[0]
        else:
            for found in INLINE.finditer(line):
                if not PHASE_LABELS.match(found.group(1)):
                    yield number, found.group(1)


def _alternatives(token: str) -> list[str]:
    """``ship|activate`` and ``import/export`` name several commands (or options) at once."""
    return [part for part in re.split(r"[|/]", token) if part]


def problems_in(command: str, trees: dict[str, object]) -> list[str]:
    """What in ``command`` its program's command tree does not have: subcommands, then
    options."""
    program, *tokens = command.split()
    nodes, path, at = [trees[program]], [program], 0
    while at < len(tokens) and all(hasattr(node, "commands") for node in nodes):
        token = tokens[at]
        if token.startswith("-") or token.isupper() or token in ("...", "[OPTIONS]"):
            break
        subs = [node.commands.get(name) for node in nodes for name in _alternatives(token)]  # type: ignore[attr-defined]
        if any(sub is None for sub in subs):
            return [f"{' '.join(path)} has no subcommand {token!r}"]
        nodes, at = subs, at + 1
        path.append(token)
    found: list[str] = []
    for node in nodes:
        if hasattr(node, "commands"):
            continue  # a group named on its own ("authhost cards"), or its --help
        options = {"--help"}
        for param in node.params:  # type: ignore[attr-defined]
            options.update(param.opts)
            options.update(param.secondary_opts)
        for token in tokens[at:]:
            if token == "--":
                break  # what follows is an argument ("-- -5000": a negative amount)
            token = token.strip("[](),.;:")
            if not token.startswith("--"):
                continue
            for option in _alternatives(token.split("=", 1)[0]):
                name = option if option.startswith("--") else f"--{option}"
                if name not in options:
                    found.append(f"{' '.join(path)} has no option {name}")
        found.extend(_wrong_choice(node, path, tokens[at:]))
        found.extend(_wrong_values(node, path, tokens[at:]))
    return found


def _wrong_values(node: object, path: list[str], tokens: list[str]) -> list[str]:
    """``--entry ecommrce``, ``--format parqet``: an option's value its own type refuses
    (a choice renamed, a number that is not one). Placeholders (``FILE``), shell
    expansions and quoted text are left alone."""
    by_name = {opt: param for param in node.params for opt in param.opts}  # type: ignore[attr-defined]
    context = node.make_context(path[-1], [], resilient_parsing=True)  # type: ignore[attr-defined]
    problems = []
    for token, value in zip(tokens, tokens[1:], strict=False):
        param = by_name.get(token.strip("[](),;"))
        value = value.strip("[](),;")
        if param is None or param.is_flag or param.count or not value:
            continue
        if value.startswith("-") or value.isupper() or any(c in value for c in "$<>{}\"'"):
            continue
        for each in _alternatives(value):
            try:
                param.process_value(context, (each,) if param.multiple else each)
            except Exception:  # noqa: BLE001 - the option's own refusal, reported
                problems.append(f"{' '.join(path)}: {token} does not take {each!r}")
    return problems


def _wrong_choice(node: object, path: list[str], tokens: list[str]) -> list[str]:
    """``authhost-sim send purchas``: a first argument that must be one of a list (send's
    kind) and is not. Placeholders (``KIND``) and options are left alone."""
    if not any(getattr(param, "name", "") == "kind" for param in node.params):  # type: ignore[attr-defined]
        return []
    if not tokens or tokens[0].startswith("-") or tokens[0].isupper():
        return []
    problems = []
    for kind in _alternatives(tokens[0]):
        try:
            node.make_context(path[-1], [kind])  # type: ignore[attr-defined]
        except Exception as error:  # noqa: BLE001 - the parser's own refusal, reported
            if getattr(getattr(error, "param", None), "name", "") == "kind":
                problems.append(f"{' '.join(path)} has no kind {kind!r}")
    return problems


def _tree() -> dict[str, object]:
    return {
        "authhost": typer.main.get_command(app),
        "authhost-sim": typer.main.get_command(sim_app),
    }


def test_the_pages_show_commands_to_check():
    shown = [command for page in PAGES for _, command in shown_commands(page)]
    assert len(shown) > 200  # the README and docs/ show hundreds: the reader found them


def test_every_command_the_docs_show_exists_with_its_options():
    tree = _tree()
    wrong = [
        f"{page.relative_to(ROOT)}:{line}: {problem}  ({command})"
        for page in PAGES
        for line, command in shown_commands(page)
        for problem in problems_in(command, tree)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("authhost cards shipp CARD", "has no subcommand 'shipp'"),
        ("authhost disputes list --stat open", "has no option --stat"),
        ("authhost cards ship|activat CARD", "has no subcommand 'ship|activat'"),
        ("authhost accounts fund acc-1 -- -5000", None),
        ("authhost disputes resolve ID --outcome won|lost|withdrawn", None),
        ("authhost-sim send purchase --cards c.json --amout 12.50", "has no option --amout"),
        ("authhost-sim send purchas --cards c.json", "has no kind 'purchas'"),
        ("authhost-sim send KIND [--cards FILE]", None),
        ("authhost-sim send purchase --entry ecommrce", "--entry does not take 'ecommrce'"),
        ("authhost journal show CARD --limit ten", "--limit does not take 'ten'"),
        ("authhost-sim send purchase --entry chip|stripe --amount 12.50", None),
    ],
)
def test_a_misspelt_command_or_option_is_caught(command, expected, tmp_path):
    """The check can fail: a page with a misspelt subcommand or option is reported with its
    file and line."""
    page = tmp_path / "page.md"
    page.write_text(f"Run this:\n\n```\n{command}\n```\n", encoding="utf-8")
    [(line, shown)] = list(shown_commands(page))
    problems = problems_in(shown, _tree())
    if expected is None:
        assert problems == []
    else:
        assert line == 4 and len(problems) == 1 and expected in problems[0], problems


def _named_paths(command: str, trees: dict[str, object]) -> set[tuple[str, ...]]:
    """The command paths a shown command names (``cards ship|activate CARD``: both)."""
    program, *tokens = command.split()
    named: list[tuple[object, tuple[str, ...]]] = [(trees[program], (program,))]
    for token in tokens:
        if token.startswith("-") or token.isupper():
            break
        deeper = [
            (node.commands[name], (*path, name))  # type: ignore[attr-defined]
            for node, path in named
            for name in _alternatives(token)
            if name in getattr(node, "commands", {})
        ]
        if not deeper:
            break
        named = deeper
    return {path for _, path in named}


def test_every_command_is_shown_in_the_docs():
    """The reverse of the check above: a command the CLI has and no page shows is one a
    reader never finds (``cards reissue`` and ``products show`` were named only in prose)."""
    tree = _tree()
    shown = {
        path for page in PAGES for _, command in shown_commands(page)
        for path in _named_paths(command, tree)
    }  # fmt: skip
    unshown = [
        " ".join((program, *path))
        for program in tree
        for path in _leaf_commands(tree[program])
        if path
        and not hasattr(_node_at(tree[program], path), "commands")
        and (program, *path) not in shown
    ]
    assert not unshown, unshown


def _node_at(node: object, path: tuple[str, ...]) -> object:
    for name in path:
        node = node.commands[name]  # type: ignore[attr-defined]
    return node


def _leaf_commands(node: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    commands = getattr(node, "commands", None)
    if commands is None:
        yield path
        return
    yield path  # a group's own --help
    for name, sub in sorted(commands.items()):
        yield from _leaf_commands(sub, (*path, name))


def test_every_command_has_a_help_that_runs():
    runner = CliRunner()
    failed = []
    for program, typer_app in (("authhost", app), ("authhost-sim", sim_app)):
        for path in _leaf_commands(_tree()[program]):
            result = runner.invoke(typer_app, [*path, "--help"])
            if result.exit_code != 0 or "Usage" not in result.output:
                failed.append(f"{program} {' '.join(path)} --help: exit {result.exit_code}")
    assert not failed, "\n".join(failed)


def _config_keys() -> dict[str, set[str]]:
    """Section: keys, of the server's configuration and of a training file."""
    from authhost.config import Config, ListenerConfig
    from authhost.models import training

    server = Config()
    keys = {
        section.name: {
            f.name
            for f in dataclasses.fields(
                ListenerConfig  # [[listeners]]: a list of them
                if isinstance(getattr(server, section.name), list)
                else getattr(server, section.name)
            )
        }
        for section in dataclasses.fields(Config)
    }
    for name, kind in {
        "split": training.SplitConfig,
        "terminal_risk": training.RiskConfig,
        "operating": training.OperatingConfig,
        "logistic": training.LogisticConfig,
        "hgb": training.HgbConfig,
    }.items():
        keys.setdefault(name, set()).update(f.name for f in dataclasses.fields(kind))
    return keys


CONFIG_KEY = re.compile(r"`\[(\w+)\][ .](\w+)")


def test_every_configuration_key_the_docs_name_exists():
    """``[auth] hold_days`` in a page is a key the server (or a training file) reads: one
    renamed in the code would be silently ignored in the reader's file."""
    keys = _config_keys()
    wrong = []
    named = 0
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for section, key in CONFIG_KEY.findall(line):
                named += 1
                if key not in keys.get(section, set()):
                    wrong.append(f"{page.relative_to(ROOT)}:{number}: [{section}] {key}")
    assert named > 20
    assert not wrong, "\n".join(wrong)


ENV_VARIABLE = re.compile(r"\bAUTHHOST_[A-Z0-9_]*[A-Z0-9]\b")


def test_every_environment_variable_the_docs_name_is_read():
    """``AUTHHOST_SERVER_DEADLINE_MS`` in a page is either an ``AUTHHOST_<SECTION>_<KEY>``
    override of a real key (``config._env_overrides`` reads every such name) or a variable the
    code reads by name (``AUTHHOST_CONFIG``, ``AUTHHOST_MASTER_KEY``): a renamed key would
    leave the reader's variable silently ignored."""
    from authhost.config import ENV_PREFIX, SECTIONS

    overrides = {
        f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}"
        for section, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    }
    code = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "src").rglob("*.py"))
    wrong, named = [], set()
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for name in ENV_VARIABLE.findall(line):
                named.add(name)
                if name not in overrides and f'"{name}"' not in code:
                    wrong.append(f"{page.relative_to(ROOT)}:{number}: {name}")
    assert {"AUTHHOST_CONFIG", "AUTHHOST_MASTER_KEY", "AUTHHOST_ADMIN_TOKENS"} <= named
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("variable", "value", "section", "key", "expected"),
    [
        ("AUTHHOST_SERVER_DEADLINE_MS", "123", "server", "deadline_ms", 123),
        ("AUTHHOST_ADMIN_TOKENS", "abc:operator", "admin", "tokens", "abc:operator"),
    ],
)
def test_a_documented_override_changes_its_key(
    variable, value, section, key, expected, tmp_path, monkeypatch
):
    from authhost.config import load_config

    monkeypatch.chdir(tmp_path)  # no authhost.toml here
    before = getattr(getattr(load_config(env={}), section), key)
    after = getattr(getattr(load_config(env={variable: value}), section), key)
    assert before != expected and after == expected


def test_the_demo_banner_command_runs_as_printed():
    """``serve --demo`` logs a simulator command for the demo cards: it printed
    ``authhost-sim send --cards demo-cards.json``, which the simulator refuses (no kind), and
    pointed at port 8583 whatever ``--port`` the server had."""
    from authhost.runtime import demo_send_command

    send = _tree()["authhost-sim"].commands["send"]  # type: ignore[attr-defined]
    for host, port, expected_host in (
        ("127.0.0.1", 8583, "127.0.0.1"),
        ("0.0.0.0", 7401, "127.0.0.1"),
        ("10.1.2.3", 7401, "10.1.2.3"),
    ):
        program, command, *args = demo_send_command("demo-cards.json", port, host).split()
        assert (program, command) == ("authhost-sim", "send")
        context = send.make_context(command, args)  # refuses a missing kind or a bad option
        assert context.params["kind"] == "purchase"
        assert (context.params["host"], context.params["port"]) == (expected_host, port)


def test_rules_reload_without_a_rules_file_says_none_is_loaded(tmp_path, monkeypatch):
    """With no ``[rules] file`` the server runs without rules and SIGHUP loads none: the
    command said "the server log shows the new version", and the log showed none."""
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)  # no authhost.toml here
    monkeypatch.delenv("AUTHHOST_RULES_FILE", raising=False)
    monkeypatch.delenv("AUTHHOST_CONFIG", raising=False)
    stand_in = subprocess.Popen(  # a process that takes the SIGHUP as the server does
        [sys.executable, "-c", "import signal,time; signal.signal(signal.SIGHUP, signal.SIG_IGN);"
         " print(1, flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert stand_in.stdout is not None and stand_in.stdout.readline()  # handler set
        (tmp_path / "authhost.pid").write_text(f"{stand_in.pid}\n")
        result = CliRunner().invoke(app, ["rules", "reload"])
    finally:
        stand_in.kill()
        stand_in.wait()
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "no rules file is configured" in text and "shows the new version" not in text


def test_a_missing_training_config_says_the_way_out(tmp_path):
    """docs/models.md's workflow named ``--config train.toml``, a file the reader does not
    have: the error must say that every key has a default (leave out --config)."""
    from authhost.models.training import TrainingError, load_train_config

    with pytest.raises(TrainingError, match="leave out --config"):
        load_train_config(tmp_path / "train.toml")
    [option] = [p for p in _tree()["authhost"].commands["train"].params if "--config" in p.opts]  # type: ignore[attr-defined]
    assert "every key has a default" in (option.help or "")  # train --help says so too
    workflow = (ROOT / "docs" / "models.md").read_text(encoding="utf-8").split("## Features")[0]
    assert "authhost train --data traffic.parquet --out models" in workflow


async def test_models_reload_logs_which_model_now_serves(caplog):
    """After ``models activate`` and a SIGHUP the log said only "reload complete"."""
    import logging
    from types import SimpleNamespace

    from authhost.runtime import reload_models

    class Scorer:
        champion = challenger = None

        def reload(self):
            self.champion = SimpleNamespace(
                name="hgb-20260101T120000Z", kind="hgb", feature_set="authhost-features-1"
            )

    caplog.set_level(logging.INFO, logger="authhost.runtime")
    await reload_models(Scorer(), "models")
    assert "models reloaded: model hgb-20260101T120000Z" in caplog.text


CURL = re.compile(r"curl (?P<args>.*?) \$API(?P<path>\S+)$")


async def test_the_admin_api_curl_example_runs_in_order(tmp_path):
    """docs/admin.md's curl example, line by line against a demo installation's admin API:
    it activated a card just created (409: a created card is shipped first), with the
    idempotency key of the CLI example above it (409 when both were followed)."""
    import shlex

    from test_admin_support import call, open_service, running_admin

    from authhost.admin.demo import ensure_demo
    from authhost.admin.requests import IssueCard

    page = (ROOT / "docs" / "admin.md").read_text(encoding="utf-8")
    block = page.split("TOKEN=...; API=http://127.0.0.1:8080\n", 1)[1].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    assert len(lines) >= 3
    async with open_service(tmp_path) as service, running_admin(service) as port:
        await ensure_demo(service)
        await service.issue_card(
            IssueCard(product_id="demo-visa-debit", account_id="demo-acc-2"),
            idempotency_key="order-42",
        )  # the CLI example's card, made first as a reader following the page would
        card_id = ""
        for line in lines:
            found = CURL.search(line.split("  #", 1)[0].strip())
            assert found, line
            words = shlex.split(found["args"])
            method, headers, payload = "GET", {}, None
            for option, value in zip(words, [*words[1:], ""], strict=True):
                if option == "-X":
                    method = value
                elif option == "-H" and not value.startswith(("Authorization", "Content-Type")):
                    name, _, text = value.partition(": ")
                    headers[name] = text
                elif option == "-d":
                    method, payload = "POST", json.loads(value)
            path = found["path"].replace("crd_...", card_id)
            reply = await call(port, method, path, payload=payload, headers=headers)
            assert reply.status < 400, (line, reply.status, reply.json)
            card_id = reply.json.get("card_id", card_id) if payload else card_id
        assert card_id and (await service.get_card(card_id))["state"] == "active"


@pytest.mark.parametrize(("cert", "scheme"), [("", "http://"), ("admin.crt", "https://")])
def test_the_demo_token_line_names_the_admin_api_scheme(cert, scheme, tmp_path, monkeypatch):
    """With ``[admin] tls_cert_file`` the API speaks HTTPS only: the demo banner's curl line
    said ``http://``, which gets no answer there."""
    from authhost.config import AdminConfig, Config
    from authhost.runtime import admin_tokens

    monkeypatch.chdir(tmp_path)
    config = Config(admin=AdminConfig(port=7403, tls_cert_file=cert))
    _, [line] = admin_tokens(config, demo=True)
    assert f"{scheme}127.0.0.1:7403/v1/cards" in line


@pytest.mark.parametrize(
    ("host", "url"),
    [("::", "http://[::1]:7403/"), ("::1", "http://[::1]:7403/"),
     ("0.0.0.0", "http://127.0.0.1:7403/"), ("10.1.2.3", "http://10.1.2.3:7403/")],
)  # fmt: skip
def test_the_demo_token_line_gives_a_url_that_reaches_any_listening_address(
    host, url, tmp_path, monkeypatch
):
    """``[admin] host = "::"`` made the curl line ``http://:::7403/v1/cards``: no URL."""
    from authhost.config import AdminConfig, Config
    from authhost.runtime import admin_tokens

    monkeypatch.chdir(tmp_path)
    _, [line] = admin_tokens(Config(admin=AdminConfig(host=host, port=7403)), demo=True)
    assert f"{url}v1/cards" in line, line


async def test_pin_generate_without_the_mailer_key_names_it_and_leaves_no_file(tmp_path):
    """A new installation meets its missing keys one by one: ``pin generate`` said only
    "key 'pin-mailer' is not in the key store", and left an empty mailer file behind, so
    the same command, once the key was generated, was refused ("exists; name a new file")."""
    from test_admin_support import open_store_for

    from authhost.admin.demo import ensure_demo
    from authhost.admin.errors import Unavailable
    from authhost.admin.service import CardService
    from authhost.config import SecurityConfig
    from authhost.security.module import SecurityModule

    config = SecurityConfig(
        key_store=str(tmp_path / "keys.json"), demo=True, pin_mailer_key="mailer-printer"
    )
    out = tmp_path / "mailers.jsonl"
    async with open_store_for("sqlite", tmp_path) as store:
        service = CardService(store, SecurityModule.open(config, env={}), "test")
        cards = await ensure_demo(service)
        created = [card["card_id"] for card in cards if card["state"] == "created"]
        with pytest.raises(Unavailable) as refused:
            await service.generate_pins(created, out)
        assert "authhost keys generate mailer-printer --type zpk" in refused.value.message
        assert not out.exists()


async def test_the_demo_pin_block_recipe_sets_a_pin(tmp_path, monkeypatch):
    """docs/admin.md (PINs) shows how to make a PIN block to try ``pin set`` on a demo: the
    page only said "--pin-block HEX", and a wrong block was refused with "PIN block: format
    not accepted", without what a block must be."""
    import subprocess
    import sys

    from test_admin_support import open_service

    from authhost.admin.demo import demo_export, ensure_demo
    from authhost.admin.errors import InvalidRequest
    from authhost.admin.requests import PinChange

    page = (ROOT / "docs" / "admin.md").read_text(encoding="utf-8")
    recipe = page.split("BLOCK=$(python3 -c '", 1)[1].split("')\n", 1)[0]
    monkeypatch.chdir(tmp_path)
    async with open_service(tmp_path) as service:
        await ensure_demo(service)
        export = await demo_export(service)
        (tmp_path / "demo-cards.json").write_text(json.dumps(export), encoding="utf-8")
        block = subprocess.run(
            [sys.executable, "-c", recipe], capture_output=True, text=True, check=True
        ).stdout.strip()
        card_id = (await service.list_cards())[0]["card_id"]
        assert (await service.get_card(card_id))["pan"][-4:] == export["cards"][0]["pan"][-4:]
        await service.set_pin(card_id, PinChange(pin_block=block))
        with pytest.raises(InvalidRequest) as refused:
            await service.set_pin(card_id, PinChange(pin_block="0011223344556677"))
        assert "encrypted under the zone PIN key (zpk)" in refused.value.message


def test_every_config_option_help_names_the_default_in_its_order():
    """``load_config`` reads ``$AUTHHOST_CONFIG`` first, then ``authhost.toml`` if present:
    88 commands' --help said "default: authhost.toml" (the variable left out), ``serve``'s
    named the file first, and ``rules list``'s said only "authhost.toml to read"."""
    wrong, root = [], _tree()["authhost"]
    for path in _leaf_commands(root):
        node = root
        for name in path:
            node = node.commands[name]  # type: ignore[attr-defined]
        for param in getattr(node, "params", []):
            if "--config" not in param.opts or path == ("train",):  # train's: hyperparameters
                continue
            if "default: $AUTHHOST_CONFIG, else authhost.toml" not in (param.help or ""):
                wrong.append(f"authhost {' '.join(path)} --config: {param.help}")
    assert not wrong, "\n".join(wrong)


def test_an_exported_admin_token_is_exported_before_the_server_starts():
    """docs/admin.md's quick look exported AUTHHOST_ADMIN_TOKENS and went straight to curl,
    beside a ``serve --demo`` already running: that server never read the token (401). A
    block that exports a token starts the server after it, before using it."""
    blocks = (ROOT / "docs" / "admin.md").read_text(encoding="utf-8").split("```")[1::2]
    exporting = [block for block in blocks if "export AUTHHOST_ADMIN_TOKENS" in block]
    assert exporting
    for block in exporting:
        lines = block.splitlines()
        exported = next(i for i, line in enumerate(lines) if "AUTHHOST_ADMIN_TOKENS=" in line)
        served = [i for i, line in enumerate(lines) if line.startswith("authhost serve")]
        used = [i for i, line in enumerate(lines) if line.startswith("curl")]
        assert served and used and exported < served[0] < used[0], block


def test_no_master_key_outside_the_installation_says_the_key_store_is_missing_too(tmp_path):
    """``authhost cards list --store /srv/x/authhost.db`` run from another directory of a
    demo installation said only "no master key ... demo mode (--demo) generates a demo key
    instead" (cards list has no --demo): the key store, relative to the working directory,
    was not there, and neither was the demo master key beside it."""
    from authhost.security.errors import SecurityError
    from authhost.security.keystore import resolve_master_key

    missing = tmp_path / "authhost-keys.json"
    with pytest.raises(SecurityError) as refused:
        resolve_master_key("AUTHHOST_MASTER_KEY", "", missing, {}, demo=False)
    assert f"nor is there a key store at {missing}" in str(refused.value)
    assert "--config" in str(refused.value)
    missing.write_text("{}")  # a key store, and still no master key: the first words only
    with pytest.raises(SecurityError) as refused:
        resolve_master_key("AUTHHOST_MASTER_KEY", "", missing, {}, demo=False)
    assert str(refused.value).endswith("demo mode (--demo) generates a demo key instead")
