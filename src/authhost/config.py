"""One configuration value, built once at start-up and passed down (never a global).

Sources, later ones winning: built-in defaults, the TOML file (``authhost.toml`` in the
working directory, or ``--config``/``AUTHHOST_CONFIG``), environment variables named
``AUTHHOST_<SECTION>_<KEY>`` (for example ``AUTHHOST_SERVER_PORT=9583``), then command-line
options. Every key is optional; starting with no file works.

Each section is a frozen dataclass whose field docstrings (the ``help`` metadata) are what
``authhost serve --help`` and ``authhost config show`` print, so the keys are documented in
one place only.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authhost.admin.business_day import BusinessDay
from authhost.admin.dispute_stages import DisputeLimits
from authhost.auth.hold_life import EXTENDED_AUTHORISATION, HoldLifeError, HoldLives
from authhost.store.interface import IDEMPOTENCY_MIN_KEEP_DAYS, JOURNAL_MIN_KEEP_DAYS

ENV_PREFIX = "AUTHHOST_"
DEFAULT_FILE = "authhost.toml"
DEFAULT_MASTER_KEY_ENV = "AUTHHOST_MASTER_KEY"
DEFAULT_HSM_PIN_ENV = "AUTHHOST_HSM_PIN"  # the user PIN of the token holding the master key


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


PORT_MAX = 65_535
# answers that approve: a request the host did not decide in time must never get one (no hold
# was placed, no funds were checked)
APPROVING_CODES = frozenset({"00", "08", "10", "11", "85"})
_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only (int() also takes '١٢' and '1_2')
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _port(section: str, key: str, value: int) -> None:
    if not 0 <= value <= PORT_MAX:  # a socket takes the port modulo 65536: 99999 -> 34463
        raise ConfigError(f"{section} {key} must be 0 to {PORT_MAX}, not {value}")


def _host(section: str, key: str, value: str) -> None:
    """An empty host binds every interface: that must be asked for, never a blank by mistake."""
    if not value.strip():
        raise ConfigError(
            f'{section} {key} must not be empty (every interface is "0.0.0.0" for IPv4, '
            '"::" for IPv6)'
        )


def _at_least(section: str, key: str, value: float, low: float, meaning: str = "") -> None:
    if value < low:
        raise ConfigError(f"{section} {key} must be at least {low}{meaning}, not {value}")


def _key(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse's name
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ListenerConfig:
    """One TCP listener for switch traffic: where it listens and which wire dialect it speaks."""

    host: str = _key("127.0.0.1", "address to listen on")
    port: int = _key(8583, "TCP port for ISO 8583 traffic")
    dialect: str = _key(
        "ascii-binary-bitmap",
        "wire dialect: ascii-binary-bitmap (default), ascii-hex-bitmap, bcd-binary-bitmap or "
        "ebcdic-binary-bitmap",
    )
    framing: str = _key("binary2", "length header: binary2 (2-byte big-endian) or ascii4")
    tpdu: bool = _key(False, "frames carry a 5-byte TPDU after the length header")
    max_frame: int = _key(8192, "largest accepted frame body in bytes; larger closes the link")
    require_mac: bool = _key(False, "require a valid MAC in field 64/128 on this listener")
    mac_key: str = _key(
        "mak",
        "the key store's MAC key (type mak) this listener's MACs are made and checked with, "
        "and a switch's MAC key change on it replaces: one per network link",
    )
    key_exchange: bool = _key(
        True, "accept a switch's zone PIN key change (0800, field 70 = 161); false answers 12"
    )
    allow_from: list[str] = _key(
        [],
        "client addresses or networks allowed to connect, e.g. ['10.1.2.0/24', '192.0.2.7']; "
        "others are closed at once; [] lets anyone connect",
    )
    max_connections: int = _key(
        0, "connections open at once on this listener; more are closed at once (0: no limit)"
    )
    idle_timeout_s: float = _key(
        0.0, "seconds without a frame after which a connection is closed (0: never)"
    )
    merchant_advice: bool = _key(
        False, "declines carry Mastercard's merchant advice code (field 48 SE 84): retry or not"
    )
    visa_fields: bool = _key(
        False,
        "read Visa's fields (VisaNet Base I: the ECI in 60.8, the CAVV in 126.9, the CVV2 in "
        "126.10, the address in 123) and answer their results in field 44; off, those fields "
        "are not read (a switch using 60, 123 or 126 for something else is unaffected)",
    )
    tls_cert_file: str = _key("", "PEM certificate: the listener speaks TLS only (1.2 and above)")
    tls_key_file: str = _key("", "PEM private key of tls_cert_file")
    tls_client_ca_file: str = _key(
        "", "PEM CA certificate(s): every client must present a certificate they signed (mTLS)"
    )

    def _section(self) -> str:
        return "[[listeners]]"

    def __post_init__(self) -> None:
        _host(self._section(), "host", self.host)
        _port(self._section(), "port", self.port)


@dataclass(frozen=True)
class ServerConfig(ListenerConfig):
    """The authorisation server process, and its default listener (every ``ListenerConfig``
    key, given in [server])."""

    deadline_ms: int = _key(200, "per-request deadline; past it the request is answered")
    timeout_response_code: str = _key("91", "response code sent when the deadline passes")
    slow_ms: int = _key(
        100, "log a decision slower than this with its time per step (at most 10 a second); 0: off"
    )
    workers: int = _key(1, "server processes sharing the port, fewest connections first")
    metrics_host: str = _key("127.0.0.1", "address of the Prometheus metrics endpoint")
    metrics_port: int = _key(9464, "port of the Prometheus metrics endpoint; 0 disables it")
    log_level: str = _key("INFO", "log level: DEBUG, INFO, WARNING, ERROR")
    log_format: str = _key("json", "log line format: json or text")
    shutdown_grace_s: float = _key(10.0, "seconds to finish in-flight requests on shutdown")
    pid_file: str = _key("authhost.pid", "file the server writes its pid to (SIGHUP reloads)")
    node_id: int = _key(0, "this process's number (0-7) in approval codes; workers get theirs")

    def _section(self) -> str:
        return "[server]"

    def __post_init__(self) -> None:
        super().__post_init__()
        _host("[server]", "metrics_host", self.metrics_host)
        _port("[server]", "metrics_port", self.metrics_port)
        if self.timeout_response_code in APPROVING_CODES:
            raise ConfigError(
                f"[server] timeout_response_code {self.timeout_response_code!r} approves: a "
                "request not decided in time was not checked and held nothing (use 91 or 96)"
            )


@dataclass(frozen=True)
class StoreConfig:
    """Where cards, counters and the journal live."""

    url: str = _key(
        "sqlite:///authhost.db",
        "store URL: sqlite:///PATH (embedded default), redis://HOST:PORT/DB, "
        "redis+cluster://HOST:PORT",
    )


@dataclass(frozen=True)
class SecurityConfig:
    """The software security module: where the master key and working keys come from."""

    master_key_env: str = _key(DEFAULT_MASTER_KEY_ENV, "environment variable with the master key")
    master_key_file: str = _key("", "file holding the master key (outside the repository)")
    master_key_pkcs11_library: str = _key(
        "",
        "PKCS#11 library (.so) of the HSM holding the master key as an AES key that never "
        "leaves it (with master_key_pkcs11_token and _label; then no master_key_file or "
        "master_key_env)",
    )
    master_key_pkcs11_token: str = _key("", "label of the PKCS#11 token holding the master key")
    master_key_pkcs11_label: str = _key("", "label of the master key (AES) on that token")
    master_key_pkcs11_pin_env: str = _key(
        DEFAULT_HSM_PIN_ENV, "environment variable holding the token's user PIN"
    )
    key_store: str = _key(
        "authhost-keys.json", "file of working keys, encrypted under the master key"
    )
    demo: bool = _key(False, "demo mode: generate a master key and test keys when none exist")
    pin_mailer_key: str = _key(
        "pin-mailer",
        "key (type zpk) the PIN mailer printer holds: generated PINs leave authhost as PIN "
        "blocks under it (ISO format 0, or 4 for an AES key)",
    )
    zone_keys: list[str] = _key(
        [], "zone PIN key per acquirer, 'acquirer_id=key_name' entries (others use 'zpk')"
    )
    watch_key_store: bool = _key(
        True,
        "re-read the key store within a second of its file changing (a zone PIN key a switch "
        "changed through another worker, an operator's rotation); off: at SIGHUP only",
    )
    zone_key_overlap_s: float = _key(
        120.0,
        "seconds after a zone PIN key or MAC key change during which a PIN block that does not "
        "read, or a MAC that does not verify, under the new key is tried under the one before "
        "(messages already in flight); 0: never",
    )
    zone_master_keys: list[str] = _key(
        [],
        "zone master key per acquirer, under which its new zone PIN keys arrive in a key "
        "change (0800, field 70 = 161), 'acquirer_id=key_name' entries (others use 'zmk')",
    )
    decimalisation_table: str = _key(
        "0123456789012345", "IBM 3624 decimalisation table (16 digits)"
    )
    pin_validation_digits: int = _key(
        12, "IBM 3624 validation data: rightmost PAN digits, excluding the check digit"
    )
    bdk_by_ksn: list[str] = _key(
        [], "DUKPT BDK per KSN prefix, 'hex_prefix=key_name' (else 'bdk' / 'bdk-aes')"
    )
    pin_block_formats: list[str] = _key(
        ["0", "3", "4"], "ISO 9564 PIN block formats accepted (add 1 only if acquirers need it)"
    )

    def __post_init__(self) -> None:
        _at_least("[security]", "zone_key_overlap_s", self.zone_key_overlap_s, 0, " (0: never)")
        self._check_pkcs11()
        if not 1 <= self.pin_validation_digits <= 16:  # 16 nibbles of validation data
            raise ConfigError(
                "[security] pin_validation_digits must be 1 to 16, "
                f"not {self.pin_validation_digits}"
            )
        table = self.decimalisation_table
        if len(table) != 16 or not all(c in "0123456789" for c in table):
            raise ConfigError(  # else every IBM 3624 PIN check fails, answered 96
                f"[security] decimalisation_table must be 16 decimal digits, not {table!r}"
            )

    def _check_pkcs11(self) -> None:
        """A master key in a token comes from there alone: a file or an environment variable
        named besides it would be a second master key, and which one opened the store a guess."""
        token = {
            name: getattr(self, f"master_key_pkcs11_{name}")
            for name in ("library", "token", "label")
        }
        if not any(token.values()):
            return
        if missing := [name for name, value in token.items() if not value.strip()]:
            raise ConfigError(
                f"[security] master_key_pkcs11_{missing[0]} must be set too: a master key in a "
                "PKCS#11 token is named by master_key_pkcs11_library, _token and _label"
            )
        if self.master_key_file:
            raise ConfigError(
                "[security] master_key_file and master_key_pkcs11_library are both set: the "
                "master key is in the token; remove master_key_file"
            )
        if self.master_key_env != DEFAULT_MASTER_KEY_ENV:
            raise ConfigError(
                "[security] master_key_env and master_key_pkcs11_library are both set: the "
                "master key is in the token; remove master_key_env"
            )
        if not self.master_key_pkcs11_pin_env.strip():
            raise ConfigError("[security] master_key_pkcs11_pin_env must name a variable")


@dataclass(frozen=True)
class AdminConfig:
    """The admin HTTP API served by the same process."""

    host: str = _key("127.0.0.1", "address of the admin HTTP API")
    port: int = _key(8080, "port of the admin HTTP API; 0 disables it")
    tokens_file: str = _key("", "TOML/JSON file mapping API tokens to roles (operator, auditor)")
    tokens: str = _key("", "inline tokens 'token:role,token:role' (prefer tokens_file)")
    tls_cert_file: str = _key(
        "", "PEM certificate (chain) of the admin API: with tls_key_file it speaks HTTPS only"
    )
    tls_key_file: str = _key("", "PEM private key of tls_cert_file (readable by this user only)")
    max_connections: int = _key(
        64,
        "admin API connections open at once; more are closed as soon as they are accepted, so "
        "a flood of connections cannot use up the file descriptors the ISO 8583 listeners need "
        "(0: no limit)",
    )
    timeout_s: float = _key(
        30.0,
        "seconds a client has to send a request (or the next one on a kept-alive connection, "
        "or a TLS handshake) and to take an answer; past it the connection is closed",
    )

    business_day_timezone: str = _key(
        "UTC",
        "IANA time zone of the bank's business day, which every report's day=YYYY-MM-DD "
        "means (daily totals, statements, the account updater file, rule performance)",
    )
    business_day_cutover: str = _key(
        "00:00",
        "local time (HH:MM) a business day ends at: later requests count to the next day; "
        "day D is the 24 hours between the cut-overs around D's noon",
    )

    @property
    def business_day(self) -> BusinessDay:
        return BusinessDay(self.business_day_timezone, self.business_day_cutover)

    chargeback_days: int = _key(
        120,
        "days after a charge the networks take its chargeback (Visa and Mastercard: 120 for "
        "most reasons): a dispute is opened and charged back within them (1-3650)",
    )
    representment_days: int = _key(
        45,
        "days after a chargeback the acquirer may represent (second presentment); none by "
        "then: the issuer won (1-3650)",
    )
    pre_arbitration_days: int = _key(
        30, "days after a representment the issuer may answer it with pre-arbitration (1-3650)"
    )
    pre_arbitration_answer_days: int = _key(
        30,
        "days after a pre-arbitration the acquirer has to answer it; none by then: the issuer "
        "won (1-3650)",
    )
    arbitration_days: int = _key(
        10,
        "days after the acquirer declined a pre-arbitration the issuer may file arbitration "
        "with the network (Visa: 10); none by then: the decline stands (1-3650)",
    )

    arbitration_fee_minor: int = _key(
        0,
        "the network's arbitration (filing and review) fee a ruling records when it gives "
        "none, in minor units of arbitration_fee_currency, borne by the losing party (Visa: "
        "USD 500, 50000; 0: none recorded)",
    )
    arbitration_fee_currency: str = _key(
        "840", "the arbitration fee's currency, ISO 4217 numeric (the network's: USD 840)"
    )

    @property
    def dispute_limits(self) -> DisputeLimits:
        return DisputeLimits(
            self.chargeback_days, self.representment_days, self.pre_arbitration_days,
            self.pre_arbitration_answer_days, self.arbitration_days,
            self.arbitration_fee_minor, self.arbitration_fee_currency,
        )  # fmt: skip

    lockout_failures: int = _key(
        10,
        "wrong tokens a client address may send within lockout_window_s: the next locks it "
        "out of the admin API for lockout_s (429 with Retry-After; PCI DSS 8.3.4 wants at most "
        "10; counted in each process's memory; 0: no lockout)",
    )
    lockout_window_s: float = _key(
        1800.0, "seconds within which lockout_failures wrong tokens lock an address out"
    )
    lockout_s: float = _key(
        1800.0,
        "seconds an address stays locked out of the admin API (PCI DSS 8.3.4: at least 1800, "
        "or until reset: a restart resets)",
    )
    audit_verify_every_s: float = _key(
        3600.0,
        "seconds between the server's walks of the audit log's hash chain: a break is logged "
        "at ERROR and authhost_audit_chain_ok turns 0 (0: never)",
    )
    idempotency_keep_days: int = _key(
        90,
        "days a request's Idempotency-Key answers its repeats with the first result: the "
        f"server prunes older results daily, and an older repeat is a new request (>= "
        f"{IDEMPOTENCY_MIN_KEEP_DAYS}; 0: keep them all)",
    )

    def __post_init__(self) -> None:
        _host("[admin]", "host", self.host)
        _port("[admin]", "port", self.port)
        if self.lockout_failures < 0:
            raise ConfigError(
                f"[admin] lockout_failures must be 0 (no lockout) or more, not "
                f"{self.lockout_failures}"
            )
        for name in ("lockout_window_s", "lockout_s"):
            if not 0 < getattr(self, name) <= 86_400 * 30:
                raise ConfigError(
                    f"[admin] {name} must be above 0 and at most 30 days, not {getattr(self, name)}"
                )
        if self.audit_verify_every_s and not 1 <= self.audit_verify_every_s <= 86_400:
            raise ConfigError(
                "[admin] audit_verify_every_s must be 0 (never) or 1 to 86400, not "
                f"{self.audit_verify_every_s}"
            )
        try:
            BusinessDay(self.business_day_timezone, self.business_day_cutover)
        except ValueError as error:
            raise ConfigError(f"[admin] business day: {error}") from None
        if problem := self.dispute_limits.problem():
            raise ConfigError(f"[admin] {problem}")
        if self.max_connections < 0:
            raise ConfigError(
                f"[admin] max_connections must be 0 (no limit) or more, not {self.max_connections}"
            )
        keep = self.idempotency_keep_days
        if keep and keep < IDEMPOTENCY_MIN_KEEP_DAYS:
            raise ConfigError(
                f"[admin] idempotency_keep_days must be 0 (keep everything) or at least "
                f"{IDEMPOTENCY_MIN_KEEP_DAYS}, not {keep}: a client resending a request it got "
                "no answer for must get the first answer"
            )
        if not 0 < self.timeout_s <= 3600:
            raise ConfigError(
                f"[admin] timeout_s must be above 0 and at most 3600, not {self.timeout_s}"
            )


@dataclass(frozen=True)
class AuthConfig:
    """The authorisation decision pipeline."""

    steps: list[str] = _key(
        ["validate", "card", "card_verification", "pin", "controls", "fraud", "funds"],
        "pipeline steps in order",
    )
    pin_try_limit: int = _key(3, "wrong PIN tries before the PIN is locked (response 75)")
    post_processing_codes: list[str] = _key(
        [], "processing code prefixes (2 digits) whose 0100 posts instead of holding"
    )
    hold_days: int = _key(7, "days an authorisation hold lives before it expires")
    hold_days_by_mcc: list[str] = _key(
        list(EXTENDED_AUTHORISATION),
        "hold lives by merchant category, 'MCC=days' or 'FROM-TO=days' ('=2h' for hours; "
        "default: lodging, car rental, cruise 31 days, as the networks allow; a fuel pump's "
        "might be '5542=2h'); [] for hold_days everywhere",
    )
    hold_expiry_every_s: float = _key(
        300.0,
        "seconds between the server's runs that release holds whose life is over (above 0, "
        "at most 3600): a hold lives up to this long past its life",
    )
    dispute_reconcile_every_s: float = _key(
        60.0,
        "seconds between the server's full runs that set the acquirer's reversals against the "
        "open disputes of the charges they reversed (above 0, at most 3600); a reversal the "
        "process approves is set against its account's open disputes within a second",
    )
    late_reversal_every_s: float = _key(
        5.0,
        "seconds between the server's runs that reverse an original approved after its "
        "reversal came (above 0, at most 3600): such a hold or posting is reversed within this",
    )
    late_reversal_window_s: float = _key(
        900.0,
        "seconds a reversal that found no original waits for it (above 0, at most 86400): an "
        "original that comes later is held until it expires, as any",
    )
    atc_jump_limit: int = _key(
        1000,
        "chip counter steps a cryptogram may be ahead of the card's newest, for products that set "
        "none; 0: no limit",
    )
    journal_keep_days: int = _key(
        0, "days of journal the server keeps, pruning older entries daily (>= 35); 0: all"
    )

    @property
    def hold_lives(self) -> HoldLives:
        """``hold_days`` and ``hold_days_by_mcc``, parsed (and checked) when the section is."""
        return self._hold_lives  # type: ignore[attr-defined]  # set in __post_init__

    def __post_init__(self) -> None:
        # 0 or less would release every hold at the next expiry run, minutes after it was
        # placed, and the cardholder could spend the held money again
        _at_least("[auth]", "hold_days", self.hold_days, 1)
        # 0 or less locks every PIN at its first try (answered 75)
        _at_least("[auth]", "pin_try_limit", self.pin_try_limit, 1)
        _at_least("[auth]", "atc_jump_limit", self.atc_jump_limit, 0, " (0: no limit)")
        try:  # parsed once here: the pipeline, advices and the expiry service share it
            object.__setattr__(
                self, "_hold_lives", HoldLives.parse(self.hold_days, self.hold_days_by_mcc)
            )
        except HoldLifeError as error:
            raise ConfigError(f"[auth] {error}") from None
        if not 0 < self.hold_expiry_every_s <= 3600:
            raise ConfigError(
                f"[auth] hold_expiry_every_s must be above 0 and at most 3600, not "
                f"{self.hold_expiry_every_s}"
            )
        if not 0 < self.dispute_reconcile_every_s <= 3600:
            raise ConfigError(
                f"[auth] dispute_reconcile_every_s must be above 0 and at most 3600, not "
                f"{self.dispute_reconcile_every_s}"
            )
        for name, most in (("late_reversal_every_s", 3600), ("late_reversal_window_s", 86400)):
            value = getattr(self, name)
            if not 0 < value <= most:
                raise ConfigError(f"[auth] {name} must be above 0 and at most {most}, not {value}")
        if self.journal_keep_days and self.journal_keep_days < JOURNAL_MIN_KEEP_DAYS:
            raise ConfigError(
                f"[auth] journal_keep_days must be 0 (keep everything) or at least "
                f"{JOURNAL_MIN_KEEP_DAYS}: velocity counters read 30 days of the journal"
            )


@dataclass(frozen=True)
class RulesConfig:
    """The analysts' fraud rules."""

    file: str = _key("", "rules file (TOML or YAML); empty means no rules")
    lists_dir: str = _key("", "directory of named lists (one value per line, file name = list)")
    watch: bool = _key(True, "reload the rules file when it changes")


