"""``authhost-sim token-request``: a wallet asks the network's token service for a token of a
demo card, and the service asks the issuer (authhost's admin API, ``POST /v1/token-requests``).

It plays the network's side of provisioning for tests and demonstrations: the card number,
expiry and CVV2 as the cardholder typed them into the wallet, a fresh token number on the
card's test BIN, the wallet's device and account scores. An approved or waiting token is
written into the demo file as the card's wallet token, so ``authhost-sim send --wallet`` pays
with it (a waiting one is declined 62 until ``authhost cards token-state ... --state active``).
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from authhost.cards.luhn import luhn_check_digit
from authhost.cards.tokens import WALLETS_BY_REQUESTOR
from simulator.demo_cards import (
    DemoFile,
    DemoFileError,
    load_demo_file,
    pick_card,
    remember_token,
)

out = Console()
err = Console(stderr=True)
# the wallets' token requestor IDs, from the issuer's own table (cards.tokens)
WALLETS = {wallet: requestor for requestor, wallet in WALLETS_BY_REQUESTOR.items()}
DEFAULT_ADMIN = "http://127.0.0.1:8080"  # the [admin] section's defaults


def token_request(
    cards: Path = typer.Option(..., help="Demo card file (authhost demo --export FILE)."),
    card: str = typer.Option("1", help="Card in the demo file: number or last 4 PAN digits."),
    wallet: str = typer.Option("google_pay", help="apple_pay, google_pay or samsung_pay."),
    device_score: int | None = typer.Option(None, help="The wallet's device score, 1-5."),
    account_score: int | None = typer.Option(None, help="The wallet's account score, 1-5."),
    cvv2: bool = typer.Option(True, help="The wallet asked for the CVV2 (--no-cvv2: it did not)."),
    wrong_cvv2: bool = typer.Option(False, help="The CVV2 typed is wrong (a guess)."),
    admin: str | None = typer.Option(
        None,
        help="authhost's admin API URL (default: the one `authhost serve --demo` wrote in the "
        f"card file, else {DEFAULT_ADMIN}).",
    ),
    token_file: Path = typer.Option(
        Path("demo-admin-token"), help="File with an operator token of the admin API."
    ),
) -> None:
    """Ask the issuer for a wallet token of a demo card, as the network's token service does,
    and print its answer: approved, authentication_required or declined, with reasons."""
    if wallet not in WALLETS:
        raise typer.BadParameter(f"--wallet is one of {', '.join(WALLETS)}")
    try:
        demo = load_demo_file(cards)
        chosen = pick_card(demo, card)
        operator = token_file.read_text().strip()
    except (DemoFileError, ValueError, OSError) as error:
        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
    number = new_token_number(chosen.pan[:6])
    typed = chosen.cvv2 if not wrong_cvv2 else f"{(int(chosen.cvv2) + 1) % 1000:03d}"
    body = {
        "pan": chosen.pan,
        "card_expiry": chosen.expiry,
        "cvv2": typed if cvv2 else "",
        "token_pan": number,
        "requestor_id": WALLETS[wallet],
        "expiry": chosen.expiry,
        "device": "phone",
        "device_score": device_score,
        "account_score": account_score,
    }
    # the running demo server's own word for where its admin API is, not a guessed port
    base = admin or demo.admin_url or DEFAULT_ADMIN
    try:
        answer = _post(base, "/v1/token-requests", operator, body)
    except urllib.error.URLError as error:
        said = f"cannot reach the admin API at {base}: {error.reason}; " + _where(admin, demo)
        err.print(f"[red]error:[/red] {escape(said)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ConnectionError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    out.print(f"{chosen.masked}: [bold]{answer['decision']}[/bold]", highlight=False)
    for reason in answer["reasons"]:
        out.print(f"  {reason}", highlight=False)
    if answer["token_ref"]:
        remember_token(cards, chosen.pan, number, chosen.expiry, WALLETS[wallet])
        out.print(
            f"token ...{number[-4:]} ({answer['token_ref'][:12]}...) kept in {cards}: "
            "authhost-sim send purchase --entry ecommerce --wallet pays with it",
            highlight=False,
        )


def new_token_number(bin_: str) -> str:
    """A fresh token number on the card's test BIN (Luhn-valid, 16 digits)."""
    body = bin_ + "8" + f"{secrets.randbelow(10**8):08d}"
    return body + luhn_check_digit(body)


def _post(base: str, path: str, operator: str, body: dict) -> dict:
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=json.dumps({k: v for k, v in body.items() if v is not None}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {operator}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as error:
        message = json.loads(error.read() or b"{}").get("error", error.reason)
        raise ConnectionError(f"the issuer answered {error.code}: {message}") from None
    except OSError as error:  # a URLError (no answer) goes up as it is: see _where
        if isinstance(error, urllib.error.URLError):
            raise
        raise urllib.error.URLError(error) from None


def _where(admin: str | None, demo: DemoFile) -> str:
    """What to do when the admin API did not answer: the exact --admin to pass when the
    configuration in this directory names another address, else where the URL came from."""
    if admin:
        return "is the host running, with its [admin] host and port there?"
    if demo.admin_url:
        return (
            "the host that wrote the card file (authhost serve --demo) is not running there "
            "now: start it again in that directory (it rewrites the file), or pass --admin URL"
        )
    configured = _configured_admin()
    if configured and configured != DEFAULT_ADMIN:
        return f"the configuration here names another: pass --admin {configured}"
    return "pass --admin URL (the host's [admin] host and port)"


def _configured_admin() -> str:
    """The admin API's URL by the authhost configuration of this directory (authhost.toml,
    AUTHHOST_CONFIG, AUTHHOST_ADMIN_* variables), "" when it cannot be read or the API is
    off. Only for the error: the card file's URL is the running server's own word."""
    from authhost.config import ConfigError, load_config
    from authhost.runtime import admin_url

    try:
        return admin_url(load_config())
    except (ConfigError, OSError):
        return ""


def register(app: typer.Typer) -> None:
    app.command("token-request")(token_request)
