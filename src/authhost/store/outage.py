"""A background job's store outage, said once: a WARNING line when the store first fails
the job (Redis down or at its ``maxmemory``, a SQLite disk full or locked), an INFO line when
the job works again. Each job used to log a full traceback on every run of an outage, as for
a bug, burying the one line that mattered; an error that is not the store's still is one,
and its caller logs it with its traceback."""

from __future__ import annotations

import logging
import time
from types import TracebackType

from authhost.store.interface import StoreError, unavailable


class StoreOutage:
    """One job's view of the store: ``failed`` on each error, ``worked`` on each good run; or,
    around one run, ``with outage:``, which does both and keeps the job going (an error that
    is not the store's logged with its traceback, each time; cancellation passes)."""

    def __init__(self, store: object, what: str, log: logging.Logger) -> None:
        # ``what`` completes "cannot ... now": "expire old holds"
        self._errors = (StoreError, *getattr(store, "backend_errors", ()))
        self._what = what
        self._log = log
        self.since: float | None = None  # time.monotonic() of the outage's first failure

    def failed(self, error: BaseException) -> bool:
        """True when ``error`` is the store failing (said on the outage's first failure
        only); False for any other error, which the caller logs with its traceback."""
        if not isinstance(error, self._errors) or not isinstance(error, Exception):
            return False
        if self.since is None:
            self.since = time.monotonic()
            self._log.warning(
                "cannot %s now (%s); tried again, said again once it works",
                self._what,
                unavailable(error, "the store failed"),
            )
        return True

    def worked(self) -> None:
        """A run went through: the end of an outage, if there was one, is said."""
        if self.since is not None:
            self._log.info(
                "can %s again: the store works (it failed for %.0f s)",
                self._what,
                time.monotonic() - self.since,
            )
            self.since = None

    def __enter__(self) -> StoreOutage:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool:
        if error is None:
            self.worked()
            return False
        if not isinstance(error, Exception):  # cancelled, interrupted: not the run's failure
            return False
        if not self.failed(error):
            self._log.error(
                "cannot %s: an error not the store's; tried again",
                self._what,
                exc_info=(kind, error, trace),
            )
        return True