@dataclass(frozen=True)
class ModelsConfig:
    """The ML fraud scorer."""

    dir: str = _key("models", "directory of exported model artifacts")
    budget_ms: float = _key(5.0, "time budget of the ML step inside the request deadline")
    threshold: int = _key(0, "score (0-999) at or above which the action applies; 0 disables")
    action: str = _key("flag", "action at the threshold: decline (59) or flag")
    explain_from: int = _key(
        -1,
        "score from which the journal keeps the model's top three reasons (model_reasons); "
        "-1: the model's own operating threshold (or threshold above, if lower), 1000: never",
    )
    drift_every_s: float = _key(
        0.0,
        "seconds between the server's drift runs of the champion (as `authhost models drift`) "
        "over the last drift_window_s, published as authhost_model_drift_* metrics "
        "(0: never; else 1 to 604800; one worker runs it)",
    )
    drift_window_s: float = _key(
        7 * 86400.0,
        "seconds of journal each scheduled drift run measures, up to the run (3600 to "
        "7776000): whole weeks, or 'weekend' drifts by the calendar alone",
    )

    def __post_init__(self) -> None:
        if self.action not in ("decline", "flag"):  # a misspelt decline must not only flag
            raise ConfigError(f"[models] action must be decline or flag, not {self.action!r}")
        if not 0 <= self.threshold <= 999:  # -1 would apply the action to every request
            raise ConfigError(f"[models] threshold must be 0 (off) to 999, not {self.threshold}")
        _at_least("[models]", "budget_ms", self.budget_ms, 0)
        if not -1 <= self.explain_from <= 1000:
            raise ConfigError(f"[models] explain_from must be -1 to 1000, not {self.explain_from}")
        if self.drift_every_s and not 1 <= self.drift_every_s <= 7 * 86400:
            raise ConfigError(
                f"[models] drift_every_s must be 0 (never) or 1 to 604800, not {self.drift_every_s}"
            )
        if not 3600 <= self.drift_window_s <= 90 * 86400:
            raise ConfigError(
                f"[models] drift_window_s must be 3600 to 7776000, not {self.drift_window_s}"
            )


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    server: ServerConfig = field(default_factory=ServerConfig)
    listeners: list[ListenerConfig] = field(default_factory=list)
    store: StoreConfig = field(default_factory=StoreConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)

    def all_listeners(self) -> list[ListenerConfig]:
        """The default listener from [server] plus any [[listeners]] tables."""
        s = self.server
        default = ListenerConfig(
            **{f.name: getattr(s, f.name) for f in dataclasses.fields(ListenerConfig)}
        )
        return [default, *self.listeners]

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some keys of one section changed (used for CLI overrides)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **changes)})


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "store": StoreConfig,
    "security": SecurityConfig,
    "admin": AdminConfig,
    "auth": AuthConfig,
    "rules": RulesConfig,
    "models": ModelsConfig,
}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Turn a TOML or environment value into the field's type, or say which key is wrong."""
    target = annotation if isinstance(annotation, type) else typing.get_origin(annotation)
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if target is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            if isinstance(value, float):
                if not value.is_integer():  # int() would drop the fraction: 1.5 -> 1
                    raise ValueError(f"expected an integer, got {value!r}")
                return int(value)
            if isinstance(value, str):
                if not _INTEGER.fullmatch(value.strip()):
                    raise ValueError(f"expected an integer, got {value!r}")
                return int(value)
            if not isinstance(value, int):
                raise ValueError(f"expected an integer, got {type(value).__name__}")
            return value
        if target is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            if isinstance(value, str):
                if not _DECIMAL.fullmatch(value.strip()):
                    raise ValueError(f"expected a number, got {value!r}")
            elif not isinstance(value, (int, float)):
                raise ValueError(f"expected a number, got {type(value).__name__}")
            number = float(value)
            if not math.isfinite(number):  # nan makes trio's deadlines raise, at shutdown
                raise ValueError(f"expected a finite number, got {value!r}")
            return number
        if target is str:
            if not isinstance(value, (str, int)):
                raise ValueError(f"expected a string, got {type(value).__name__}")
            return str(value)
        if target is list:
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, list):
                raise ValueError("expected a list")
            odd = [v for v in value if not isinstance(v, (str, int, float)) or isinstance(v, bool)]
            if odd:
                raise ValueError(f"expected a list of strings, got {odd[0]!r} in it")
            return [str(v) for v in value]
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return value


