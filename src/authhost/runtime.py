"""Composition root for ``authhost serve``: builds the store, security module, rules, models and
the auth pipeline from one Config, and hands the server a decision handler plus the background
services (admin API, rule file watcher) it should run in its nursery.

This is the only module that knows every part; each part knows only the values it is given.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from authhost.auth import late_reversals
from authhost.auth.approval import ApprovalCodes
from authhost.auth.decision import Decision
from authhost.auth.factory import build_advice_pipeline, build_pipeline
from authhost.auth.service import AuthService
from authhost.config import Config
from authhost.iso.messages import AuthRequest
from authhost.key_store_match import check_pan_keys
from authhost.models.context import TxContext
from authhost.node_lease import (
    NodeLeaseCollector,
    NodeWatch,
    claim_node,
    keep_node,
    node_owner,
)
from authhost.security.errors import MasterKeyChanged, SecurityError
from authhost.server.key_exchange import ZoneKeyExchange
from authhost.store import open_store
from authhost.store.interface import CardStore
from authhost.store.opener import printable_url
from authhost.store.outage import StoreOutage

if TYPE_CHECKING:  # imported when the runtime opens (the admin side loads pydantic)
    from authhost.admin.service import CardService
    from authhost.admin.service.unfinished import FinishWatch

log = logging.getLogger("authhost.runtime")

DecisionHandler = Callable[[AuthRequest, float], Awaitable[Decision]]
Service = Callable[[], Awaitable[None]]
DEMO_EXPORT = "demo-cards.json"
DEMO_TOKEN = "demo-admin-token"
RULES_POLL_S = 1.0
KEY_STORE_POLL_S = 1.0
STORE_LISTS_POLL_S = 10.0
PENDING_FLUSH_S = 0.5
# a stop writes what is still queued for at most this long (within the process's margin past
# shutdown_grace_s, server.process.GRACE_MARGIN_S)
FINAL_FLUSH_S = 4.0
HOLD_EXPIRY_INTERVAL_S = 300.0
# how often the merchant and terminal counters are brought up to date without traffic, while a
# rule reads them (well inside store.interface.ACCEPTOR_STALE_S)
ACCEPTOR_FOLLOW_S = 60.0
JOURNAL_PRUNE_FIRST_S = 60.0
JOURNAL_PRUNE_INTERVAL_S = 86_400.0
# the idempotency retention ([admin] idempotency_keep_days): after the journal's, then daily
IDEMPOTENCY_PRUNE_FIRST_S = 120.0
IDEMPOTENCY_PRUNE_INTERVAL_S = 86_400.0
REVERSAL_CHECK_S = 1.0  # how soon a reversal approved here is set against an open dispute


@dataclass
class Runtime:
    """What the server needs from the rest of the system."""

    handler: DecisionHandler
    services: list[Service] = field(default_factory=list)  # run until cancelled
    # on SIGHUP; each returns what it kept instead of what it was given (None: it took it)
    reloaders: list[Callable[[], Awaitable[str | None]]] = field(default_factory=list)
    banner: list[str] = field(default_factory=list)  # start-up lines for the operator
    collectors: list[Any] = field(default_factory=list)  # extra Prometheus collectors
    macs: Any = None  # (sign, verify) for listeners with require_mac: the security module's
    read_store: Callable[[], Awaitable[object]] | None = None  # a cheap read: /readyz's probe
    # (entries waiting, seconds the store has refused to write them, why): /readyz's too
    journal_backlog: Callable[[], tuple[int, float | None, str]] | None = None
    key_exchange: Any = None  # answers a switch's key change (server.key_exchange)
    store: Any = None  # the one CardStore everything above uses (clearing imports read it)
    security: Any = None  # the security module (PAN index of a clearing record)
    scorer: Any = None  # the fraud models in force (None without a models directory)

    async def reload(self) -> list[str]:
        """Run every reloader, even after one fails: a key store caught mid-rotation kept the
        rules and the model after it from reloading, so a rule fix sent with SIGHUP (or
        ``authhost rules reload``) did not apply. The first failure is raised once all ran
        (the server logs it); any later one is logged here. Returns what the reloaders kept
        (a refused rules file), for the server's closing line to say."""
        failures: list[Exception] = []
        kept: list[str] = []
        for reload in self.reloaders:
            try:
                if (what := await reload()) is not None:
                    kept.append(what)
            except Exception as exc:  # noqa: BLE001 - each part keeps its previous version
                failures.append(exc)
        for later in failures[1:]:
            log.error("reload failed; the previous configuration stays active: %s", later)
        if failures:
            raise failures[0]
        return kept


