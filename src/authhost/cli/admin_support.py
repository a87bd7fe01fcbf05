"""What the card management commands share: the store and service they open, how they print,
their common options, and the run of an operator's CSV file with a progress bar.

The commands work directly on the store named by ``--store`` (or the configuration), through the
same ``CardService`` as the admin HTTP API, so a change made here is validated and audited
exactly like one made over HTTP. The audit actor is ``cli:<login name>``. Output is JSON (one
object, or a list) so it can be piped into ``jq``, and a listing is a table on a terminal
(cli.tables); errors go to stderr with exit status 1.
"""

from __future__ import annotations

import getpass
import json
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import trio
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from authhost.admin import requests as rq
from authhost.admin.errors import ServiceError, invalid_request
from authhost.admin.service import CardService
from authhost.cli.tables import TABLES, check_output
from authhost.cli.tables import show as show_result
from authhost.config import Config, ConfigError, load_config
from authhost.security.errors import SecurityError
from authhost.store.interface import StoreError

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="store URL (default: \\[store] url of the configuration)"),
]
ConfigOpt = Annotated[  # -c as for serve, rules and models: every command takes both
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="configuration file (default: $AUTHHOST_CONFIG, else authhost.toml if present)",
    ),
]
# a report's period: a business day, or [since, until) in epoch seconds (admin.service.base._period)
DayOpt = Annotated[
    str, typer.Option(help="a business day, YYYY-MM-DD (\\[admin] business_day_*; default UTC)")
]


def not_nan(param: typer.CallbackParam, value: float | None) -> float | None:
    """A time that is a number: nan compares false with every time, and a listing or an
    export given it answered nothing found, exit 0."""
    if value is not None and math.isnan(value):
        name = param.opts[0] if param.opts else param.name
        _say(f"error: {name} must be a time in epoch seconds, not nan")
        raise typer.Exit(1)
    return value


def minor_units(value: str) -> int:
    """An amount in minor units, written as a whole number: the usual int parsing took
    ``100.00`` as 100 (1.00 of a currency with cents, when 100.00 was meant) while it refused
    ``100.50``."""
    text = str(value).strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        raise typer.BadParameter(
            f"{value!r} is not a whole number of minor units (100.00 of a currency with "
            "cents is 10000)"
        )
    return int(text)


SinceOpt = Annotated[float, typer.Option(callback=not_nan, help="or from this time, epoch seconds")]
UntilOpt = Annotated[
    float, typer.Option(callback=not_nan, help="to this time (exclusive), epoch seconds")
]
IdemOpt = Annotated[
    str,
    typer.Option("--idempotency-key", help="repeat this request safely: same key, same result"),
]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=1000, help="rows to show")]
MAX_ID = 10**15  # the largest journal or audit id a listing or feed is asked after (as the API)
MAX_OFFSET = 10**9  # rows a listing skips at most (as the API)

err = Console(stderr=True)