def _with_hint(known: set[str]) -> typing.Callable[[str], str]:
    """A misspelt name with the known one it is closest to, as rule files get (``prot`` ->
    ``prot (did you mean 'port'?)``)."""

    def hinted(name: str) -> str:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        return f"{name} (did you mean {close[0]!r}?)" if close else name

    return hinted


def _build(
    cls: type,
    values: Mapping[str, Any],
    where: str,
    lines: Mapping[str, int] | None = None,
    variables: Mapping[str, str] | None = None,
) -> Any:
    """``cls`` from the values of one table; an error names the key, and with ``lines`` (the
    file's line of each key) the line it is on, or with ``variables`` (key: the environment
    variable that set it, which wins over the file) the variable."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    lines = lines or {}
    variables = variables or {}

    def on_line(key: str) -> str:  # file:line: [table], or file:[table] without the line
        file, _, table = where.partition(":")
        return f"{file}:{lines[key]}: {table}" if key in lines else where

    def at(key: str) -> str:
        return f"{on_line(key)}.{key}"

    unknown = sorted(set(values) - known)
    if unknown:
        names = ", ".join(map(_with_hint(known), unknown))
        raise ConfigError(f"{on_line(unknown[0])}: unknown key(s) {names}")
    kwargs = {k: _coerce(v, hints[k], at(k)) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a value of the right type that cannot be used
        said = str(exc)
        named = [k for k in {**lines, **variables} if re.search(rf"\b{re.escape(k)}\b", said)]
        prefix = on_line(named[0]) if named else where
        table = where.partition(":")[2]
        if said.startswith(f"{table} "):  # "[server] port must be...": the table once
            # (it read "authhost.toml:2: [server]: [server] port must be ...")
            prefix = prefix.removesuffix(f": {table}").removesuffix(f":{table}")
        if named and named[0] in variables:  # not the file, which may not even exist
            prefix = f"environment variable {variables[named[0]]}"
        raise ConfigError(f"{prefix}: {said}") from None


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The AUTHHOST_<SECTION>_<KEY> variables set, each already of its key's type: a bad one
    is named as the variable it is (it was reported as a key of the configuration file, even
    with no file at all)."""
    found: dict[str, dict[str, Any]] = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            name = f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}"
            if name in env:
                where = f"environment variable {name} ([{section}] {f.name})"
                value = _coerce(env[name], hints[f.name], where)
                found.setdefault(section, {})[f.name] = value
    return found