class RulesWithStoreLists:
    """The rule source plus the named lists analysts edit in the admin API (kept in the store).

    The store's lists are read at start, on reload and every few seconds, never per request.
    """

    def __init__(self, source: Any, store: CardStore) -> None:  # rules.loader.RuleSource
        self.source = source
        self._store = store
        self._lists: Mapping[str, frozenset[str]] = {}

    @property
    def store(self) -> CardStore:
        return self._store

    async def refresh_lists(self) -> None:
        names = await self._store.list_names()
        self._lists = {name: await self._store.get_list(name) for name in names}

    def evaluate(self, ctx: TxContext, score: int | None) -> Any:
        return self.source.evaluate(ctx, score, self._lists)

    def reads_acceptors(self) -> bool:
        """The active rules read merchant or terminal counters."""
        return bool(self.source.reads_acceptors)


@asynccontextmanager
async def open_runtime(
    config: Config, *, demo: bool = False, serving: bool = True
) -> AsyncIterator[Runtime]:
    """Open everything ``authhost serve`` needs; closes it on exit. A command that only posts
    through the pipeline (``clearing import``, ``disputes resolve``) passes ``serving=False``:
    it holds no approval-code node (its lease, taken and never renewed nor dropped, made the
    next ``serve`` within a minute report the node in use by another server) and is not
    warned that authorisations would be declined."""
    from authhost.admin.service import CardService
    from authhost.security.module import SecurityModule

    demo = demo or config.security.demo
    security = SecurityModule.open(config.security, demo=demo)
    for listener in config.all_listeners():
        if listener.require_mac:  # its key now, not a failure on every message of the link
            try:
                security.check_mac_key(listener.mac_key)
            except SecurityError as exc:
                raise SecurityError(f"listener {listener.host}:{listener.port}: {exc}") from None
    store = await open_store(config.store.url)
    try:
        await check_pan_keys(store, security)  # not every card declined 14 without a word
        banner = [f"store: {printable_url(config.store.url)}"]
        cards = CardService(
            store, security, actor="system", models_dir=config.models.dir,
            rules_file=config.rules.file, lists_dir=config.rules.lists_dir,
            hold_days=config.auth.hold_days, business_day=config.admin.business_day,
            dispute_limits=config.admin.dispute_limits,
        )  # fmt: skip
        if demo:
            banner.extend(
                await prepare_demo(
                    cards, config.server.port, config.server.host, admin=admin_url(config)
                )
            )

        node_owner_name, node = node_owner(), NodeWatch(config.server.node_id)
        if serving:
            if not await store.list_cards(limit=1):
                log.warning(empty_store_warning(config.store.url))
            node.shared = not await claim_node(store, node.node_id, node_owner_name)
        rules = await open_rules(config, store)
        scorer = open_scorer(config)
        acceptors_read = partial(reads_acceptors, rules, scorer)
        if acceptors_read():  # else read when a rule or model first asks
            counted = await store.prepare_acceptor_counters(time.time())
            banner.append(f"merchant and terminal counters: {counted} requests of the last hour")
        pipeline = build_pipeline(config.auth, security, config.models, scorer, rules)
        banner.append("pipeline: " + " -> ".join(pipeline.names))
        if rules is not None:
            banner.append(f"rules: {config.rules.file} version {rules.source.version}")
        if scorer is not None:
            banner.append(describe_models(scorer, config.models.dir))
        handler = AuthService(
            store,
            security,
            pipeline,
            build_advice_pipeline(config.auth),
            ApprovalCodes(config.server.node_id),
            config.server.timeout_response_code,
            shield=partial(trio.CancelScope, shield=True),
            atc_jump_limit=config.auth.atc_jump_limit,
            acceptor_counters=acceptors_read,
            pin_try_limit=config.auth.pin_try_limit,
        )
        cards.decide_many = handler.decide_many  # the admin API's clearing posts through it
        if rules is not None:  # explain-rules and rules performance judge by what decides
            source = rules.source
            cards.rules_in_force = lambda: (source.rules, source.lists)
        runtime = Runtime(
            handler=handler,
            banner=banner,
            macs=(security.mac_message, security.verify_mac),
            read_store=store.health_read,
            journal_backlog=handler.journal_backlog,
            store=store,
            security=security,
            scorer=scorer,
        )
        # SIGHUP re-reads the key store, so rotated or imported keys apply without a restart,
        # and so does a change to its file (a key a switch changed through another worker)
        runtime.reloaders.append(partial(reload_keys, security))
        if config.security.watch_key_store:
            runtime.services.append(partial(watch_key_store, security))
        runtime.key_exchange = ZoneKeyExchange(security, store)
        runtime.services.append(partial(flush_pending, handler))
        if serving:
            runtime.services.append(partial(keep_node, store, node, node_owner_name))
            runtime.collectors.append(NodeLeaseCollector(node))
        shortest = config.auth.hold_lives.shortest_shift
        runtime.services.append(
            partial(
                expire_holds,
                store,
                config.auth.hold_days,
                shortest,
                config.auth.hold_expiry_every_s,
            )
        )
        if config.auth.journal_keep_days:
            runtime.services.append(partial(prune_journal, cards, config.auth.journal_keep_days))
        if config.admin.idempotency_keep_days:
            runtime.services.append(
                partial(prune_idempotency, cards, config.admin.idempotency_keep_days)
            )
        runtime.services.append(
            partial(
                reconcile_disputes,
                cards,
                config.auth.dispute_reconcile_every_s,
                handler.take_reversed_accounts,
            )
        )
        runtime.services.append(
            partial(
                apply_late_reversals,
                store,
                config.auth.late_reversal_every_s,
                config.auth.late_reversal_window_s,
            )
        )
        if config.admin.port:
            from authhost.admin.http import serve_admin, tls_context

            tls_context(config.admin)  # TlsConfigError now, as a configuration error
            tokens, lines = admin_tokens(config, demo)
            banner.extend(lines)
            from authhost.admin.http import admin_lockout
            from authhost.store.metrics import AdminLockoutCollector

            lockout = admin_lockout(config.admin)  # this process's own counts
            runtime.services.append(
                partial(serve_admin, cards, config.admin, tokens=tokens, lockout=lockout)
            )
            runtime.collectors.append(AdminLockoutCollector(lockout))
        from authhost.admin.service.unfinished import FinishWatch
        from authhost.store.metrics import UnfinishedWorkCollector

        finishing = FinishWatch()
        runtime.services.append(
            partial(finish_unfinished, cards, UNFINISHED_EVERY_S, watch=finishing)
        )
        runtime.collectors.append(UnfinishedWorkCollector(finishing))
        if config.admin.audit_verify_every_s:
            from authhost.admin.audit_verify import AuditWatch
            from authhost.store.metrics import AuditChainCollector

            watch = AuditWatch()
            every = config.admin.audit_verify_every_s
            runtime.services.append(partial(watch_audit_chain, cards, watch, every))
            runtime.collectors.append(AuditChainCollector(watch))
        if config.models.drift_every_s:
            from authhost.admin.drift_watch import DriftCollector, DriftWatch

            drift = DriftWatch()
            runtime.services.append(partial(watch_model_drift, config, drift))
            runtime.collectors.append(DriftCollector(drift))
        if rules is not None or scorer is not None:
            runtime.services.append(partial(follow_acceptor_counters, store, acceptors_read))
        if scorer is not None:
            runtime.reloaders.append(partial(reload_models, scorer, config.models.dir))
        # The rules reloader last: after its file it writes the audit entry and reads the
        # lists, and a store that hangs (Redis paused, SQLite locked) held the new champion
        # behind them until it answered.
        if rules is not None:
            runtime.reloaders.append(partial(reload_rules, rules, cards))
            runtime.services.append(partial(refresh_store_lists, rules))
            if config.rules.watch and config.rules.file:
                runtime.services.append(partial(watch_rules_file, rules, cards))
        else:
            runtime.reloaders.append(no_rules_to_reload)
        from authhost.rules.metrics import RuleMetricsCollector

        # without rules too: their families at 0 rather than absent, for the alerts on them
        runtime.collectors.append(RuleMetricsCollector(rules.source if rules else None))
        from authhost.store.metrics import AcceptorCountersCollector, PendingJournalCollector

        runtime.collectors.append(AcceptorCountersCollector(store))
        runtime.collectors.append(PendingJournalCollector(handler))
        if hasattr(store, "group_commit_stats"):
            from authhost.store.metrics import GroupCommitCollector

            runtime.collectors.append(GroupCommitCollector(store))
        yield runtime
    finally:
        # Not shielded: the Redis client's own task group was entered before any scope here,
        # and must be exited outside of them.
        await store.close()