def _say(message: str) -> None:
    """A message on stderr, unwrapped and without markup (paths and errors print as they are)."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def bounded(low: int, high: int) -> Callable[[typer.CallbackParam, int | None], int | None]:
    """An option's or argument's callback refusing a number outside [low, high] with the
    one-line error and exit status 1 of every other refusal (a huge id reached the store as
    an OverflowError before)."""

    def check(param: typer.CallbackParam, value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            name = param.opts[0] if param.opts and param.opts[0].startswith("-") else param.name
            _say(f"error: {name} must be {low:,} to {high:,}")
            raise typer.Exit(1)
        return value

    return check


OffsetOpt = Annotated[
    int,
    typer.Option(
        "--offset", callback=bounded(0, MAX_OFFSET), help=f"rows to skip (0 to {MAX_OFFSET:,})"
    ),
]
IDS = bounded(0, MAX_ID)  # the callback of every --after-id and journal id


def _config(config_file: Path | None, store: str | None, *, demo: bool = False) -> Config:
    try:
        config = load_config(config_file).replace("store", url=store)
    except ConfigError as exc:
        _say(f"authhost: configuration error: {exc}")
        raise typer.Exit(2) from None
    return config.replace("security", demo=True) if demo else config


def sqlite_file_of(url: str) -> str | None:
    """The file a SQLite store URL names (``sqlite:///x.db``, ``file://x.db``, a bare path);
    None for a Redis URL, or one ``open_store`` refuses itself with its own message."""
    from urllib.parse import urlsplit

    from authhost.store.opener import sqlite_path

    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in ("", "sqlite", "file"):
        return None
    try:
        path = sqlite_path(url) if scheme == "sqlite" else url.removeprefix("file://")
    except StoreError:
        return None
    return path if path.strip() else None


def require_store(config: Config) -> None:
    """Exit 1 with "no store at PATH" when the configured SQLite file does not exist: SQLite
    would create it, and a command run with a mistyped --store left an empty database behind
    and answered "no entries" or "not found" as if the store had been read. Only the commands
    that create (serve, demo, products create, lists put) make a new store."""
    path = sqlite_file_of(config.store.url)
    if path is not None and not Path(path).exists():
        _say(
            f"error: no store at {path} (check --store or [store] url; `authhost serve` or "
            "`authhost demo` creates a new one)"
        )
        raise typer.Exit(1)


def actor_name() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@asynccontextmanager
async def open_card_service(
    config: Config, actor: str, *, pipeline: bool = False
) -> AsyncIterator[CardService]:
    """A CardService on the configured store and security module, closed on exit. With
    ``pipeline``, on a whole runtime (rules, models) whose authorisation pipeline it posts
    through, as the server's own admin API does (clearing, disputes)."""
    from authhost.security.module import SecurityModule
    from authhost.store import open_store

    if pipeline:
        from authhost.runtime import open_runtime

        async with open_runtime(config, serving=False) as runtime:
            yield CardService(
                runtime.store, runtime.security, actor, decide_many=runtime.handler.decide_many,
                hold_days=config.auth.hold_days, business_day=config.admin.business_day,
                dispute_limits=config.admin.dispute_limits,
            )  # fmt: skip
        return

    security = SecurityModule.open(config.security)
    store = await open_store(config.store.url)
    try:
        yield CardService(
            store, security, actor, hold_days=config.auth.hold_days,
            business_day=config.admin.business_day, dispute_limits=config.admin.dispute_limits,
        )  # fmt: skip
    finally:
        await store.close()


def _run(
    config: Config,
    work: Callable[[CardService], Awaitable[Any]],
    *,
    show: bool = True,
    pipeline: bool = False,
    table: str = "",
    output: str = "json",
    creates: bool = False,
) -> Any:
    """Run ``work`` on a service (``pipeline``: one that posts through the authorisation
    pipeline); print its result as JSON (or, for a listing, as the ``table`` of cli.tables
    when ``output`` asks for one); turn errors into messages. A SQLite store that does not
    exist is refused unless the command ``creates`` (see ``require_store``)."""
    check_output(output)
    if not creates:
        require_store(config)

    async def main() -> Any:
        async with open_card_service(config, actor_name(), pipeline=pipeline) as service:
            return await work(service)

    try:
        result = trio.run(main)
    except ServiceError as exc:
        _say(f"error: {exc.message}")
        raise typer.Exit(1) from None
    except ValidationError as exc:
        _say(f"error: {invalid_request(exc).message}")
        raise typer.Exit(1) from None
    except (OSError, ValueError, SecurityError, StoreError) as exc:  # store/key store problems
        said = str(exc)
        if isinstance(exc, OSError) and exc.filename and exc.strerror:  # a file named: not
            said = f"{exc.filename}: {exc.strerror}"  # "[Errno 2] No such file...: '/x.csv'"
        _say(f"error: {said}")
        raise typer.Exit(1) from None
    except OverflowError:  # a number no store column holds (a bounded option should stop it)
        _say("error: a number given is too large")
        raise typer.Exit(1) from None
    if show and result is not None:
        show_result(result, TABLES[table] if table else None, output)
    return result


def _validated(model: type[rq.BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        _say(f"error: {invalid_request(exc).message}")
        raise typer.Exit(1) from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        _say(f"error: {path}: {exc}")
        raise typer.Exit(1) from None
    except RecursionError:
        _say(f"error: {path}: JSON nested too deeply")
        raise typer.Exit(1) from None
    if not isinstance(data, dict):
        _say(f"error: {path}: expected a JSON object")
        raise typer.Exit(1)
    return data


def _comma_list(text: str) -> list[str]:
    """``"840, 124,"`` -> ``["840", "124"]``: an option's comma-separated values."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _csv_file_rows(read: Callable[[], list[Any]]) -> list[Any]:
    """The rows of an operator's CSV file, or exit 1 with why the file cannot be used."""
    from authhost.admin.csv_rows import CsvFileError

    try:
        return read()
    except CsvFileError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None


def _run_csv_rows(
    file: Path,
    total: int,
    doing: str,
    work: Callable[[CardService, Callable[[Any], None]], Awaitable[list[Any]]],
    cfg: Config,
) -> list[Any]:
    """Run ``work`` over a file's rows with a progress bar counting rows done and failed."""
    progress = Progress(
        TextColumn(doing),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=err,
    )

    async def run(service: CardService) -> list[Any]:
        with progress:
            task = progress.add_task(doing, total=total, failed=0)
            failed = 0

            def advance(result: Any) -> None:
                nonlocal failed
                failed += 0 if result.ok else 1
                progress.update(task, advance=1, failed=failed)

            return await work(service, advance)

    return _run(cfg, run, show=False)


def read_text_file(file: Path) -> str:
    """An operator's text file (``-``: stdin) as UTF-8, or exit 1 with why it cannot be read."""
    try:
        if str(file) == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        _say(f"error: cannot read {file}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        _say(f"error: {file}: not UTF-8 text")
    raise typer.Exit(1)


@contextmanager
def results_file(results: Path | None) -> Iterator[TextIO | None]:
    """The ``--results`` file, opened before a row is done (a path that cannot be written
    stops the command there: not after the cards were issued); None without one."""
    if results is None:
        yield None
        return
    try:
        handle = results.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        _say(f"error: cannot write {results}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    with handle:
        yield handle


def _report_csv_rows(
    file: Path,
    done: list[Any],
    verb: str,
    results: TextIO | None,
    columns: tuple[str, ...],
    note: str = "",
) -> None:
    """Each failed row by line, the counts (and ``note`` on them), and every row's result to
    ``results`` (an open ``results_file``, CSV); exit 1 when a row failed."""
    failed = [row for row in done if not row.ok]
    for failure in failed:
        _say(f"{file}:{failure.line}: {failure.error}")
    _say(f"{len(done)} row(s): {len(done) - len(failed)} {verb}, {len(failed)} failed{note}")
    if results is not None:
        import csv

        from authhost.admin.csv_rows import spreadsheet_safe

        writer = csv.writer(results)  # for people: a cell the file gave is never a formula
        writer.writerow(columns)
        for row in done:
            writer.writerow([spreadsheet_safe(getattr(row, name)) for name in columns])
    if failed:
        raise typer.Exit(1)


def _check_named_or_all(card_ids: list[str] | None, all_created: bool) -> None:
    if bool(card_ids) == all_created:
        _say("error: name the cards, or give --all-created")
        raise typer.Exit(1)


async def _named_or_created(
    service: CardService, card_ids: list[str] | None, all_created: bool, without_pin: bool = False
) -> list[str]:
    """The cards named, or with ``all_created`` every card at created (only those without a
    PIN with ``without_pin``: a renewal keeps its PIN)."""
    ids = list(card_ids or [])
    if all_created:
        offset = 0
        while page := await service.list_cards(state="created", limit=1000, offset=offset):
            ids += [c["card_id"] for c in page if not (without_pin and c["pin_set"])]
            offset += len(page)
    return ids


LimitAmount = Annotated[int | None, typer.Option(min=0, help="minor units")]
LimitCount = Annotated[int | None, typer.Option(min=0, help="transactions")]
RemoveLimitOpt = Annotated[
    list[str] | None,
    typer.Option(help="a limit to remove (per-transaction, daily-count...); repeat"),
]


def limits_named(
    named: dict[str, int | None], remove: list[str] | None
) -> tuple[dict[str, int], set[str]]:
    """The limits a ``limits`` command sets (its options given) and those it removes
    (``--remove``), the same for a card's and a product's; exit 1 on an unknown name or one
    both set and removed."""
    dropped = {name.strip().lstrip("-").replace("-", "_") for name in remove or []}
    if unknown := sorted(dropped - named.keys()):
        _say(f"error: --remove {unknown[0]}: not a limit ({', '.join(named)})")
        raise typer.Exit(1)
    given = {name: value for name, value in named.items() if value is not None}
    if clash := sorted(dropped & given.keys()):
        _say(f"error: {clash[0]} is both set and removed")
        raise typer.Exit(1)
    return given, dropped
