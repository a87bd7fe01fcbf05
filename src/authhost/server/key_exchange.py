"""Dynamic key exchange: a switch changes its zone PIN key or the MAC key over the link.

Working keys are changed often (daily, or at every sign-on) without an operator: the switch
sends an 0800 with field 70 = 161 and the new key in field 48 subelement 11, encrypted under
the zone master key both sides hold (the layout of Mastercard's key exchange block). The
key class says which key: PK the acquirer's zone PIN key, MK the MAC key of fields 64/128.
The security module decrypts it, checks it against its check value and saves it as the next
version of that key; the 0810 says whether it took:

* 00: installed; the acquirer's PIN blocks are read, or MACs made and checked, with the new
  key from now on (every worker: each re-reads the key store within a second of it
  changing; a PIN block or MAC made under the key before is still accepted for
  ``security.zone_key_overlap_s``),
* 30: no subelement 11, or one that is not the layout,
* 12: a key class other than PK and MK, or no zone master key for the acquirer,
* 63: the key does not match its check value or its parity (nothing is installed),
* 96: the key store could not be written.

The key is never logged nor echoed; the log line and the audit entry name the key, its new
version and its check value. The key store is a file under a lock, so the install runs in a
thread, off the event loop.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import Any

import trio

from authhost.iso.codes import ResponseCode
from authhost.iso.messages import NetworkRequest
from authhost.iso.subfields import SubfieldError, parse_key_exchange
from authhost.security.errors import KeyCheckFailed, KeyNotFound, SecurityError
from authhost.security.keys import KeyType
from authhost.store.records import AuditEntry

KEY_CHANGE_CODE = "161"  # field 70 of an 0800 that carries a new working key
KEY_CLASSES = {"PK": KeyType.ZPK, "MK": KeyType.MAK}  # PIN key, MAC key

log = logging.getLogger("authhost.keys")


class ZoneKeyExchange:
    """Answers key changes: ``await exchange(request)`` is the 0810's response code."""

    def __init__(self, security: Any, store: Any | None = None) -> None:
        self._security = security  # authhost.security.module.SecurityModule
        self._store = store  # a CardStore, for the audit trail

    async def __call__(self, request: NetworkRequest, mac_key: str = "mak") -> ResponseCode:
        """The 0810's response code; ``mac_key``: the MAC key of the link the request came
        on (``[[listeners]] mac_key``), which a MAC key change (MK) replaces."""
        fields = request.fields
        acquirer = str(fields.get("32") or "")
        where = {"acquirer": acquirer, "stan": request.stan}
        try:
            block = parse_key_exchange(_text(fields.get("48")))
        except SubfieldError as error:
            log.warning("key change refused: %s", error, extra={"fields": where})
            return ResponseCode.FORMAT_ERROR
        where.update(key_index=block.key_index, key_cycle=block.key_cycle)
        key_type = KEY_CLASSES.get(block.key_class)
        if key_type is None:
            log.warning(
                "key change refused: key class %s is not supported (PK or MK)",
                block.key_class,
                extra={"fields": where},
            )
            return ResponseCode.INVALID_TRANSACTION
        install = partial(self._security.install_exchanged_key, mac_key=mac_key)
        try:
            key = await trio.to_thread.run_sync(
                install, key_type, acquirer, block.encrypted_key, block.check_value
            )
        except KeyNotFound as error:
            log.warning("key change refused: %s", error, extra={"fields": where})
            return ResponseCode.INVALID_TRANSACTION
        except KeyCheckFailed as error:
            log.warning("key change refused: %s", error, extra={"fields": where})
            return ResponseCode.SECURITY_VIOLATION
        except (SecurityError, OSError) as error:
            log.error("key change failed: %s", error, extra={"fields": where})
            return ResponseCode.SYSTEM_MALFUNCTION
        changed = {"name": key.name, "version": key.version, "kcv": key.kcv, **where}
        changed["key_class"] = block.key_class
        log.info("%s key changed by the switch", key_type, extra={"fields": changed})
        await self._audit(key.name, changed)
        return ResponseCode.APPROVED

    async def _audit(self, name: str, changed: dict[str, Any]) -> None:
        if self._store is None:
            return
        entry = AuditEntry(
            ts=time.time(),
            actor=f"switch:{changed['acquirer'] or 'unknown'}",
            action="key.exchange",
            subject=name,
            after=json.dumps(changed, sort_keys=True),
        )
        try:
            await self._store.append_audit(entry, self._security.audit_seal)
        except Exception:  # the key is installed: the answer says so, the log says this
            log.exception("key change installed but not audited", extra={"fields": changed})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) or value is None else str(value)