async def watch_key_store(security: Any) -> None:
    """Re-read the key store within KEY_STORE_POLL_S of its file changing: a zone PIN key a
    switch changed through one worker (or an operator's `authhost keys` run) is then the key
    every worker reads PIN blocks with, without a SIGHUP. Compared with the file as the
    security module last read it, so a change made while this process was starting counts."""
    while True:
        await trio.sleep(KEY_STORE_POLL_S)
        if not security.key_store_changed():  # nor one already found under another master key
            continue
        try:
            await trio.to_thread.run_sync(security.reload)
            log.info("key store changed on disk: keys re-read")
            continue
        except MasterKeyChanged:  # rotated: the reload said so once; serving goes on
            continue
        except SecurityError as exc:  # a file being edited, or broken: its own words
            log.error("key store changed but could not be read; the keys in use stay: %s", exc)
        except Exception:
            log.exception("key store changed but could not be read; the keys in use stay")
        await trio.sleep(KEY_STORE_POLL_S * 10)  # not a log line a second


async def prepare_demo(
    cards: Any, port: int = 8583, host: str = "127.0.0.1", *, admin: str = ""
) -> list[str]:
    """Create the demo cards and write their test-only export for the simulator, with the
    ``admin`` API's URL (``authhost-sim token-request`` finds it there: the server's own word,
    not a guessed port). The banner's command runs as printed: it names what to send (``send``
    without a kind is refused) and the port when the server is not on the simulator's
    default."""
    from authhost.admin.demo import ensure_demo, export_demo

    views = await ensure_demo(cards)
    path = Path(DEMO_EXPORT)
    await export_demo(cards, path, admin_url=admin)
    return [
        f"demo: {len(views)} demo cards ready (TEST ONLY); their PANs, PINs and test keys are "
        f"in {path.resolve()} for the simulator: {demo_send_command(path, port, host)}",
    ]


