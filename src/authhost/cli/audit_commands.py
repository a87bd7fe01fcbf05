"""``authhost audit`` and ``authhost lists``: the audit log, and the named lists rules read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from authhost.admin import requests as rq
from authhost.cli.admin_support import (
    IDS,
    ConfigOpt,
    LimitOpt,
    StoreOpt,
    _config,
    _run,
    _validated,
    read_text_file,
)
from authhost.cli.tables import OutputOpt

audit = typer.Typer(help="The audit log of changes (who, when, what, before/after).")


@audit.command("list")
def audit_list(
    subject: Annotated[str, typer.Option(help="card, account, product or list id")] = "",
    actor: Annotated[str, typer.Option(help="only what this token name or cli:<login> did")] = "",
    limit: LimitOpt = 100,
    after_id: Annotated[int, typer.Option(callback=IDS, help="entries after this audit id")] = 0,
    newest: Annotated[
        bool, typer.Option("--newest", help="newest first (today's writes on the first page)")
    ] = False,
    before_id: Annotated[
        int, typer.Option(callback=IDS, help="with --newest: entries before this audit id")
    ] = 0,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Audit entries, oldest first (--newest: newest first)."""
    _run(
        _config(config, store),
        lambda s: s.audit(
            subject=subject,
            limit=limit,
            after_id=after_id,
            newest_first=newest,
            before_id=before_id,
            actor=actor,
        ),
        table="audit",
        output=output,
    )


@audit.command("verify")
def audit_verify(
    head: Annotated[
        str,
        typer.Option(help="a head value an earlier verify printed: check it is still there"),
    ] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check the audit log's hash chain: every entry as it was written and none removed.
    Prints the newest entry's chain value (head) to keep off-host; exit 1 if it breaks."""
    result = _run(
        _config(config, store), lambda s: s.verify_audit(expect_head=head.strip().lower())
    )
    if not result["ok"]:
        raise typer.Exit(1)


lists = typer.Typer(help="Named lists used by fraud rules (e.g. blocked merchants).")


@lists.command("list")
def lists_list(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Names of the lists."""
    _run(_config(config, store), lambda s: s.list_names())


@lists.command("show")
def lists_show(name: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """One list's values."""
    _run(_config(config, store), lambda s: s.get_list(name))


@lists.command("put")
def lists_put(
    name: str,
    file: Annotated[Path, typer.Argument(help="one value per line ('-' for stdin)")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Replace a list with the values of a file: one a line, `#` starts a comment (as in
    the lists directory)."""
    from authhost.rules.lists import list_values

    values = sorted(list_values(read_text_file(file)))
    request = _validated(rq.ListValues, {"values": values})
    _run(_config(config, store), lambda s: s.put_list(name, request), creates=True)
