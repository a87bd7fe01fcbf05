"""Hot reload: the whole set swaps atomically, a bad file leaves the old rules in force, every
reload is logged with its version, counters survive reloads and reach Prometheus."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from authhost.cards.velocity import Velocity
from authhost.config import RulesConfig
from authhost.models.context import TxContext
from authhost.rules.loader import RuleSource
from authhost.rules.metrics import RuleMetricsCollector
from authhost.rules.rulefile import RuleLoadError

CTX = TxContext(
    ts=1_764_000_000.0,
    amount_minor=10_000,
    currency="978",
    mcc="5411",
    country="276",
    channel="pos",
    entry_mode="05",
    terminal="T-1",
    merchant="M-1",
    acquirer="123456",
    tx_type="00",
    card_id="card-1",
    bin="400000",
    product="classic",
    home_country="276",
    card_age_days=3.0,
    available=250_000,
    pin_present=True,
    velocity=Velocity(),
)
RULES_PER_VERSION = 40


def version_file(n: int) -> str:
    """Version n: 40 matching rules whose reasons all say 'v<n>'; odd versions decline."""
    action = 'action = "decline"' if n % 2 else 'action = "review"'
    return "".join(
        f'[[rule]]\nname = "r{i}"\nexpression = "amount > {i % 7}"\n{action}\nreason = "v{n}"\n\n'
        for i in range(RULES_PER_VERSION)
    )


def write(path: Path, text: str) -> None:
    """Write so that the size or mtime changes even within one clock tick."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_concurrent_evaluations_each_see_exactly_one_full_version(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    write(path, version_file(0))
    source = RuleSource(path)
    stop = threading.Event()
    seen: list[set[str]] = []
    problems: list[str] = []

    def evaluate() -> None:
        while not stop.is_set():
            out = source.evaluate(CTX, None)
            versions = set(out.reason_codes)
            if len(versions) != 1 or len(out.matched) != RULES_PER_VERSION:
                problems.append(f"{len(out.matched)} matches, reasons {versions}")
                return
            (version,) = versions
            declined = out.decline_code is not None
            if declined != (int(version[1:]) % 2 == 1) or declined == out.review:
                problems.append(f"{version} with decline={declined} review={out.review}")
                return
            seen.append(versions)

    workers = [threading.Thread(target=evaluate) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for n in range(1, 13):
            write(path, version_file(n))
            result = source.reload()
            assert result.ok and result.changed
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert problems == []
    assert len({v for s in seen for v in s}) > 1  # evaluations really ran across reloads
    assert source.evaluate(CTX, None).reason_codes[0] == "v12"


def test_bad_file_is_refused_and_old_rules_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.toml"
    write(path, version_file(1))
    caplog.set_level(logging.INFO, logger="authhost.rules")
    source = RuleSource(path)
    good_version = source.version
    assert f"version {good_version}" in caplog.text
    write(path, version_file(2) + '[[rule]]\nname = "bad"\nexpression = "amont > 1"\n')
    result = source.reload()
    assert not result.ok and result.version == good_version
    assert "amont" in result.message and "rules.toml:" in result.message
    assert source.version == good_version
    assert source.evaluate(CTX, None).decline_code == "59"  # version 1 still in force
    assert "reload refused, keeping version " + good_version in caplog.text
    assert source.reload_if_changed() is None  # the same bad file is not retried on each poll
    write(path, version_file(2))
    result = source.reload_if_changed()
    assert result is not None and result.ok and result.version != good_version
    assert f"(was {good_version})" in caplog.text
    assert source.evaluate(CTX, None).review is True
    assert (source.reloads_ok, source.reloads_failed) == (1, 1)


def _blocking_merchants(tmp_path: Path, blocked: str) -> tuple[RuleSource, Path]:
    """A rule declining the merchants of the list file ``merchant_block.txt`` (holding
    ``blocked``), and the lists directory."""
    path = tmp_path / "rules.toml"
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "merchant_block.txt").write_text(blocked)
    write(
        path,
        '[[rule]]\nname = "b"\nexpression = "merchant in list(\'merchant_block\')"\n'
        'action = "decline"\n',
    )
    return RuleSource.from_config(RulesConfig(file=str(path), lists_dir=str(lists))), lists


