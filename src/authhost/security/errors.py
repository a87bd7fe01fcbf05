"""The security module's errors. Messages name keys and files, never key material, PINs or PANs."""

from __future__ import annotations


class SecurityError(Exception):
    """Base of every security module error; safe to show an operator."""


class MasterKeyMissing(SecurityError):
    """No master key in the environment or the configured file (and not in demo mode)."""


class KeyStoreError(SecurityError):
    """The key store file is missing, unreadable, or does not match the master key."""


class MasterKeyMismatch(KeyStoreError):
    """The key store's check value is not the master key's: another master key's store."""


class MasterKindMismatch(MasterKeyMismatch):
    """The key store is under another kind of master key (a token's, or one from the
    environment or a file), or another token key, than the one configured: the file's
    ``master`` says which."""


class TokenError(MasterKeyMissing):
    """The PKCS#11 token holding the master key cannot be used (no library, no token, a
    wrong PIN, no such key): one line naming the token and the key's label, never the PIN."""


class TokenKeyMismatch(MasterKeyMismatch):
    """The token's key is not the one that wrapped this key store's store key."""


class MasterKeyChanged(KeyStoreError):
    """A key store this process read before is now under another master key (rotated by
    ``authhost keys rotate-master-key``): the keys in hand stay, a restart with the new master
    key reads it."""


class KeyNotFound(SecurityError):
    """A named working key is not in the key store (or has the wrong type for the operation)."""


class KeyCheckFailed(SecurityError):
    """A key sent to the module does not match its check value (or its DES parity): it is
    not the key the sender meant, or not a key at all. Nothing is installed."""


class WeakKey(KeyCheckFailed):
    """Key material that must not be used: an algorithm or length its type is not used with,
    all zeros, or a TDES key whose parts repeat (K1 = K2: single DES strength). Nothing is
    saved; the message names the key, never its material."""