def demo_send_command(path: Path | str, port: int, host: str = "127.0.0.1") -> str:
    """The simulator command the demo banner shows: a first purchase with the demo cards,
    with the address when the simulator's default (127.0.0.1:8583) does not reach it."""
    to_host = "" if host in ("127.0.0.1", "0.0.0.0", "localhost") else f" --host {host}"
    to_port = "" if port == 8583 else f" --port {port}"
    return f"authhost-sim send purchase --cards {path} --pin card{to_host}{to_port}"


def admin_tokens(config: Config, demo: bool) -> tuple[Any, list[str]]:
    """The admin API's tokens, read at start so a bad tokens file stops start-up with a clear
    error. A demo without tokens gets a generated operator token, written to a 0600 file (a
    credential is never logged)."""
    from authhost.admin.tokens import TokenTable

    tokens = TokenTable.from_config(config.admin)
    if tokens.by_digest or not demo:
        return tokens, []
    token = secrets.token_urlsafe(24)
    path = Path(DEMO_TOKEN)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above is for a new file only: an old one keeps its own
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return TokenTable.of(**{token: "operator"}), [
        f"demo: admin API operator token in {path.resolve()} "
        f'(curl -H "Authorization: Bearer $(cat {path})" {admin_url(config)}/v1/cards)'
    ]


def admin_url(config: Config) -> str:
    """The URL this machine reaches the admin API at ("" when it is off)."""
    if not config.admin.port:
        return ""
    # the API speaks HTTPS only when it has a certificate: an http:// URL there gets no answer
    scheme = "https" if config.admin.tls_cert_file else "http"
    return f"{scheme}://{url_host(config.admin.host)}:{config.admin.port}"