def test_reload_if_changed_only_when_something_changed(tmp_path: Path) -> None:
    source, lists = _blocking_merchants(tmp_path, "M-9\n")
    assert source.reload_if_changed() is None
    assert source.evaluate(CTX, None).decline_code is None
    (lists / "merchant_block.txt").write_text("# now blocked\nM-9\nM-1\n")
    result = source.reload_if_changed()
    assert result is not None and result.ok and not result.changed  # same rules, new lists
    assert source.evaluate(CTX, None).decline_code == "59"
    # the store's lists win over file lists of the same name
    store_lists = {"merchant_block": frozenset()}
    assert source.evaluate(CTX, None, store_lists).decline_code is None
    assert source.evaluate(CTX, None, store_lists).decline_code is None  # cached merge
    store_lists = {"other": frozenset({"x"})}  # the store's lists were refreshed
    assert source.evaluate(CTX, None, store_lists).decline_code == "59"
    (lists / "merchant_block.txt").write_text("M-9\n")  # the file list changes under the cache
    assert source.reload().ok
    assert source.evaluate(CTX, None, store_lists).decline_code is None


def test_bad_file_at_start_up_raises(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    write(path, '[[rule]]\nname = "x"\n')
    with pytest.raises(RuleLoadError):
        RuleSource(path)


def test_no_file_means_no_rules() -> None:
    source = RuleSource(None)
    assert len(source.rules) == 0 and source.evaluate(CTX, 999).decline_code is None


def test_counters_survive_reloads_and_reach_prometheus(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    write(path, version_file(1))
    source = RuleSource(path)
    registry = CollectorRegistry()
    registry.register(RuleMetricsCollector(source))
    for _ in range(3):
        source.evaluate(CTX, None)
    write(path, version_file(3))
    assert source.reload().ok
    source.evaluate(CTX, None)
    stats = source.rule_stats()
    assert (stats["r0"].evaluated, stats["r0"].matched, stats["r0"].declined) == (4, 4, 4)
    assert (stats["r1"].evaluated, stats["r1"].declined) == (4, 0)
    text = generate_latest(registry).decode()
    assert 'authhost_rule_evaluations_total{rule="r0"} 4.0' in text
    assert 'authhost_rule_declines_total{rule="r0"} 4.0' in text
    assert f'authhost_rules_active{{version="{source.version}"}} 40.0' in text
    assert 'authhost_rules_reloads_total{result="ok"} 1.0' in text


def test_a_file_that_breaks_the_reader_is_refused_and_watching_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rule:\n  - name: a\n    action: review\n    expression: amount > 1\n")
    source = RuleSource.from_config(RulesConfig(file=str(path)))
    version = source.version
    path.write_text("1: oops\nrule: []\n")
    result = source.reload_if_changed()
    assert result is not None and not result.ok and "key(s): 1" in result.message
    assert source.version == version and source.evaluate(CTX, None).review is True
    path.write_text("rule:\n  - name: b\n    action: decline\n    expression: amount > 1\n")
    result = source.reload_if_changed()  # the next good file is read
    assert result is not None and result.ok and source.evaluate(CTX, None).decline_code == "59"


def test_a_reload_with_a_test_that_can_never_match_keeps_the_old_rules(tmp_path: Path) -> None:
    """A typo that would load and silently match nothing (``channel == 'web'``, ``hour == 24``)
    is refused on reload like a syntax error: the rules in force stay."""
    path = tmp_path / "rules.toml"
    write(path, version_file(1))
    source = RuleSource(path)
    good_version = source.version
    for expression, reason in (
        ("channel == 'web'", "can never be true: channel is one of"),
        ("hour == 24", "hour == 24 can never be true"),
        ("amount / 0 > 1", "division by zero"),
    ):
        write(path, version_file(2) + f'[[rule]]\nname = "typo"\nexpression = "{expression}"\n'
              'action = "decline"\n')  # fmt: skip
        result = source.reload()
        assert not result.ok and reason in result.message and "rules.toml:" in result.message
        assert source.version == good_version
        assert source.evaluate(CTX, None).decline_code == "59"  # version 1 still in force


def test_a_file_emptied_while_rules_are_in_force_is_refused_on_reload(tmp_path: Path) -> None:
    """A rules file caught half-written (truncated, or only its comments so far) holds no
    rule: taken, it ran every request without fraud rules until the next reload. It is
    refused while rules are in force, taken once it holds them again, and an empty file is
    still fine at start-up and once rules are turned off with ``enabled = false``."""
    path = tmp_path / "rules.toml"
    write(path, version_file(1))
    source = RuleSource(path)
    version = source.version
    for emptied in ("", "# fraud rules, v2\n"):
        write(path, emptied)
        result = source.reload_if_changed()
        assert result is not None and not result.ok, result
        assert "holds no rules while 40 are in force" in result.message
        assert "rules.toml" in result.message
        assert source.version == version
        assert source.evaluate(CTX, None).decline_code == "59"  # version 1 still in force
    write(path, version_file(3))
    assert source.reload_if_changed().ok and source.evaluate(CTX, None).decline_code == "59"
    write(path, '[[rule]]\nname = "off"\nexpression = "amount > 0"\naction = "decline"\n'
                "enabled = false\n")  # fmt: skip
    assert source.reload().ok and source.evaluate(CTX, None).decline_code is None
    write(path, "")  # no rule in force now: nothing to lose
    assert source.reload().ok
    assert RuleSource(path).rules.rules == ()  # and at start-up


@pytest.mark.parametrize(
    ("make_bad", "said"),
    [
        (lambda d: (d / "bad name!.txt").write_text("M-1\n"), "bad list name"),
        (lambda d: (d / "merchant_block.csv").write_text("M-2\n"), "list 'merchant_block' is also"),
        (lambda d: (d / "binary.txt").write_bytes(b"\xff\xfe\x00M"), "binary.txt"),
    ],
    ids=["bad name", "same list twice", "not UTF-8"],
)
def test_a_bad_list_file_is_refused_with_its_name_and_the_old_lists_stay(
    tmp_path: Path, make_bad, said
) -> None:
    """A list file an analyst drops into the lists directory that cannot be read is refused
    naming the file and why; the rules and lists in force stay, and the list works again once
    the file is fixed."""
    source, lists = _blocking_merchants(tmp_path, "M-1\n")
    version = source.version
    make_bad(lists)
    result = source.reload()
    assert not result.ok and said in result.message, result.message
    assert str(lists) in result.message
    assert source.version == version
    assert source.evaluate(CTX, None).decline_code == "59"  # M-1 still blocked
    for bad in lists.iterdir():
        if bad.name != "merchant_block.txt":
            bad.unlink()
    assert source.reload().ok


def test_a_lists_directory_that_is_gone_is_refused_on_reload(tmp_path: Path) -> None:
    source, lists = _blocking_merchants(tmp_path, "M-9\n")
    (lists / "merchant_block.txt").unlink()
    lists.rmdir()
    result = source.reload()
    assert not result.ok and "lists directory not found" in result.message


class _NoStoreLists:
    async def list_names(self) -> list[str]:
        return []

    async def get_list(self, name: str) -> frozenset[str]:
        return frozenset()


def test_a_refused_reload_on_sighup_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The source logged the refusal with every error and the version kept, and the SIGHUP
    handler logged it again: each error line twice in the server's log."""
    import trio

    from authhost.runtime import RulesWithStoreLists, reload_rules

    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nname = "a"\nexpression = "amount > 1"\naction = "review"\n')
    rules = RulesWithStoreLists(RuleSource(path), _NoStoreLists())  # type: ignore[arg-type]
    path.write_text('[[rule]]\nname = "a"\nexpression = "amont > 1"\naction = "review"\n')
    with caplog.at_level("ERROR"):
        trio.run(reload_rules, rules)
    refused = [r for r in caplog.records if "amont" in r.getMessage()]
    assert len(refused) == 1 and "keeping version" in refused[0].getMessage()
    assert rules.source.reloads_failed == 1


async def test_a_new_rule_set_in_force_is_audited(tmp_path: Path) -> None:
    """A SIGHUP (or the file watcher) put a new rule set in force, which decides every
    authorisation, with a log line only: no audit entry (PCI DSS 10.2). A reload of the same
    file, or a refused one, changes nothing and writes none."""
    import json

    from test_admin_support import open_service

    from authhost.runtime import RulesWithStoreLists, reload_rules

    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nname = "a"\nexpression = "amount > 1"\naction = "review"\n')
    async with open_service(tmp_path) as service:
        rules = RulesWithStoreLists(RuleSource(path), service.store)
        first = rules.source.version
        path.write_text('[[rule]]\nname = "a"\nexpression = "amount > 9"\naction = "decline"\n')
        await reload_rules(rules, service)
        await reload_rules(rules, service)  # the same file again
        path.write_text('[[rule]]\nname = "a"\nexpression = "amont > 1"\naction = "review"\n')
        await reload_rules(rules, service)  # refused: the rules in force stay
        entries = [e for e in await service.store.audit(limit=100) if e.action == "rules.reload"]
        assert len(entries) == 1, entries
        before, after = json.loads(entries[0].before), json.loads(entries[0].after)
        assert before == {"version": first} and after["version"] == rules.source.version
        assert after["version"] != first and after["file"] == str(path) and after["pid"] > 0
        assert entries[0].chain  # sealed into the chain as any other
