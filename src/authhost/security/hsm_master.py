"""The master key in a PKCS#11 token (an HSM): it never enters authhost's memory or files.

A bank keeps its key-encrypting key in an HSM, not in a file. The token's AES key cannot be
read out (CKA_SENSITIVE, not CKA_EXTRACTABLE); authhost asks the token to encrypt or decrypt
one random 32-byte secret with it, the key store's *store key*, which the key store file keeps
wrapped (CKM_AES_GCM inside the token: a random 12-byte IV, a 128-bit tag, fixed associated
data). The purpose keys are derived from the store key exactly as they are from a master key
held in a file (HKDF-SHA-256, ``keystore.PurposeKeys``), so the authorisation path keeps using
keys in memory and never calls the token: the token is used when a process opens the key store
(a server's start, a CLI command) and when a master key rotation wraps a new store key.

Why not derive the purpose keys inside the token: CKM_HKDF_DERIVE is PKCS#11 3.0, which many
tokens in service lack (SoftHSM 2.6, older firmware), while CKM_AES_GCM is common to all.

python-pkcs11 (``pip install 'authhost[hsm]'``) is imported here only, and only once a token
is configured, so authhost runs without it. The user PIN is read from its environment variable
at each login and is never kept, logged or put in an error.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from authhost.config import DEFAULT_HSM_PIN_ENV
from authhost.security.errors import KeyStoreError, TokenError, TokenKeyMismatch
from authhost.security.keystore import resolve_master_key

if TYPE_CHECKING:
    from authhost.config import SecurityConfig
    from authhost.security.keystore import Master

# bound to the wrapped store key: a blob of another kind decrypted under the token's key fails
STORE_KEY_AAD = b"authhost-keystore/2 store key"
STORE_KEY_BYTES = 32
IV_BYTES = 12
# a process talks to its token one call at a time (a key store reload runs in a worker thread)
_TOKEN_LOCK = threading.Lock()
# python-pkcs11's errors for a token or key that cannot do the operation at all, as against a
# ciphertext its key did not make (AttributeError: python-pkcs11 gives a key whose CKA_DECRYPT
# is false no ``decrypt``)
UNSUPPORTED = frozenset(
    {
        "MechanismInvalid",
        "MechanismParamInvalid",
        "FunctionNotSupported",
        "KeyTypeInconsistent",
        "AttributeError",
    }
)


@dataclass(frozen=True, slots=True)
class TokenKey:
    """An AES key in a PKCS#11 token, named by library, token label and key label; the user
    PIN is in the environment variable ``pin_env`` of ``env``."""

    library: str
    token: str
    label: str
    pin_env: str = DEFAULT_HSM_PIN_ENV
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """What the key store file records and errors name: ``pkcs11:TOKEN/LABEL``."""
        return f"pkcs11:{self.token}/{self.label}"

    def wrap(self, secret: bytes) -> str:
        """``secret`` encrypted by the token's key: IV + GCM ciphertext and tag, hex. Read
        back in the same session before it is returned: a key the token encrypts with but
        will not decrypt with (CKA_DECRYPT false), or a token that used an IV of its own,
        would otherwise leave a key store under a store key nobody can unwrap again."""
        iv = secrets.token_bytes(IV_BYTES)
        with self._key() as (key, mechanism, params):
            try:
                sealed = bytes(
                    key.encrypt(
                        secret,
                        mechanism=mechanism.AES_GCM,
                        mechanism_param=params(iv, STORE_KEY_AAD),
                    )
                )
            except Exception as exc:  # the token's own refusal, by its PKCS#11 name
                raise TokenError(
                    f"{self.ref}: the token did not encrypt with the key ({_name(exc)}): it "
                    "must be an AES key allowed to encrypt and decrypt (CKM_AES_GCM)"
                ) from None
            try:
                back = bytes(
                    key.decrypt(
                        sealed,
                        mechanism=mechanism.AES_GCM,
                        mechanism_param=params(iv, STORE_KEY_AAD),
                    )
                )
                why = "another value"
            except Exception as exc:
                back, why = b"", _name(exc)
            if not hmac.compare_digest(back, secret):
                raise TokenError(
                    f"{self.ref}: the token does not decrypt what it encrypted with the key "
                    f"({why}): it must be an AES key allowed to encrypt and decrypt "
                    "(CKA_ENCRYPT, CKA_DECRYPT) by CKM_AES_GCM with the caller's IV; nothing "
                    "was written"
                )
        return (iv + sealed).hex()

    def unwrap(self, blob: str) -> bytes:
        """The secret ``wrap`` gave ``blob`` for; TokenKeyMismatch when this token's key did
        not wrap it (GCM's tag does not verify)."""
        try:
            data = bytes.fromhex(blob)
        except ValueError:
            data = b""
        if len(data) != IV_BYTES + STORE_KEY_BYTES + 16:
            raise KeyStoreError(f"{self.ref}: the wrapped store key in the key store is damaged")
        with self._key() as (key, mechanism, params):
            try:
                secret = key.decrypt(
                    data[IV_BYTES:],
                    mechanism=mechanism.AES_GCM,
                    mechanism_param=params(data[:IV_BYTES], STORE_KEY_AAD),
                )
            except Exception as exc:
                if type(exc).__name__ in UNSUPPORTED:
                    raise TokenError(
                        f"{self.ref}: the token does not decrypt with this key by CKM_AES_GCM "
                        f"({_name(exc)})"
                    ) from None
                # a tag that does not verify: CKR_ENCRYPTED_DATA_INVALID, or another error
                # by token (SoftHSM: CKR_GENERAL_ERROR)
                raise TokenKeyMismatch(
                    f"{self.ref}: this key does not open the key store's store key ({_name(exc)}): "
                    "it is not the token key the store was wrapped with"
                ) from None
        return bytes(secret)

    def _pin(self) -> str:
        pin = self.env.get(self.pin_env, "")
        if not pin:
            raise TokenError(
                f"{self.ref}: set the environment variable {self.pin_env} to the token's user "
                "PIN ([security] master_key_pkcs11_pin_env)"
            )
        return pin

    @contextmanager
    def _key(self) -> Iterator[tuple[Any, Any, Any]]:
        """The token's key in a logged-in session, with python-pkcs11's Mechanism and
        GCMParams; the library is finalised after each use, so no session outlives the call
        and the next use reads the library's configuration afresh."""
        pin = self._pin()
        try:
            import pkcs11
            from pkcs11.mechanisms import GCMParams
        except ImportError:
            raise TokenError(
                f"{self.ref}: the master key in a PKCS#11 token needs python-pkcs11: "
                "pip install 'authhost[hsm]'"
            ) from None
        with _TOKEN_LOCK:
            try:
                lib = pkcs11.lib(self.library)
            except Exception as exc:
                raise TokenError(
                    f"{self.ref}: cannot load the PKCS#11 library {self.library} ({_name(exc)})"
                ) from None
            try:
                session = self._login(pkcs11, lib, pin)
                try:
                    yield self._find(pkcs11, session), pkcs11.Mechanism, GCMParams
                finally:
                    session.close()
            finally:
                _finalize(lib)

    def _login(self, pkcs11: Any, lib: Any, pin: str) -> Any:
        """A session on the token, logged in as its user."""
        try:
            token = lib.get_token(token_label=self.token)
        except pkcs11.NoSuchToken:
            raise TokenError(
                f"{self.ref}: no token labelled {self.token!r} in {self.library}"
            ) from None
        except pkcs11.MultipleTokensReturned:
            raise TokenError(
                f"{self.ref}: more than one token is labelled {self.token!r}"
            ) from None
        except Exception as exc:
            raise TokenError(f"{self.ref}: cannot list the tokens ({_name(exc)})") from None
        try:
            return token.open(user_pin=pin)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise TokenError(
                f"{self.ref}: the token refused the user PIN in {self.pin_env} (incorrect)"
            ) from None
        except pkcs11.PinLocked:
            raise TokenError(f"{self.ref}: the token's user PIN is locked") from None
        except Exception as exc:
            raise TokenError(f"{self.ref}: cannot log in to the token ({_name(exc)})") from None

    def _find(self, pkcs11: Any, session: Any) -> Any:
        """The AES key of this label (exactly one)."""
        try:
            return session.get_key(
                object_class=pkcs11.ObjectClass.SECRET_KEY,
                key_type=pkcs11.KeyType.AES,
                label=self.label,
            )
        except pkcs11.NoSuchKey:
            raise TokenError(
                f"{self.ref}: no AES key labelled {self.label!r} on token {self.token!r}"
            ) from None
        except pkcs11.MultipleObjectsReturned:
            raise TokenError(
                f"{self.ref}: more than one AES key is labelled {self.label!r} on token "
                f"{self.token!r}"
            ) from None
        except Exception as exc:
            raise TokenError(f"{self.ref}: cannot find the key ({_name(exc)})") from None


def token_key(config: SecurityConfig, env: Mapping[str, str]) -> TokenKey | None:
    """The token key ``[security] master_key_pkcs11_*`` names (None: not configured). The
    configuration refuses a master key file beside it; a master key in the environment
    variable is refused here, where the environment is read."""
    if not config.master_key_pkcs11_library:
        return None
    key = TokenKey(
        config.master_key_pkcs11_library,
        config.master_key_pkcs11_token,
        config.master_key_pkcs11_label,
        config.master_key_pkcs11_pin_env,
        env,
    )
    if env.get(config.master_key_env):
        raise TokenError(
            f"{key.ref}: the master key is in the token ([security] master_key_pkcs11_*), yet "
            f"the environment variable {config.master_key_env} holds one too: unset it"
        )
    return key


def configured_master(
    config: SecurityConfig, key_store: Path, env: Mapping[str, str], *, demo: bool
) -> tuple[Master, bool]:
    """(master key, generated now): the token's key when one is configured, else the master
    key from the environment, the file or the demo key file (``resolve_master_key``)."""
    key = token_key(config, env)
    if key is not None:
        return key, False
    return resolve_master_key(
        config.master_key_env, config.master_key_file, key_store, env, demo=demo
    )


def _finalize(lib: Any) -> None:
    """Close every session: a failure to do so changes nothing already done."""
    with contextlib.suppress(Exception):  # nothing to undo; the next use initialises again
        lib.finalize()


def _name(exc: Exception) -> str:
    """A PKCS#11 error by its class (PinIncorrect, GeneralError...): python-pkcs11's messages
    are often empty, and an OS error loading the library says which file."""
    if isinstance(exc, AttributeError):  # python-pkcs11: the key lacks that capability
        return "the key's CKA_ENCRYPT or CKA_DECRYPT is false"
    said = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {said}" if said else type(exc).__name__