def url_host(host: str) -> str:
    """A listening address as a URL reaches it: a wildcard by this machine's loopback, an
    IPv6 address in brackets (``http://:::8080`` is no URL)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def open_rules(config: Config, store: CardStore) -> RulesWithStoreLists | None:
    if not config.rules.file and not config.rules.lists_dir:
        return None
    from authhost.rules.loader import RuleSource

    # a SIGTERM that came while the store worked in its thread (the node lease just before)
    # is pending until a checkpoint: take it here, not after a rules file read that can block
    # (a FIFO), where it was never delivered and the stop hung (tests/test_serve_early_signals)
    await trio.lowlevel.checkpoint()
    source = RuleSource.from_config(config.rules)
    rules = RulesWithStoreLists(source, store)
    await rules.refresh_lists()
    return rules


def open_scorer(config: Config) -> Any:
    """The active fraud model (champion and optional challenger). Kept with no champion yet,
    and with no models directory yet, so that training, `authhost models activate` and SIGHUP
    take effect without a restart (a request costs one check of ``active`` meanwhile)."""
    from authhost.models.serving import ModelService

    models = config.models
    return ModelService.from_dir(models.dir, models.explain_from, models.threshold)


def describe_models(scorer: Any, models_dir: str) -> str:
    champion, challenger = scorer.champion, scorer.challenger
    if champion is None:
        return f"model: none active in {models_dir} (`authhost models activate NAME`)"
    text = f"model {champion.name} ({champion.kind}, {champion.feature_set})"
    return text + (f", challenger {challenger.name} in shadow" if challenger else "")


def empty_store_warning(url: str) -> str:
    """What ``serve`` says at start about a store holding no card: a mistyped store URL (a
    relative SQLite path is created anew in another working directory) or a Redis that lost
    its data would otherwise answer every authorisation 14 without a word."""
    return (
        f"store {printable_url(url)} holds no card (working directory {os.getcwd()}): every "
        "authorisation will be declined until cards are issued (14, invalid card; 96 while a "
        "Redis store holds no product, account or card); if this installation has cards, the "
        "store URL names the wrong store or its Redis lost its data"
    )


async def reload_keys(security: Any) -> None:
    """SIGHUP: re-read the key store and say so with how many key versions it holds: the
    reload was silent, so after `authhost keys import` and a SIGHUP the log said only "reload
    complete" and the operator could not tell the new key was read (the file watcher, which
    logs its re-reads, found the file unchanged since the SIGHUP had read it)."""
    await trio.to_thread.run_sync(security.reload)
    store = security.key_store
    log.info("key store re-read: %s, %d key version(s)", store.path, store.live_count())


async def reload_models(scorer: Any, models_dir: str) -> None:
    """SIGHUP: re-read the active models and say which serve now, as the start-up banner
    does: after `authhost models activate` and a SIGHUP the log said only "reload complete",
    and the operator could not tell which champion was scoring."""
    await trio.to_thread.run_sync(scorer.reload)
    log.info("models reloaded: %s", describe_models(scorer, models_dir))


async def flush_pending(handler: AuthService) -> None:
    """Journal the requests answered off the pipeline (deadline, rejected frames, MAC
    failures), off the response path.

    A stop cancels this service once the server has answered its last request: what is still
    queued is written then (the switch has those answers; the journal must have them too).
    Each write is shielded, so a stop never cuts one off after its entry left the queue."""
    try:
        while True:
            await trio.sleep(PENDING_FLUSH_S)
            with trio.CancelScope(shield=True):  # a forced stop's hard exit bounds it
                await handler.flush_pending()
    finally:
        await _final_flush(handler)


async def _final_flush(handler: AuthService) -> None:
    """At a stop, write what is queued, trying again until FINAL_FLUSH_S is over (a store
    that blinked is often back within it); then say how many entries are lost. One try used
    to be all, and its "will retry" warning was the last word as the process exited 0."""
    with trio.move_on_after(FINAL_FLUSH_S, shield=True):
        while True:
            await handler.flush_pending()
            if not handler.pending:
                return
            await trio.sleep(PENDING_FLUSH_S)
    log.error(
        "stopping with %d journal entries unwritten, the store refusing them: lost (their "
        "answers were sent; the request log has a line for each)",
        handler.pending,
    )


async def expire_holds(
    store: CardStore,
    hold_days: int,
    shorter_by: float = 0.0,
    every_s: float = HOLD_EXPIRY_INTERVAL_S,
) -> None:
    """Release authorisation holds that no completion or reversal claimed within their life:
    hold_days, or their merchant category's (``shorter_by``: how much shorter the shortest),
    every ``every_s`` ([auth] hold_expiry_every_s). A store outage is said once."""
    outage = StoreOutage(store, "expire old holds", log)
    while True:
        with outage:
            released = await store.expire_holds(time.time() - hold_days * 86400, shorter_by)
            if released:
                log.info("released %d authorisation holds whose life was over", released)
        await trio.sleep(every_s)


def reads_acceptors(rules: RulesWithStoreLists | None, scorer: Any) -> bool:
    """A loaded rule or the active model (``models.serving.ModelService``) reads the merchant
    and terminal counters: the store keeps them only then (they cost every request)."""
    return (rules is not None and rules.reads_acceptors()) or (
        scorer is not None and scorer.reads_acceptors()
    )


async def follow_acceptor_counters(store: CardStore, needed: Callable[[], bool]) -> None:
    """While a rule or the model reads merchant or terminal counters, bring them up to date
    every minute even when no request comes: after a quiet night the first request of a
    card-testing run finds them current, rather than starting a read of the whole hour."""
    outage = StoreOutage(store, "bring the merchant and terminal counters up to date", log)
    while True:
        await trio.sleep(ACCEPTOR_FOLLOW_S)
        if not needed():
            continue
        with outage:
            await store.follow_acceptor_counters(time.time())


async def _retention(
    first_s: float,
    every_s: float,
    run: Callable[[], Awaitable[str]],
    what: str,
    outage: StoreOutage,
) -> None:
    """Run a retention ``first_s`` after start, then every ``every_s``; each run logs what it
    deleted, and a failed run is logged (a store outage once) and tried again at the next."""
    await trio.sleep(first_s)
    while True:
        with outage:
            log.info("%s", await run())
        await trio.sleep(every_s)


async def prune_journal(cards: CardService, keep_days: int) -> None:
    """Apply the journal retention ([auth] journal_keep_days) a minute after start, then daily;
    each run is audited (actor "system")."""

    async def run() -> str:
        done = await cards.prune_journal(keep_days)
        return (
            f"journal retention: deleted {done['entries']} entries and {done['holds']} closed "
            f"holds older than {keep_days} days"
        )

    outage = StoreOutage(cards.store, "apply the journal retention", log)
    await _retention(
        JOURNAL_PRUNE_FIRST_S, JOURNAL_PRUNE_INTERVAL_S, run, "pruning the journal", outage
    )


async def prune_idempotency(cards: CardService, keep_days: int) -> None:
    """Apply the idempotency retention ([admin] idempotency_keep_days) two minutes after
    start, then daily: the results of requests older than that go, the markers stay; each run
    is audited (actor "system")."""

    async def run() -> str:
        done = await cards.prune_idempotency(keep_days)
        return (
            f"idempotency retention: deleted {done['results']} request results older than "
            f"{keep_days} days"
        )

    await _retention(
        IDEMPOTENCY_PRUNE_FIRST_S,
        IDEMPOTENCY_PRUNE_INTERVAL_S,
        run,
        "pruning the idempotency results",
        StoreOutage(cards.store, "apply the idempotency retention", log),
    )


AUDIT_FIRST_WALK_S = 10.0  # after the start: not in the middle of it
DRIFT_FIRST_RUN_S = 60.0  # after the start: its first run, not in the middle of it
UNFINISHED_FIRST_S = 5.0  # the first look for work a crash cut short, after the start
UNFINISHED_EVERY_S = 300.0  # and then


async def finish_unfinished(
    cards: CardService,
    every_s: float,
    first_s: float = UNFINISHED_FIRST_S,
    older_than_s: float | None = None,
    watch: FinishWatch | None = None,
) -> None:
    """Finish the work a crash cut short (``admin.service.unfinished``: card activations
    that hand over, dispute openings whose credit posted) soon after the start and every
    ``every_s``. Each worker looks; the finishing writes are compare-and-set, so two at
    once retire a card or record a dispute once."""
    await trio.sleep(first_s)
    outage = StoreOutage(cards.store, "look for work a crash cut short", log)
    while True:
        with outage:  # the store down or full is said once; a bug each time
            if older_than_s is None:
                result = await cards.finish_unfinished()
            else:
                result = await cards.finish_unfinished(older_than_s)
            _log_finished(result)
            if watch is not None:
                watch.record(result, time.time())
        await trio.sleep(every_s)


def _log_finished(result: dict[str, Any]) -> None:
    for done in result["activations"]["finished"]:
        log.warning(
            "finished card %s's activation, cut short at %s",
            done["card_id"], done["begun_at"], extra={"fields": done},
        )  # fmt: skip
    for failed in result["activations"]["failed"]:
        log.error("cannot finish card %s's activation: %s", failed["card_id"], failed["error"])
    for dispute in result["dispute_openings"]["recorded"]:
        log.warning(
            "recorded dispute %s of journal entry %d: its provisional credit of %d was posted "
            "but the dispute never recorded",
            dispute["dispute_id"], dispute["journal_id"], dispute["credited_minor"],
        )  # fmt: skip


async def watch_audit_chain(cards: CardService, watch: Any, every_s: float) -> None:
    """Walk the audit log's hash chain now and then ([admin] audit_verify_every_s; each
    worker does, reading only): a break is logged at ERROR with the first entries named and
    the metrics say so, so that a change to the log raises an alert (PCI DSS 10.3.4)
    instead of waiting for someone to look. Each walk expects the head the last good one saw
    (``AuditWatch``): the newest entries deleted break the chain too."""
    await trio.sleep(min(AUDIT_FIRST_WALK_S, every_s))
    outage = StoreOutage(cards.store, "walk the audit log's hash chain", log)
    while True:
        with outage:
            result = await cards.verify_audit(expect_head=watch.head)
            watch.record(result, time.time())
            if result["ok"]:
                log.info("audit chain verified: %d entries", result["entries"])
            else:
                fields = {"breaks": result["breaks"][:5], "break_count": result["break_count"]}
                log.error(
                    "audit chain broken: %s", result.get("error") or "entries changed or "
                    "removed in the store", extra={"fields": fields},
                )  # fmt: skip
        await trio.sleep(every_s)


async def watch_model_drift(config: Config, watch: Any) -> None:
    """Every [models] drift_every_s, the champion's drift over the last drift_window_s (as
    `authhost models drift`), in a process of its own on a store connection of its own
    (``admin.drift_watch``): the metrics carry each run; the log says only when the state
    changes (drifted, back to normal) and when runs start or stop failing. One worker runs it
    (``server.workers.worker_config``)."""
    from authhost.admin.drift_watch import champion_of, measure_apart

    models = config.models
    await trio.sleep(min(DRIFT_FIRST_RUN_S, models.drift_every_s))
    while True:
        started = time.perf_counter()
        try:  # a stop kills the run's process: a read-only run must not hold up a stop
            report = await measure_apart(
                config.store.url, models.dir, models.drift_window_s, time.time()
            )
        except Exception as exc:  # noqa: BLE001 - counted, said once, tried again
            watch.retire(await trio.to_thread.run_sync(champion_of, models.dir))
            if watch.fail():
                log.error(
                    "scheduled model drift run failed (counted in "
                    "authhost_model_drift_runs_failed_total; said again only once one "
                    "works): %s", exc,
                )  # fmt: skip
        else:
            changed = watch.record(report, time.perf_counter() - started)
            if watch.drifted and "drifted:" in changed:
                log.warning("%s", changed)
            elif changed:
                log.info("scheduled model drift: %s", changed)
        await trio.sleep(models.drift_every_s)


async def reconcile_disputes(
    cards: CardService, every_s: float, reversed_accounts: Callable[[], set[str]]
) -> None:
    """Set the acquirer's reversals against the open disputes of the charges they reversed,
    so that a provisional credit and a reversal do not both give the cardholder the money
    back: within ``REVERSAL_CHECK_S`` of a reversal this process approved, for the open
    disputes of its account (those opened since the process last read them are read
    first), and for every open dispute every ``every_s`` ([auth]
    dispute_reconcile_every_s). Each worker runs it; every movement is named after its
    reversal, so two workers at once move it once."""
    tick = min(every_s, REVERSAL_CHECK_S)
    next_full = trio.current_time() + every_s
    outage = StoreOutage(cards.store, "set reversals against open disputes", log)
    while True:
        await trio.sleep(tick)
        accounts = reversed_accounts()
        full = trio.current_time() >= next_full
        if not full and not accounts:
            continue
        with outage:
            if full:
                next_full = trio.current_time() + every_s
                changed = await cards.reconcile_disputes()
            else:
                changed = await cards.reconcile_accounts_disputes(accounts)
            for view in changed:
                log.info(
                    "dispute %s set against its charge's reversal: %d disputed, %d credited "
                    "(%s)", view["dispute_id"], view["amount_minor"], view["credited_minor"],
                    view["state"],
                )  # fmt: skip


async def apply_late_reversals(store: CardStore, every_s: float, window_s: float) -> None:
    """Every ``every_s`` ([auth] late_reversal_every_s), reverse the originals approved
    after their reversal came, for the reversals of the last ``window_s`` that found none
    (``auth.late_reversals``). Each worker runs it; each is one write named after its
    reversal, so two workers at once reverse it once."""
    outage = StoreOutage(store, "reverse originals that came after their reversal", log)
    while True:
        await trio.sleep(every_s)
        with outage:
            run = await late_reversals.apply_late_reversals(store, time.time(), window_s)
            for entry in run.applied:
                log.warning(
                    "reversal of %s (STAN %s, RRN %s) came before its original: the original, "
                    "approved since, is reversed now (%d released, journal entry %d)",
                    entry.pan_masked, entry.stan, entry.rrn, -entry.hold_amount,
                    entry.journal_id,
                )  # fmt: skip
            if run.expired:
                log.info(
                    "%d reversals found no original within %gs: no longer waited for",
                    run.expired,
                    window_s,
                )


async def no_rules_to_reload() -> str | None:
    """SIGHUP on a server started without a rules file: it takes none (the file is the one
    it started with), and says so. An operator who set ``[rules] file`` and ran ``authhost
    rules reload`` was told the log would show the new version, and it said nothing."""
    log.warning(
        "rules: none reloaded: this server started without a rules file ([rules] file) and "
        "runs without fraud rules; restart it to load one"
    )
    return None


async def reload_rules(rules: RulesWithStoreLists, cards: CardService | None = None) -> str | None:
    """SIGHUP: re-read the rules file and lists. A refused file is logged by the source
    itself (every error, the version kept): logging it here too doubled each line; what is
    kept is returned, so the reload's last line does not read as if the file was taken. A new
    version in force is audited (``audit_rules_change``)."""
    before = rules.source.version
    result = await trio.to_thread.run_sync(rules.source.reload)
    await audit_rules_change(cards, rules, before, result)
    await rules.refresh_lists()
    if not result.ok:
        return f"rules version {result.version} (the rules file was refused)"
    return None


async def watch_rules_file(rules: RulesWithStoreLists, cards: CardService | None = None) -> None:
    """Reload when the rules file or lists change (a bad file is refused; old rules stay)."""
    while True:
        await trio.sleep(RULES_POLL_S)
        try:
            before = rules.source.version
            result = await trio.to_thread.run_sync(rules.source.reload_if_changed)
            await audit_rules_change(cards, rules, before, result)
        except Exception:  # (reload refuses bad files itself) the watch goes on regardless
            log.exception("watching the rules file failed once; watching on")


async def audit_rules_change(
    cards: CardService | None, rules: RulesWithStoreLists, before: str, result: Any
) -> None:
    """A new rule set in force in this process, in the audit log (``rules.reload``, actor
    system, the versions before and after, the file, the process: each worker reloads and
    says so): the rules decide every authorisation, and their change left only a log line
    (PCI DSS 10.2). A store that fails is logged; the new rules stay in force."""
    if cards is None or result is None or not result.ok or not result.changed:
        return
    after = {"version": result.version, "file": str(rules.source.path), "pid": os.getpid()}
    try:
        await cards.record_audit("rules.reload", "rules", {"version": before}, after)
    except Exception as exc:  # noqa: BLE001 - the reload is done; say why it is not audited
        log.error("rules version %s is in force, but its audit entry failed: %s",
                  result.version, exc)  # fmt: skip


async def refresh_store_lists(rules: RulesWithStoreLists) -> None:
    """Read the store's named lists every few seconds; a store outage keeps the last ones and
    is said once."""
    outage = StoreOutage(rules.store, "read the store's named lists", log)
    while True:
        await trio.sleep(STORE_LISTS_POLL_S)
        with outage:  # failed: the last lists are kept
            await rules.refresh_lists()