def _unknown_env(env: Mapping[str, str], spared: set[str]) -> None:
    """Refuse an ``AUTHHOST_<SECTION>_<KEY>`` variable that names no key, as a file's unknown
    key is refused: a misspelt one (``AUTHHOST_SERVER_DEADLINE=150``) was ignored without a
    word, and the server ran on the value the operator meant to change. ``spared`` is the
    master key's own variable and the token PIN's, which ``[security] master_key_env`` and
    ``master_key_pkcs11_pin_env`` may name in this form."""
    for section, cls in SECTIONS.items():
        prefix = f"{ENV_PREFIX}{section.upper()}_"
        known = {f.name.upper() for f in dataclasses.fields(cls)}
        for name in sorted(env):
            if not name.startswith(prefix) or name in spared:
                continue
            key = name[len(prefix) :]
            if key not in known:
                hint = difflib.get_close_matches(key, sorted(known), n=1)
                meant = f" (did you mean {prefix}{hint[0]}?)" if hint else ""
                raise ConfigError(
                    f"environment variable {name}: [{section}] has no key {key.lower()!r}{meant}"
                )


_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_-]+)\s*\]")
_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_-]+)\s*\]\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def _key_lines(text: str) -> dict[str, dict[str, int]]:
    """The line of each key by table (``listeners#1``... for [[listeners]]), for errors that
    say where to look. A plain scan: a key line inside a multi-line string could mislead it,
    which only costs the line number."""
    found: dict[str, dict[str, int]] = {}
    table, arrays = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if match := _ARRAY_TABLE.match(line):
            arrays += 1
            table = f"{match.group(1)}#{arrays}"
        elif match := _TABLE.match(line):
            table = match.group(1)
        elif (match := _KEY.match(line)) and table:
            found.setdefault(table, {}).setdefault(match.group(1), number)
    return found


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the file (if any) and the environment into a Config.

    ``path`` None means ``AUTHHOST_CONFIG`` or ``authhost.toml`` if it exists; an explicitly
    named file that does not exist is an error.
    """
    env = os.environ if env is None else env
    named = env.get("AUTHHOST_CONFIG") or None  # set but empty: as if not set
    explicit = path is not None or named is not None
    file = Path(path if path is not None else named or DEFAULT_FILE)
    data: dict[str, Any] = {}
    lines: dict[str, dict[str, int]] = {}
    if file.exists():
        try:
            text = file.read_text(encoding="utf-8")
            data = tomllib.loads(text)
            lines = _key_lines(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
        except OSError as exc:  # a directory, no permission to read
            raise ConfigError(
                f"{file}: cannot read the configuration file: {exc.strerror}"
            ) from None
    elif explicit:
        raise ConfigError(f"{file}: configuration file not found")

    unknown = sorted(set(data) - set(SECTIONS) - {"listeners"})
    if unknown:
        names = ", ".join(map(_with_hint({*SECTIONS, "listeners"}), unknown))
        raise ConfigError(f"{file}: unknown section(s) {names}")
    overrides = _env_overrides(env)
    sections = {}
    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{file}: [{name}] must be a table")
        from_env = {
            key: f"{ENV_PREFIX}{name.upper()}_{key.upper()}" for key in overrides.get(name, {})
        }
        sections[name] = _build(
            cls, {**raw, **overrides.get(name, {})}, f"{file}:[{name}]", lines.get(name), from_env
        )
    security = sections["security"]
    _unknown_env(env, {security.master_key_env, security.master_key_pkcs11_pin_env})
    raw_listeners = data.get("listeners", [])
    if not isinstance(raw_listeners, list) or not all(isinstance(x, dict) for x in raw_listeners):
        raise ConfigError(f"{file}: listeners must be [[listeners]] tables")
    listeners = [
        _build(
            ListenerConfig, item, f"{file}:[[listeners]] #{i + 1}", lines.get(f"listeners#{i + 1}")
        )
        for i, item in enumerate(raw_listeners)
    ]
    return Config(listeners=listeners, **sections)


def describe_keys() -> str:
    """Every key with its default and meaning, for ``--help`` and the README."""
    lines = []
    for name, cls in SECTIONS.items():
        lines.append(f"[{name}]")
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            env_name = f"{ENV_PREFIX}{name.upper()}_{f.name.upper()}"
            lines.append(f"  {f.name} = {default!r}  ({env_name}) {f.metadata.get('help', '')}")
    keys = ", ".join(f.name for f in dataclasses.fields(ListenerConfig))
    lines.append(f"[[listeners]]  extra listeners, each with the keys: {keys}")
    return "\n".join(lines)
