"""What the journal tells operators and analysts.

A card's history and why each decision was made (explain), the review queue and fraud
reports, the feeds other systems poll (money movements, cardholder alerts, wallet events),
daily totals, retention, the audit log and the rule lists.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import anyio

from authhost.admin import requests as rq
from authhost.admin import totals as totals_module
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
)
from authhost.admin.service.base import (
    _LIST_NAME,
    ListMoved,
    ServiceBase,
    _check_feed_cursor,
    _period,
)
from authhost.admin.views import (
    audit_view,
    fraud_report_view,
    journal_view,
)
from authhost.cards.acceptor_velocity import ACCEPTOR_COUNTERS
from authhost.models.context import PRESENTMENT
from authhost.rules.performance import PASSED_CODES
from authhost.store.interface import (
    IDEMPOTENCY_MIN_KEEP_DAYS,
    JOURNAL_MIN_KEEP_DAYS,
    BatchAudit,
    JournalQuery,
)
from authhost.store.records import (
    AuditEntry,
    JournalEntry,
)

REPORT_BATCH = 1000  # entries whose fraud reports are read in one call
_HEX_64 = re.compile(r"[0-9a-f]{64}")  # an audit chain value

# a clearing presentment's acquirer reference number as ``journal find`` takes it: longer
# than an RRN (12), its last 12 digits the RRN of its 0220 (admin.clearing)
ARN_DIGITS = re.compile(r"[0-9]{13,23}")


class JournalAnalysis(ServiceBase):
    """What the journal tells operators and analysts."""

    async def card_journal(
        self, card_id: str, *, limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        await self._card(card_id)
        entries = await self.store.journal(
            JournalQuery(card_id=card_id, limit=limit, after_id=after_id)
        )
        verdicts = await self._verdicts([e.journal_id for e in entries])
        return [{**journal_view(e), "verdict": verdicts.get(e.journal_id)} for e in entries]

    async def explain_entry(self, card_id: str, journal_id: int, model: str = "") -> dict[str, Any]:
        """Why one of the card's journalled transactions scored what it did, by the champion
        of the models directory or the artifact ``model`` (``admin.explain``)."""
        from authhost.admin.chosen_model import named_or_champion
        from authhost.admin.explain import explain_journal_entry
        from authhost.models.registry import Registry

        await self._card(card_id)
        scorer = await named_or_champion(Registry(self.models_dir or "models"), model)
        return await explain_journal_entry(self.store, card_id, journal_id, scorer)

    async def explain_rules(
        self, card_id: str, journal_id: int, rules_file: str | Path = ""
    ) -> dict[str, Any]:
        """What each rule of the configured rules file (or ``rules_file``) makes of one of the
        card's journalled transactions, with the values of the variables it reads
        (``admin.explain``); the named lists are the lists directory's and the store's."""
        from authhost.admin.explain import explain_rules_for_entry
        from authhost.rules.lists import ListLoadError, load_lists, merge_lists
        from authhost.rules.loader import load_rule_set
        from authhost.rules.rulefile import RuleLoadError

        await self._card(card_id)
        path = rules_file or self.rules_file
        if not path:
            raise InvalidRequest("no rules file: set [rules] file (or give --rules in the CLI)")
        if not rules_file and self.rules_in_force is not None:
            rule_set, from_files = self.rules_in_force()  # a server: the rules deciding now
        else:
            try:
                rule_set = await anyio.to_thread.run_sync(load_rule_set, path)
                from_files = load_lists(self.lists_dir) if self.lists_dir else {}
            except (RuleLoadError, ListLoadError) as exc:
                raise InvalidRequest(str(exc)) from None
        names = await self.store.list_names()
        stored = {name: await self.store.get_list(name) for name in names}
        lists = merge_lists(from_files, stored)
        return await explain_rules_for_entry(self.store, card_id, journal_id, rule_set, lists)

    async def report_fraud(
        self, card_id: str, journal_id: int, spec: rq.FraudReportSpec
    ) -> dict[str, Any]:
        """Record that one of the card's journalled transactions was fraud (or, after all,
        genuine): the label the journal export gives training and backtests. A later report
        on the same entry replaces the earlier. Audited."""
        rq.FraudReportSpec.model_validate(spec.model_dump())
        await self._card(card_id)
        await self._journal_entry(card_id, journal_id)
        view = await self._record_fraud_report(
            card_id, journal_id, spec.fraud, spec.source, spec.note
        )
        return await self._with_report_id(view)

    async def review_queue(
        self,
        *,
        limit: int = 100,
        after_id: int = 0,
        open_only: bool = True,
        declined: bool = False,
    ) -> dict[str, Any]:
        """The transactions the rules flagged for review, in journal order, each with the
        verdict reported on it so far (none: still open). ``open_only`` leaves out the ones
        with a verdict; the ones a later step declined (the fraud step flags, then funds
        answers 51) never went through, so they are left out unless ``declined``. Page on
        with ``next_after_id``. A page reads on past the entries it leaves out until it
        holds ``limit`` (or the settled journal ends): a page cut short by them, or empty,
        read as the end of the queue while open reviews waited behind a card tester's
        declined tries. Entries are read once settled, as the journal feeds
        (``admin.journal_feed``): on Redis a flagged entry can be written after one with a
        higher journal id, and a cursor moved past that one would skip it for good. Once the
        queue ends, the cursor moves on over the settled journal (``past_settled``): left at
        the last flagged entry, a prune of the unflagged ones after it put it behind the cut."""
        from authhost.admin.journal_feed import next_in_feed, past_settled

        _check_feed_cursor(after_id, limit)

        def listed(entry: JournalEntry) -> dict[str, Any] | None:  # None: read past it
            if declined or entry.response_code in PASSED_CODES:
                return journal_view(entry)
            return None

        rows: list[dict[str, Any]] = []
        cursor, now = after_id, self.clock()
        while len(rows) < limit:  # the closed ones left out: read on for the rest of the page
            wanted = limit - len(rows)
            flagged, cursor = await next_in_feed(
                self.store.journal, listed, cursor, wanted, now, JournalQuery(review_only=True)
            )
            verdicts = await self._verdicts([row["journal_id"] for row in flagged])
            rows += [
                {**row, "verdict": verdicts.get(row["journal_id"])}
                for row in flagged
                if not (open_only and row["journal_id"] in verdicts)
            ]
            if len(flagged) < wanted:  # the settled journal ends here
                cursor = await past_settled(self.store.journal, cursor, now)
                break
        await self._check_journal_cursor("reviews", after_id, cursor)
        return {"reviews": rows, "next_after_id": cursor}

    async def busiest_acceptors(
        self, *, by: str = "failed_cvv_10m", terminals: bool = False, limit: int = 20
    ) -> dict[str, Any]:
        """The merchants (or terminals) with the most ``by`` now: where card testing is going
        on. Counted from the last hour of the journal by the counters the rules read
        (``merchant.*``, ``terminal.*``), whether or not a rule reads them."""
        if by not in ACCEPTOR_COUNTERS:
            raise InvalidRequest(f"by must be one of {', '.join(ACCEPTOR_COUNTERS)}")
        now = time.time()
        reading = await self.store.read_acceptor_counters(now)
        busiest = reading.counters.busiest(now, by, terminals=terminals, limit=limit)
        return {
            "by": by,
            "at": now,
            "requests_counted": len(reading.counters),
            "acceptors": [
                {
                    "merchant_id": merchant,
                    "merchant_name": reading.names.get(merchant, ""),
                    "terminal_id": terminal,
                    **dataclasses.asdict(counts),
                }
                for merchant, terminal, counts in busiest
            ],
        }

    async def money_movements(self, after_id: int = 0, limit: int = 1000) -> dict[str, Any]:
        """The money movements after journal id ``after_id`` for the core banking ledger
        (``admin.movements``): poll with the ``next_after_id`` of the last answer."""
        from authhost.admin.movements import next_movements

        _check_feed_cursor(after_id, limit)
        page = await next_movements(self.store.journal, after_id, limit, self.clock())
        await self._check_journal_cursor("movements", after_id, page["next_after_id"])
        return page

    async def cardholder_alerts(
        self,
        after_id: int = 0,
        limit: int = 1000,
        *,
        amount_minor: int = 0,
        card_not_present: bool = False,
        abroad: bool = False,
    ) -> dict[str, Any]:
        """The alerts after journal id ``after_id`` for the cardholder notification service
        (``admin.alerts``), with its policy for approvals: poll with ``next_after_id``."""
        from authhost.admin.alerts import AlertPolicy, alert_kinds, alert_view
        from authhost.admin.journal_feed import next_in_feed

        _check_feed_cursor(after_id, limit)
        if amount_minor < 0:
            raise InvalidRequest("amount_minor is 0 or more")
        policy = AlertPolicy(amount_minor, card_not_present, abroad)

        def pick(entry: JournalEntry) -> dict[str, Any] | None:
            kinds = alert_kinds(entry, policy)
            return alert_view(entry, kinds) if kinds else None

        alerts, cursor = await next_in_feed(self.store.journal, pick, after_id, limit, self.clock())
        await self._check_journal_cursor("alerts", after_id, cursor)
        return {"alerts": alerts, "next_after_id": cursor}

    async def _check_journal_cursor(self, feed: str, after_id: int, next_after_id: int) -> None:
        """Refuse a journal feed's cursor that its page answered wrong (``admin.feed_cursor``):
        behind the retention cut (409) or beyond the last journal id handed out (422); 0
        starts afresh. Read after the page, so a run that cut past the cursor meanwhile is
        seen (the cut is raised before entries go). Costs one read of the cut per page and,
        on a page that passed no entry, one of the counter (a GET on a Redis Cluster too):
        not kept across requests, so that a server up across a dump restore refuses too,
        and a cursor the counters were raised past (``store raise-counters``) is answered
        at once, not once an entry is written above it."""
        from authhost.admin.feed_cursor import behind_cut, beyond_newest

        if after_id == 0:
            return
        cut = await self.store.journal_pruned_through()
        if after_id < cut:
            raise ConflictError(behind_cut(feed, after_id, cut))
        if next_after_id > after_id or after_id <= cut:
            return  # an entry after it was read, or the cursor's entry was pruned
        if after_id <= await self.store.last_journal_id():
            return  # handed out: its entry written, or never to be
        newest = await self.store.newest_journal_id()  # a counter behind the entries: none
        if after_id > newest:
            raise InvalidRequest(beyond_newest(after_id, newest))

    async def wallet_events(self, after_id: int = 0, limit: int = 1000) -> dict[str, Any]:
        """Token events after audit id ``after_id`` for the cardholder notification service
        (``admin.wallet_events``): a card added to a wallet, asked for, suspended, resumed,
        deleted, moved to the card's successor under a new PAN. Poll with ``next_after_id``."""
        from authhost.admin.wallet_events import wallet_events

        _check_feed_cursor(after_id, limit)
        return await wallet_events(self.store.audit, after_id, limit)

    async def find_entries(
        self, *, rrn: str, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> list[dict[str, Any]]:
        """The journal entries of a period with this retrieval reference number (field 37):
        what the host answered when a switch or an acquirer asks about a transaction. A
        clearing presentment's acquirer reference number (13 to 23 digits), which a network
        or an acquirer names it by, finds its 0220: journalled under the ARN's last 12 digits
        as its RRN (``admin.clearing``), the whole ARN kept when it has 23."""
        arn = rrn if ARN_DIGITS.fullmatch(rrn) else ""
        if not (arn or (rrn and len(rrn) <= 12 and rrn.isascii() and rrn.isprintable())):
            raise InvalidRequest(
                "rrn must be 1 to 12 characters (field 37), or a clearing presentment's "
                "acquirer reference number (13 to 23 digits)"
            )
        since, until = _period(day, since, until, self.clock(), self.business_day)
        query = JournalQuery(rrn=rrn[-12:], since=since, until=until)
        entries = [
            entry
            async for entry in self.store.export_journal(query)
            if not arn or (PRESENTMENT in entry.reason_codes and entry.arn in ("", arn))
        ]
        verdicts = await self._verdicts([e.journal_id for e in entries])
        return [{**journal_view(e), "verdict": verdicts.get(e.journal_id)} for e in entries]

    async def journal_totals(
        self, *, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> dict[str, Any]:
        """The period's totals for the back office's reconciliation (``admin.totals``): a
        business ``day`` (YYYY-MM-DD), or [since, until) in epoch seconds. Streams the
        period's journal entries, so a day of traffic needs memory for the totals only."""
        since, until = _period(day, since, until, self.clock(), self.business_day)
        totals = totals_module.Totals(since, until)
        async for entry in self.store.export_journal(JournalQuery(since=since, until=until)):
            totals.add(entry)
        return totals.view()

    async def compare_models(
        self,
        *,
        day: str = "",
        since: float = 0.0,
        until: float = 0.0,
        champion_threshold: int | None = None,
        challenger_threshold: int | None = None,
    ) -> dict[str, Any]:
        """Champion against challenger over the requests both scored in the period
        (``admin.model_comparison``), each at its operating threshold: the active artifacts'
        own, unless given. Fraud reports are the verdicts."""
        from authhost.admin.model_comparison import compare_models

        since, until = _period(day, since, until, self.clock(), self.business_day)
        return await compare_models(
            self.store, self.models_dir, since, until, champion_threshold, challenger_threshold
        )

    async def model_drift(
        self,
        *,
        day: str = "",
        since: float = 0.0,
        until: float = 0.0,
        model: str = "",
        reference_day: str = "",
        reference_since: float = 0.0,
        reference_until: float = 0.0,
        watch: float | None = None,
        act: float | None = None,
        segment: str = "",
    ) -> dict[str, Any]:
        """Is the model still seeing the traffic it was trained on (``admin.model_drift``):
        each feature's and the score's Population Stability Index over the period's requests
        it scores, against the artifact's reference (the held-out training days) or a
        reference period of the journal; the champion unless ``model`` names another; and
        each segment's of the kind ``segment`` (``models.segments``) when one is given."""
        from authhost.admin.model_drift import model_drift
        from authhost.models.drift import ACT, WATCH, ReferenceError, Thresholds

        try:
            thresholds = Thresholds(WATCH if watch is None else watch, ACT if act is None else act)
        except ReferenceError as exc:
            raise InvalidRequest(str(exc)) from None
        since, until = _period(day, since, until, self.clock(), self.business_day)
        reference = None
        if reference_day or reference_since or reference_until:
            try:
                reference = _period(
                    reference_day, reference_since, reference_until, self.clock(),
                    self.business_day,
                )  # fmt: skip
            except InvalidRequest as exc:
                raise InvalidRequest(f"reference period: {exc.message}") from None
        return await model_drift(
            self.store, self.models_dir, since, until, model=model,
            reference_period=reference, thresholds=thresholds, segment=segment,
        )  # fmt: skip

    async def common_points(
        self,
        *,
        day: str = "",
        since: float = 0.0,
        until: float = 0.0,
        lookback_days: int = 60,
        min_cards: int = 2,
        by: str = "merchant",
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """Common point of purchase (``admin.common_points``): the merchants (or terminals)
        the cards whose first fraud fell in the period had visited in the ``lookback_days``
        before it, ranked (``limit`` rows from ``offset`` on), and the cards that visited the
        top ones with no fraud yet (masked PANs). Reads the journal of the period and its
        lookback; changes nothing."""
        from authhost.admin.common_points import check_options, common_points

        check_options(lookback_days, min_cards, by, limit, offset)
        since, until = _period(day, since, until, self.clock(), self.business_day)
        return await common_points(
            self.store, since, until,
            lookback_days=lookback_days, min_cards=min_cards, by=by, limit=limit, offset=offset,
        )  # fmt: skip

    async def rule_performance(
        self, *, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> dict[str, Any]:
        """What each rule did over the period, as the journal recorded it
        (``rules.performance``): its matches, what became of those requests, and the fraud
        reports on them (the cardholders' "it was me" among them). The configured rules file,
        when there is one, names each rule's action and mode and which declines were its own."""
        from authhost.admin.totals import iso_time
        from authhost.rules.performance import RulePerformance

        since, until = _period(day, since, until, self.clock(), self.business_day)
        performance = RulePerformance(await self._rule_facts())
        batch: list[JournalEntry] = []
        async for entry in self.store.export_journal(JournalQuery(since=since, until=until)):
            if not entry.rule_matches:
                performance.add(entry, None)
                continue
            batch.append(entry)
            if len(batch) >= REPORT_BATCH:
                await self._add_with_reports(performance, batch)
                batch = []
        await self._add_with_reports(performance, batch)
        return {
            "since": iso_time(since),
            "until": iso_time(until),
            "rules_file": str(self.rules_file) if performance.facts else "",
            "entries": performance.entries,
            "entries_with_matches": performance.with_matches,
            "rules": performance.rows(),
        }

    async def _add_with_reports(self, performance: Any, entries: list[JournalEntry]) -> None:
        reports = await self.store.fraud_reports_of([e.journal_id for e in entries])
        performance.add_all((e, reports.get(e.journal_id)) for e in entries)

    async def _rule_facts(self) -> dict[str, Any]:
        """Each rule of the configured rules file by name ({} when none is configured): in a
        server the rules in force (a broken file saved over it is refused and changes
        nothing), else the file, refused with its line and reason when it does not load."""
        from authhost.rules.loader import load_rule_set
        from authhost.rules.performance import RuleFacts
        from authhost.rules.rulefile import RuleLoadError

        if not self.rules_file:
            return {}
        if self.rules_in_force is not None:
            rule_set = self.rules_in_force()[0]
        else:
            try:
                rule_set = await anyio.to_thread.run_sync(load_rule_set, self.rules_file)
            except RuleLoadError as exc:
                raise InvalidRequest(str(exc)) from None
        return {
            rule.name: RuleFacts(rule.action.value, rule.reason, rule.shadow, rule.window_text())
            for rule in rule_set.all_rules
        }

    async def fraud_reports(self, *, limit: int = 100, after_id: int = 0) -> list[dict[str, Any]]:
        """The reports in the order they were written, after report id ``after_id``: a
        consumer paging with the last one's ``report_id`` gets every report filed later,
        a late one on an old entry and a changed verdict (listed again, once) included. A
        cursor beyond the last report id handed out is refused (422): another store's, or
        one a Redis dump restore took the counter back under (empty pages for ever, then its
        ids handed out again); read on an empty page (two reads on one Redis slot)."""
        from authhost.admin.feed_cursor import beyond_newest_report

        reports = await self.store.fraud_reports(after_id, limit)
        if not reports and after_id > 0:  # not kept across requests: a restore takes it back
            newest = await self.store.newest_fraud_report_id()
            if after_id > newest:
                raise InvalidRequest(beyond_newest_report(after_id, newest))
        return [fraud_report_view(r) for r in reports]

    def _retention_cut(self, keep_days: int, minimum: int, why: str) -> float:
        """The time before which a retention deletes, or 422 for fewer days than ``minimum``
        (``why`` says what needs them)."""
        if keep_days < minimum:
            raise InvalidRequest(f"keep_days must be at least {minimum}: {why}")
        return self.clock() - keep_days * 86400

    async def prune_journal(self, keep_days: int) -> dict[str, Any]:
        """Delete journal entries (and closed holds) older than ``keep_days``: the retention an
        issuer's data policy sets. Refused under JOURNAL_MIN_KEEP_DAYS, which the velocity
        counters and the reversals of open holds still read. Audited."""
        before = self._retention_cut(
            keep_days,
            JOURNAL_MIN_KEEP_DAYS,
            "velocity counters read 30 days of the journal and reversals find their holds",
        )
        asked = {"keep_days": keep_days, "before": before}
        pruned = await self.store.prune_journal(
            before, self._batch_entry("journal.prune", "journal", asked), self.security.audit_seal
        )
        result = {"before": before, "entries": pruned.entries, "holds": pruned.holds}
        if not (pruned.entries or pruned.holds):  # no batch, no write: the run's own entry
            await self.record_audit("journal.prune", "journal", None, {**asked, **result})
        return result

    async def prune_idempotency(self, keep_days: int) -> dict[str, Any]:
        """Delete the idempotency results older than ``keep_days`` (``store.prune_idempotency``:
        a request's stored answer, and a placeholder a request interrupted that long ago
        left); a repeat of one of those requests is a new request from then on, as keys
        expire at Stripe. Markers stay, whatever their age (a closed account's, the demo's).
        Refused under IDEMPOTENCY_MIN_KEEP_DAYS: a client's retries must find their answer.
        Audited (``idempotency.prune``)."""
        before = self._retention_cut(
            keep_days,
            IDEMPOTENCY_MIN_KEEP_DAYS,
            "a client resending a request it got no answer for must get the first answer, not "
            "a second change",
        )
        asked = {"keep_days": keep_days, "before": before}
        deleted = await self.store.prune_idempotency(
            before,
            self._batch_entry("idempotency.prune", "idempotency", asked),
            self.security.audit_seal,
        )
        result = {"before": before, "results": deleted}
        if not deleted:  # no batch, no write: the run's own entry
            await self.record_audit("idempotency.prune", "idempotency", None, {**asked, **result})
        return result

    async def raise_counters(self, journal: int, fraud_reports: int) -> dict[str, Any]:
        """Raise the store's journal id and fraud report id counters to at least these
        (``store.raise_counters``, never lower): after a Redis dump or AOF restore took them
        back, the ids after them would be handed out again, under the feeds' cursors, and
        the movements, alerts, reviews and fraud reports written under them never listed.
        Give the highest id a consumer has read (the 422 of a feed names the cursor). Run
        with the servers stopped: a process keeps the block of 100 ids it reserved. Audited
        (``store.raise_counters``)."""
        if min(journal, fraud_reports) < 0 or max(journal, fraud_reports) > 10**15:
            raise InvalidRequest("--journal and --fraud-reports are 0 to 10^15")
        after = await self.store.raise_counters(journal, fraud_reports)
        result = {"journal": after.journal, "fraud_reports": after.fraud_reports}
        asked = {"journal": journal, "fraud_reports": fraud_reports}
        await self.record_audit("store.raise_counters", "journal", asked, result)
        return result

    def _batch_entry(self, action: str, subject: str, asked: dict[str, Any]) -> BatchAudit:
        """A retention batch's entry (``store.BatchAudit``): the run's ``keep_days`` and cut
        (``before``), and what this batch deleted, written in the batch's write; a run's
        entries (one ``before``) add up to what it deleted, one cut short's to what it did."""

        def entry(deleted: dict[str, int]) -> AuditEntry:
            return self._audit_entry(action, subject, None, {**asked, **deleted})

        return entry

    async def audit(
        self,
        *,
        subject: str = "",
        limit: int = 100,
        after_id: int = 0,
        newest_first: bool = False,
        before_id: int = 0,
        actor: str = "",
    ) -> list[dict[str, Any]]:
        """Audit entries oldest first after ``after_id``, or newest first before
        ``before_id`` (0: from the newest): a security officer's question is usually what
        changed today, which oldest-first paging reaches only after the whole log."""
        newest_first = newest_first or bool(before_id)  # before_id pages back: newest first
        if newest_first and after_id:
            raise InvalidRequest("after_id pages oldest first; newest first pages with before_id")
        entries = await self.store.audit(
            subject=subject,
            limit=limit,
            after_id=after_id,
            newest_first=newest_first,
            before_id=before_id,
            actor=actor,
        )
        return [audit_view(e) for e in entries]

    async def verify_audit(self, expect_head: str = "") -> dict[str, Any]:
        """The audit log's hash chain walked through (``admin.audit_verify``)."""
        from authhost.admin.audit_verify import verify_audit_chain

        if expect_head and not _HEX_64.fullmatch(expect_head):
            raise InvalidRequest("head is a chain value: 64 hex digits, as verify printed it")
        return await verify_audit_chain(self.store, self.security.audit_seal, expect_head)

    async def list_names(self) -> list[str]:
        return sorted(await self.store.list_names())

    async def get_list(self, name: str) -> dict[str, Any]:
        if name not in await self.store.list_names():
            raise NotFoundError(f"list {name} not found")
        return {"name": name, "values": sorted(await self.store.get_list(name))}

    async def put_list(
        self, name: str, content: rq.ListValues, *, made_from: frozenset[str] | None = None
    ) -> dict[str, Any]:
        """The list's whole content. ``made_from``: the list as read when ``content`` was made
        from it (values added to it): written only if the list holds those values still, else
        ``ListMoved`` and nothing written (a put made over another write would undo it)."""
        rq.ListValues.model_validate({"values": content.values})
        if not _LIST_NAME.fullmatch(name):
            raise InvalidRequest("list names are letters, digits, '.', '_' and '-' (max 64)")
        values = sorted(set(content.values))

        def entry(before: frozenset[str]) -> AuditEntry:  # the values the write replaces
            if made_from is not None and before != made_from:  # refused before any write
                raise ListMoved(f"list {name} changed while values were added to it")
            change = {
                "added": sorted(set(values) - before),
                "removed": sorted(before - set(values)),
                "size": len(values),
            }
            return self._audit_entry("list.put", name, {"size": len(before)}, change)

        # the list and its entry: one write
        await self.store.put_list(name, values, entry, self.security.audit_seal)
        return {"name": name, "values": values}
